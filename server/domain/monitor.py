"""Monitors: the spec of one watched model lane, and its validation.

A `MonitorSpec` is what a user sets (labels, schema, window, statistics, rules); a `Monitor` adds
what the service owns (id, active baseline, times, etag). Validation names every bad field with
its path in the request, so the transport can return `BadRequest` field violations.

>>> from driftd.server.domain.schema import Schema, NumericFeature
>>> spec = MonitorSpec(model_id="fraud", schema=Schema(numeric=(NumericFeature("amount"),)))
>>> validate_monitor_id("fraud-v3")
>>> spec.validate()
>>> MonitorSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from driftd.server.domain.errors import FailedPrecondition, FieldViolation, InvalidArgument
from driftd.server.domain.schema import (
    CategoricalFeature,
    EmbeddingBlock,
    NumericFeature,
    Schema,
    ScoreKind,
    ScoreOutput,
)

MONITOR_ID_RE = re.compile(r"^[a-z0-9][a-z0-9\-_.]{0,62}$")
RULE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9\-_]{0,62}$")
LABEL_KEY_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,62}$")
# metric_name{label="value", other="x"}
SELECTOR_RE = re.compile(r'^(?P<metric>[a-z_][a-z0-9_]*)(?:\{(?P<labels>[^{}]*)\})?$')
SELECTOR_LABEL_RE = re.compile(r'^\s*(?P<key>[a-z_][a-z0-9_]*)\s*=\s*"(?P<value>[^"]*)"\s*$')

# Metric names a selector may use, with the label each series carries (None = none).
SELECTOR_METRICS: dict[str, str | None] = {
    "feature_psi": "feature", "feature_kl": "feature", "feature_js": "feature", "feature_ks": "feature",
    "feature_ks_pvalue": "feature", "feature_w1": "feature", "feature_w1_relative": "feature",
    "feature_nan_rate": "feature", "feature_out_of_range_rate": "feature", "feature_outlier_rate": "feature",
    "feature_chi2": "feature", "feature_chi2_pvalue": "feature", "feature_unseen_rate": "feature", "feature_missing_rate": "feature",
    "drifted_features": None,
    "embedding_mmd2": "block", "embedding_mmd2_pvalue": "block", "embedding_centroid_cosine": "block",
    "score_psi": "output", "score_ks": "output", "score_ks_pvalue": "output", "score_js": "output", "score_positive_rate": "output",
    "score_positive_rate_delta": "output",
    "latency_p50_ms": None, "latency_p95_ms": None, "latency_p99_ms": None, "error_rate": None,
    "accuracy": None, "precision": None, "recall": None, "f1": None, "auroc": None, "brier": None,
    "ece": None, "cusum_error": None, "page_hinkley": None, "row_count": None,
}

MAX_PANE_COUNT = 1440
MAX_RULES = 1000


class Severity(str, Enum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class Direction(str, Enum):
    ABOVE = "above"
    BELOW = "below"


class CalibratedLevel(str, Enum):
    WARNING = "warning"
    CRITICAL = "critical"


class CompositeMode(str, Enum):
    ALL = "all"
    ANY = "any"
    K_OF_N = "k_of_n"


class Statistic(str, Enum):
    PSI = "psi"
    KL = "kl"
    JS = "js"
    KS = "ks"
    W1 = "w1"
    CHI2 = "chi2"
    MMD = "mmd"
    DATA_QUALITY = "data_quality"
    LATENCY = "latency"
    LABEL_QUALITY = "label_quality"
    CONCEPT_DRIFT = "concept_drift"


@dataclass(frozen=True)
class WindowSpec:
    pane_seconds: float = 60.0
    pane_count: int = 5
    evaluation_interval_seconds: float | None = None  # None = pane_seconds

    @property
    def effective_evaluation_interval(self) -> float:
        return self.evaluation_interval_seconds or self.pane_seconds


@dataclass(frozen=True)
class StatisticsConfig:
    enabled: tuple[Statistic, ...] = ()  # empty = all
    numeric_bins: int = 10
    reservoir_size: int = 2048
    embedding_sample_size: int = 1024
    mmd_permutations: int = 200
    mmd_bandwidth_multipliers: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    label_ttl_seconds: float = 86_400.0

    def is_enabled(self, statistic: Statistic) -> bool:
        return not self.enabled or statistic in self.enabled


@dataclass(frozen=True)
class MetricCondition:
    selector: str
    direction: Direction
    fixed_threshold: float | None = None
    calibrated_threshold: CalibratedLevel | None = None
    max_p_value: float | None = None


@dataclass(frozen=True)
class CompositeCondition:
    mode: CompositeMode
    rule_ids: tuple[str, ...]
    k: int = 0


@dataclass(frozen=True)
class AlarmRule:
    rule_id: str
    metric: MetricCondition | None = None
    composite: CompositeCondition | None = None
    min_samples: int = 0
    for_evaluations: int = 0
    cooldown_seconds: float = 0.0
    keep_firing_for_seconds: float = 0.0
    severity: Severity = Severity.P3
    labels: tuple[tuple[str, str], ...] = ()
    summary: str = ""
    runbook: str = ""


@dataclass(frozen=True)
class MonitorSpec:
    """Everything a user sets on a monitor."""

    model_id: str = ""
    model_version: str = ""
    lane: str = ""
    description: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    schema: Schema = field(default_factory=Schema)
    window: WindowSpec = field(default_factory=WindowSpec)
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    rules: tuple[AlarmRule, ...] = ()

    def violations(self, prefix: str = "monitor") -> list[FieldViolation]:
        out = list(self.schema.violations(f"{prefix}.schema"))
        out += _window_violations(self.window, f"{prefix}.window")
        out += _statistics_violations(self.statistics, f"{prefix}.statistics")
        out += _labels_violations(self.labels, f"{prefix}.labels")
        out += rules_violations(self.rules, f"{prefix}.rules")
        for name in ("model_id", "model_version", "lane"):
            value = getattr(self, name)
            if len(value) > 128:
                out.append(FieldViolation(f"{prefix}.{name}", "at most 128 characters"))
        if len(self.description) > 4096:
            out.append(FieldViolation(f"{prefix}.description", "at most 4096 characters"))
        return out

    def validate(self, prefix: str = "monitor") -> None:
        problems = self.violations(prefix)
        if problems:
            raise InvalidArgument(problems)

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MonitorSpec":
        schema = data.get("schema", {})
        stats = dict(data.get("statistics", {}))
        stats["enabled"] = tuple(Statistic(s) for s in stats.get("enabled", ()))
        stats["mmd_bandwidth_multipliers"] = tuple(stats.get("mmd_bandwidth_multipliers", StatisticsConfig.mmd_bandwidth_multipliers))
        return cls(
            model_id=data.get("model_id", ""),
            model_version=data.get("model_version", ""),
            lane=data.get("lane", ""),
            description=data.get("description", ""),
            labels=tuple(tuple(kv) for kv in data.get("labels", ())),
            schema=Schema(
                numeric=tuple(NumericFeature(**c) for c in schema.get("numeric", ())),
                categorical=tuple(CategoricalFeature(c["name"], tuple(c.get("categories", ()))) for c in schema.get("categorical", ())),
                embeddings=tuple(EmbeddingBlock(**c) for c in schema.get("embeddings", ())),
                scores=tuple(ScoreOutput(c["name"], ScoreKind(c["kind"]), c["positive_threshold"]) for c in schema.get("scores", ())),
            ),
            window=WindowSpec(**data.get("window", {})),
            statistics=StatisticsConfig(**stats),
            rules=tuple(_rule_from_dict(r) for r in data.get("rules", ())),
        )


@dataclass(frozen=True)
class Monitor:
    """A stored monitor: the user's spec plus what the service owns."""

    monitor_id: str
    spec: MonitorSpec
    create_time: datetime
    update_time: datetime
    etag: str
    active_baseline_id: str | None = None

    @property
    def name(self) -> str:
        return monitor_name(self.monitor_id)


def monitor_name(monitor_id: str) -> str:
    return f"monitors/{monitor_id}"


def parse_monitor_name(name: str, field_path: str = "name") -> str:
    """`monitors/{id}` -> id, or INVALID_ARGUMENT naming `field_path`."""
    prefix = "monitors/"
    if not name.startswith(prefix) or "/" in name[len(prefix):]:
        raise InvalidArgument.one(field_path, f"expected 'monitors/{{monitor_id}}', got {name!r}")
    monitor_id = name[len(prefix):]
    validate_monitor_id(monitor_id, field_path)
    return monitor_id


def validate_monitor_id(monitor_id: str, field_path: str = "monitor_id") -> None:
    if not MONITOR_ID_RE.match(monitor_id or ""):
        raise InvalidArgument.one(field_path, f"invalid monitor id {monitor_id!r}: use 1-63 characters [a-z0-9-_.], starting with a letter or digit")


def parse_selector(selector: str) -> tuple[str, dict[str, str]]:
    """`feature_psi{feature="age"}` -> ("feature_psi", {"feature": "age"}); ValueError if malformed."""
    m = SELECTOR_RE.match(selector.strip())
    if not m:
        raise ValueError(f"malformed selector {selector!r}: expected metric or metric{{label=\"value\"}}")
    labels: dict[str, str] = {}
    raw = m.group("labels")
    if raw is not None and raw.strip():
        for part in raw.split(","):
            lm = SELECTOR_LABEL_RE.match(part)
            if not lm:
                raise ValueError(f"malformed label matcher {part.strip()!r} in selector {selector!r}")
            labels[lm.group("key")] = lm.group("value")
    return m.group("metric"), labels


def rules_violations(rules: tuple[AlarmRule, ...], prefix: str) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if len(rules) > MAX_RULES:
        out.append(FieldViolation(prefix, f"{len(rules)} rules; the limit is {MAX_RULES}"))
    ids: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if not RULE_ID_RE.match(rule.rule_id or ""):
            out.append(FieldViolation(f"{prefix}[{i}].rule_id", f"invalid rule id {rule.rule_id!r}: use 1-63 characters [a-z0-9-_]"))
        elif rule.rule_id in ids:
            out.append(FieldViolation(f"{prefix}[{i}].rule_id", f"duplicate rule id {rule.rule_id!r} (also at {prefix}[{ids[rule.rule_id]}])"))
        else:
            ids[rule.rule_id] = i
    for i, rule in enumerate(rules):
        out += _rule_violations(rule, f"{prefix}[{i}]", ids)
    return out


def _rule_violations(rule: AlarmRule, path: str, ids: dict[str, int]) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if (rule.metric is None) == (rule.composite is None):
        out.append(FieldViolation(f"{path}.condition", "set exactly one of metric or composite"))
    if rule.metric is not None:
        cond, cpath = rule.metric, f"{path}.metric"
        try:
            metric, labels = parse_selector(cond.selector)
            if metric not in SELECTOR_METRICS:
                out.append(FieldViolation(f"{cpath}.selector", f"unknown metric {metric!r}; known: {', '.join(sorted(SELECTOR_METRICS))}"))
            else:
                # A label left out matches every series (one alarm instance per feature / block / output).
                allowed = {SELECTOR_METRICS[metric]} - {None}
                extra = sorted(set(labels) - allowed)
                if extra:
                    out.append(FieldViolation(f"{cpath}.selector", f"metric {metric!r} has no label {extra[0]!r}; "
                                              f"it takes {', '.join(sorted(allowed)) or 'no labels'}"))
        except ValueError as exc:
            out.append(FieldViolation(f"{cpath}.selector", str(exc)))
        if not isinstance(cond.direction, Direction):
            out.append(FieldViolation(f"{cpath}.direction", "set direction to ABOVE or BELOW"))
        if (cond.fixed_threshold is None) == (cond.calibrated_threshold is None):
            out.append(FieldViolation(f"{cpath}.threshold", "set exactly one of fixed_threshold or calibrated_threshold"))
        if cond.fixed_threshold is not None and cond.fixed_threshold != cond.fixed_threshold:
            out.append(FieldViolation(f"{cpath}.fixed_threshold", "must not be NaN"))
        if cond.max_p_value is not None and not (0.0 < cond.max_p_value <= 1.0):
            out.append(FieldViolation(f"{cpath}.max_p_value", f"must be in (0, 1], got {cond.max_p_value}"))
    if rule.composite is not None:
        comp, cpath = rule.composite, f"{path}.composite"
        if not isinstance(comp.mode, CompositeMode):
            out.append(FieldViolation(f"{cpath}.mode", "set mode to ALL, ANY or K_OF_N"))
        if not comp.rule_ids:
            out.append(FieldViolation(f"{cpath}.rule_ids", "a composite rule needs at least one rule id"))
        for j, ref in enumerate(comp.rule_ids):
            if ref == rule.rule_id:
                out.append(FieldViolation(f"{cpath}.rule_ids[{j}]", "a composite rule cannot refer to itself"))
            elif ref not in ids:
                out.append(FieldViolation(f"{cpath}.rule_ids[{j}]", f"unknown rule id {ref!r}"))
        if comp.mode == CompositeMode.K_OF_N and not (1 <= comp.k <= len(comp.rule_ids)):
            out.append(FieldViolation(f"{cpath}.k", f"k must be in [1, {len(comp.rule_ids)}], got {comp.k}"))
    if rule.min_samples < 0:
        out.append(FieldViolation(f"{path}.min_samples", "must be >= 0"))
    if rule.for_evaluations < 0:
        out.append(FieldViolation(f"{path}.for_evaluations", "must be >= 0"))
    if rule.cooldown_seconds < 0:
        out.append(FieldViolation(f"{path}.cooldown", "must be >= 0"))
    if rule.keep_firing_for_seconds < 0:
        out.append(FieldViolation(f"{path}.keep_firing_for", "must be >= 0"))
    if not isinstance(rule.severity, Severity):
        out.append(FieldViolation(f"{path}.severity", "set severity to P1, P2 or P3"))
    out += _labels_violations(rule.labels, f"{path}.labels")
    return out


def _labels_violations(labels: tuple[tuple[str, str], ...], path: str) -> list[FieldViolation]:
    return [
        FieldViolation(f"{path}[{k!r}]", f"invalid label key {k!r}: use [A-Za-z_][A-Za-z0-9_]*, at most 63 characters")
        for k, _ in labels
        if not LABEL_KEY_RE.match(k)
    ]


def _window_violations(w: WindowSpec, path: str) -> list[FieldViolation]:
    out = []
    if not (0.001 <= w.pane_seconds <= 86_400):
        out.append(FieldViolation(f"{path}.pane_duration", f"must be between 1 ms and 24 h, got {w.pane_seconds} s"))
    if not (1 <= w.pane_count <= MAX_PANE_COUNT):
        out.append(FieldViolation(f"{path}.pane_count", f"must be in [1, {MAX_PANE_COUNT}], got {w.pane_count}"))
    if w.evaluation_interval_seconds is not None and not (0.001 <= w.evaluation_interval_seconds <= 86_400):
        out.append(FieldViolation(f"{path}.evaluation_interval", f"must be between 1 ms and 24 h, got {w.evaluation_interval_seconds} s"))
    return out


def _statistics_violations(s: StatisticsConfig, path: str) -> list[FieldViolation]:
    out = []
    if not (2 <= s.numeric_bins <= 256):
        out.append(FieldViolation(f"{path}.numeric_bins", f"must be in [2, 256], got {s.numeric_bins}"))
    if not (16 <= s.reservoir_size <= 1_000_000):
        out.append(FieldViolation(f"{path}.reservoir_size", f"must be in [16, 1000000], got {s.reservoir_size}"))
    if not (16 <= s.embedding_sample_size <= 200_000):
        out.append(FieldViolation(f"{path}.embedding_sample_size", f"must be in [16, 200000], got {s.embedding_sample_size}"))
    if not (0 <= s.mmd_permutations <= 10_000):
        out.append(FieldViolation(f"{path}.mmd_permutations", f"must be in [0, 10000], got {s.mmd_permutations}"))
    if not s.mmd_bandwidth_multipliers or any(not (m > 0 and m < 1e6) for m in s.mmd_bandwidth_multipliers):
        out.append(FieldViolation(f"{path}.mmd_bandwidth_multipliers", "give one or more positive, finite multipliers"))
    if len(s.mmd_bandwidth_multipliers) > 16:
        out.append(FieldViolation(f"{path}.mmd_bandwidth_multipliers", "at most 16 bandwidths"))
    if not (1 <= s.label_ttl_seconds <= 90 * 86_400):
        out.append(FieldViolation(f"{path}.label_ttl", f"must be between 1 s and 90 days, got {s.label_ttl_seconds} s"))
    for i, st in enumerate(s.enabled):
        if not isinstance(st, Statistic):
            out.append(FieldViolation(f"{path}.enabled[{i}]", f"unknown statistic {st!r}"))
    return out


def _rule_from_dict(d: dict[str, Any]) -> AlarmRule:
    metric = d.get("metric")
    composite = d.get("composite")
    return AlarmRule(
        rule_id=d["rule_id"],
        metric=None if metric is None else MetricCondition(
            selector=metric["selector"],
            direction=Direction(metric["direction"]),
            fixed_threshold=metric.get("fixed_threshold"),
            calibrated_threshold=None if metric.get("calibrated_threshold") is None else CalibratedLevel(metric["calibrated_threshold"]),
            max_p_value=metric.get("max_p_value"),
        ),
        composite=None if composite is None else CompositeCondition(
            mode=CompositeMode(composite["mode"]), rule_ids=tuple(composite["rule_ids"]), k=composite.get("k", 0)
        ),
        min_samples=d.get("min_samples", 0),
        for_evaluations=d.get("for_evaluations", 0),
        cooldown_seconds=d.get("cooldown_seconds", 0.0),
        keep_firing_for_seconds=d.get("keep_firing_for_seconds", 0.0),
        severity=Severity(d.get("severity", "P3")),
        labels=tuple(tuple(kv) for kv in d.get("labels", ())),
        summary=d.get("summary", ""),
        runbook=d.get("runbook", ""),
    )


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    return value


# Fields of Monitor a user may change with UpdateMonitor (the names of the proto fields).
MUTABLE_FIELDS = ("model_id", "model_version", "lane", "description", "labels", "schema", "window", "statistics", "rules")


def check_update(current: Monitor, new: MonitorSpec) -> None:
    """Refuse updates the service cannot honour. The schema is fixed once a baseline is active
    (its bins and columns belong to the baseline): changing it then is FAILED_PRECONDITION."""
    if new.schema != current.spec.schema and current.active_baseline_id:
        raise FailedPrecondition(
            f"the schema of {current.name!r} cannot change while baseline {current.active_baseline_id!r} is active; "
            "create a new monitor for the new schema",
            reason="SCHEMA_LOCKED",
        )
