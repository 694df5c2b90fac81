"""Alarm engine: rules on snapshot metrics -> per-instance state machines -> events.

An *alarm instance* is one rule applied to one label set: a rule whose selector leaves a label
open (``feature_psi`` with no ``feature=...``) gets one instance per matching series. Each
evaluation takes a `MetricFrame` (the metric series of one snapshot) and returns the transitions.

States and transitions (every transition is an event):

* ``inactive → pending`` when the condition first holds (``for_evaluations`` > 0),
  ``pending → firing`` after it held ``for_evaluations`` consecutive evaluations
  (``inactive → firing`` directly when ``for_evaluations`` is 0), ``pending → inactive`` if it stops
  holding before that;
* ``firing → resolved`` once the condition has been false for ``keep_firing_for`` seconds
  (immediately when 0);
* after ``resolved`` the instance cannot become pending again for ``cooldown`` seconds;
* ``* → no_data`` when the series is missing or has fewer than ``min_samples`` samples; data coming
  back re-evaluates from ``inactive``.

Composite rules combine the *conditions* (not the states) of other rules in the same evaluation:
all / any / k-of-n, where a referenced rule counts as true when any of its instances' conditions
holds. So a P1 can require drift *and* a quality drop at the same time.

>>> from driftd.server.domain.monitor import AlarmRule, MetricCondition, Direction, Severity
>>> rule = AlarmRule("psi", MetricCondition('feature_psi{feature="age"}', Direction.ABOVE, fixed_threshold=0.25), severity=Severity.P2)
>>> engine = AlarmEngine("fraud", (rule,))
>>> frame = {("feature_psi", (("feature", "age"),)): MetricSample(0.4, samples=1000)}
>>> [(e.previous_state, e.state) for e in engine.evaluate(frame, now=T0, row_count=1000)]
[('inactive', 'firing')]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from driftd.server.domain.monitor import (
    AlarmRule,
    CalibratedLevel,
    CompositeMode,
    Direction,
    MetricCondition,
    Severity,
    parse_selector,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

INACTIVE, PENDING, FIRING, RESOLVED, NO_DATA = "inactive", "pending", "firing", "resolved", "no_data"
Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]


@dataclass(frozen=True)
class MetricSample:
    """One metric series value from a snapshot, with what a rule needs to judge it."""

    value: float
    p_value: float | None = None
    samples: int = 0
    warning: float | None = None   # calibrated thresholds from the baseline, when the metric has them
    critical: float | None = None


MetricFrame = dict[SeriesKey, MetricSample]


@dataclass
class InstanceState:
    state: str = INACTIVE
    consecutive_true: int = 0
    since: datetime | None = None
    last_true: datetime | None = None
    resolved_at: datetime | None = None
    value: float = math.nan
    threshold: float = math.nan
    silenced_until: datetime | None = None
    acknowledged: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("since", "last_true", "resolved_at", "silenced_until"):
            d[k] = None if d[k] is None else d[k].isoformat()
        for k in ("value", "threshold"):
            d[k] = None if not math.isfinite(d[k]) else d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InstanceState":
        out = cls(**{**d})
        for k in ("since", "last_true", "resolved_at", "silenced_until"):
            v = getattr(out, k)
            setattr(out, k, None if v is None else datetime.fromisoformat(v))
        out.value = math.nan if d.get("value") is None else d["value"]
        out.threshold = math.nan if d.get("threshold") is None else d["threshold"]
        return out


@dataclass(frozen=True)
class AlarmTransition:
    """A state change of one alarm instance (becomes one event in the log)."""

    monitor_id: str
    alarm_id: str
    rule_id: str
    labels: Labels
    previous_state: str
    state: str
    severity: Severity
    value: float
    threshold: float
    summary: str
    runbook: str
    event_time: datetime

    def payload(self, *, baseline: str = "", snapshot: str = "") -> dict[str, Any]:
        return {
            "kind": "transition", "alarm": f"monitors/{self.monitor_id}/alarms/{self.alarm_id}",
            "monitor": f"monitors/{self.monitor_id}", "rule_id": self.rule_id, "labels": dict(self.labels),
            "previous_state": self.previous_state, "state": self.state, "severity": self.severity.value,
            "value": _finite_or_none(self.value), "threshold": _finite_or_none(self.threshold),
            "summary": self.summary, "runbook": self.runbook, "baseline": baseline, "snapshot": snapshot,
            "event_time": self.event_time.isoformat(),
        }


def _finite_or_none(x: float) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def alarm_id(rule_id: str, labels: Labels) -> str:
    """Stable, URL-safe instance id: the rule id plus its label values (`psi.age`)."""
    return ".".join([rule_id, *(v.replace("/", "_").replace(".", "_") for _, v in labels)]) if labels else rule_id


class _SafeFormat(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.4g}"


@dataclass(frozen=True)
class _Evaluation:
    truth: bool | None  # None = no data
    value: float
    threshold: float


class AlarmEngine:
    def __init__(self, monitor_id: str, rules: tuple[AlarmRule, ...], *, baseline: str = "",
                 states: dict[str, InstanceState] | None = None) -> None:
        self.monitor_id = monitor_id
        self.rules = rules
        self.baseline = baseline
        self.states: dict[str, InstanceState] = dict(states or {})
        # alarm_id -> (rule, labels) of every instance seen (or restored from the store)
        self.instances: dict[str, tuple[AlarmRule | None, Labels]] = {}

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self, frame: MetricFrame, *, now: datetime, row_count: int) -> list[AlarmTransition]:
        transitions: list[AlarmTransition] = []
        rule_truth: dict[str, bool | None] = {}
        for rule in self.rules:
            if rule.metric is None:
                continue
            results = self._metric_instances(rule, rule.metric, frame)
            truths = [r.truth for _, r in results if r.truth is not None]
            rule_truth[rule.rule_id] = any(truths) if truths else None
            for labels, result in results:
                transitions += self._step(rule, labels, result, now)
        for rule in self.rules:
            if rule.composite is None:
                continue
            result = self._composite(rule, rule_truth, row_count)
            rule_truth[rule.rule_id] = result.truth
            transitions += self._step(rule, (), result, now)
        return transitions

    def _metric_instances(self, rule: AlarmRule, cond: MetricCondition, frame: MetricFrame) -> list[tuple[Labels, _Evaluation]]:
        metric, wanted = parse_selector(cond.selector)
        matches = [(labels, sample) for (name, labels), sample in frame.items()
                   if name == metric and all(dict(labels).get(k) == v for k, v in wanted.items())]
        out = []
        for labels, sample in sorted(matches, key=lambda m: m[0]):
            out.append((labels, self._judge(rule, cond, sample)))
        if not matches:
            # No series at all: report no_data on the instances we know of (or the exact one asked for).
            known = [lab for r, lab in self.instances.values() if r is not None and r.rule_id == rule.rule_id]
            out = [(lab, _Evaluation(None, math.nan, math.nan)) for lab in known or [tuple(sorted(wanted.items()))]]
        return out

    @staticmethod
    def _judge(rule: AlarmRule, cond: MetricCondition, sample: MetricSample) -> _Evaluation:
        if cond.fixed_threshold is not None:
            threshold = cond.fixed_threshold
        else:
            threshold = sample.warning if cond.calibrated_threshold == CalibratedLevel.WARNING else sample.critical
        if threshold is None or not math.isfinite(sample.value) or sample.samples < rule.min_samples:
            return _Evaluation(None, sample.value, math.nan if threshold is None else threshold)
        truth = sample.value > threshold if cond.direction == Direction.ABOVE else sample.value < threshold
        if truth and cond.max_p_value is not None:
            truth = sample.p_value is not None and sample.p_value <= cond.max_p_value
        return _Evaluation(truth, sample.value, threshold)

    @staticmethod
    def _composite(rule: AlarmRule, rule_truth: dict[str, bool | None], row_count: int) -> _Evaluation:
        comp = rule.composite
        assert comp is not None
        if row_count < rule.min_samples:
            return _Evaluation(None, math.nan, math.nan)
        truths = [rule_truth.get(r) for r in comp.rule_ids]
        known = [t for t in truths if t is not None]
        hits = sum(bool(t) for t in known)
        need = {CompositeMode.ALL: len(truths), CompositeMode.ANY: 1, CompositeMode.K_OF_N: comp.k}[comp.mode]
        if not known:
            return _Evaluation(None, math.nan, float(need))
        return _Evaluation(hits >= need, float(hits), float(need))

    def _step(self, rule: AlarmRule, labels: Labels, result: _Evaluation, now: datetime) -> list[AlarmTransition]:
        aid = alarm_id(rule.rule_id, labels)
        self.instances[aid] = (rule, labels)
        st = self.states.setdefault(aid, InstanceState(since=now))
        st.value, st.threshold = result.value, result.threshold
        previous = st.state
        new = previous
        if result.truth is None:
            new = NO_DATA
            st.consecutive_true = 0
        elif result.truth:
            st.last_true = now
            st.consecutive_true += 1
            if previous in (INACTIVE, NO_DATA, RESOLVED):
                in_cooldown = (previous == RESOLVED and st.resolved_at is not None
                               and now - st.resolved_at < timedelta(seconds=rule.cooldown_seconds))
                if not in_cooldown:
                    new = FIRING if st.consecutive_true > rule.for_evaluations else PENDING
                else:
                    st.consecutive_true = 0
            elif previous == PENDING and st.consecutive_true > rule.for_evaluations:
                new = FIRING
        else:
            st.consecutive_true = 0
            if previous == PENDING:
                new = INACTIVE
            elif previous == FIRING:
                keep = timedelta(seconds=rule.keep_firing_for_seconds)
                if st.last_true is None or now - st.last_true >= keep:
                    new = RESOLVED
            elif previous == NO_DATA:
                new = INACTIVE
        if new == previous:
            return []
        st.state = new
        st.since = now
        if new == RESOLVED:
            st.resolved_at = now
        if new in (FIRING, PENDING):
            st.acknowledged = False
        return [self._transition(rule, aid, labels, previous, new, result, now)]

    def _transition(self, rule: AlarmRule, aid: str, labels: Labels, previous: str, new: str, result: _Evaluation,
                    now: datetime) -> AlarmTransition:
        direction = rule.metric.direction.value if rule.metric else "above"
        context = _SafeFormat(
            monitor=self.monitor_id, rule=rule.rule_id, value=_fmt(result.value), threshold=_fmt(result.threshold),
            baseline=self.baseline or "(none)", severity=rule.severity.value, state=new, previous_state=previous,
            direction=direction, selector=rule.metric.selector if rule.metric else rule.rule_id, **dict(labels),
        )
        if new in (PENDING, FIRING):
            summary = (rule.summary or default_summary(rule)).format_map(context)
            runbook = (rule.runbook or default_runbook(rule)).format_map(context)
        else:  # the rule's text describes the bad condition; say what changed instead
            runbook = ""
            summary = {
                RESOLVED: "{selector} on {monitor} is back to {value} (threshold {threshold})",
                NO_DATA: "{selector} on {monitor} has no series or fewer than " + str(rule.min_samples) + " rows in the window",
                INACTIVE: "{selector} on {monitor} cleared before firing: {value} (threshold {threshold})",
            }[new].format_map(context)
        return AlarmTransition(self.monitor_id, aid, rule.rule_id, labels, previous, new, rule.severity,
                               result.value, result.threshold, summary, runbook, now)

    # -- operator actions ----------------------------------------------------------------------

    def silence(self, aid: str, until: datetime) -> InstanceState:
        st = self.states[aid]
        st.silenced_until = until
        return st

    def acknowledge(self, aid: str) -> InstanceState:
        st = self.states[aid]
        st.acknowledged = True
        return st


def default_summary(rule: AlarmRule) -> str:
    if rule.metric is None:
        return "{rule} on {monitor}: {value} of {threshold} required conditions hold"
    return "{selector} on {monitor} is {value} ({direction} threshold {threshold}) against baseline {baseline}"


def default_runbook(rule: AlarmRule) -> str:
    return ("Open the latest snapshot (`driftd snapshot {monitor}`) to see which columns moved and by how much. "
            "Check the upstream feature pipeline for schema or unit changes, compare with the canary lane, "
            "and if the model's inputs really changed, retrain or roll back to the previous model version.")


def default_rules(schema) -> tuple[AlarmRule, ...]:
    """The rule pack a monitor gets when it is created without rules, derived from the PSI bands
    (design §2: > 0.25 is retrain-level) and the baseline's calibrated thresholds (p99 of the
    statistic across reference shards = critical). Every rule needs two consecutive evaluations
    and a minimum window, so a single noisy window never pages anyone."""
    from driftd.server.domain.monitor import CompositeCondition

    def metric(rule_id, selector, severity, *, fixed=None, level=None, direction=Direction.ABOVE, max_p=None,
               min_samples=500, for_evaluations=2, summary="", runbook=""):
        return AlarmRule(rule_id, MetricCondition(selector, direction, fixed_threshold=fixed, calibrated_threshold=level,
                                                  max_p_value=max_p),
                         min_samples=min_samples, for_evaluations=for_evaluations, cooldown_seconds=600.0,
                         keep_firing_for_seconds=0.0, severity=severity, summary=summary, runbook=runbook)

    rules: list[AlarmRule] = []
    if schema.numeric or schema.categorical:
        rules += [
            metric("feature-drift", "feature_psi", Severity.P3, level=CalibratedLevel.CRITICAL,
                   summary="{feature} drifted on {monitor}: PSI {value} above its calibrated critical {threshold} (baseline {baseline})"),
            metric("feature-drift-retrain", "feature_psi", Severity.P2, fixed=0.25,
                   summary="{feature} on {monitor} is in the retrain band: PSI {value} > 0.25 (baseline {baseline})",
                   runbook="PSI above 0.25 means the input distribution of {feature} has changed materially. Check the upstream "
                           "pipeline for a unit, encoding or default-value change; compare with the canary lane; if the change is "
                           "real, retrain on recent data or roll back to the previous model version."),
            metric("feature-quality", "feature_nan_rate", Severity.P2, level=CalibratedLevel.CRITICAL, min_samples=200,
                   summary="{feature} on {monitor}: NaN rate {value} above the baseline's critical {threshold}",
                   runbook="A burst of missing values usually means a broken upstream join or a failing feature service. "
                           "Check the feature pipeline's recent deploys and the source tables of {feature}."),
            metric("feature-range", "feature_out_of_range_rate", Severity.P2, level=CalibratedLevel.CRITICAL, min_samples=200,
                   summary="{feature} on {monitor}: out-of-range rate {value} above {threshold} (sentinel values like -999?)"),
        ]
    for block in schema.embeddings:
        rules.append(metric(f"embedding-drift-{block.name}".lower().replace("_", "-")[:63], f'embedding_mmd2{{block="{block.name}"}}',
                            Severity.P2, level=CalibratedLevel.CRITICAL, max_p=0.01, min_samples=100,
                            summary="embedding block {block} on {monitor}: MMD² {value} above calibrated {threshold}"))
    if schema.scores:
        rules.append(metric("prediction-drift", "score_psi", Severity.P2, level=CalibratedLevel.CRITICAL,
                            summary="prediction {output} on {monitor}: PSI {value} above calibrated {threshold}"))
    rules += [
        metric("error-rate", "error_rate", Severity.P2, fixed=0.05, min_samples=100,
               summary="{monitor}: error rate {value} above 5 %"),
        metric("concept-drift", "cusum_error", Severity.P2, level=CalibratedLevel.CRITICAL, min_samples=50, for_evaluations=1,
               summary="{monitor}: CUSUM of the error stream {value} crossed {threshold}: the model got worse on labelled traffic"),
    ]
    if schema.numeric or schema.categorical:
        rules.append(AlarmRule("drift-and-quality-drop", composite=CompositeCondition(CompositeMode.ALL, ("feature-drift", "concept-drift")),
                               severity=Severity.P1, for_evaluations=1,
                               summary="{monitor}: inputs drifted AND labelled accuracy dropped",
                               runbook="Inputs changed and the model is measurably worse. Roll back to the previous model "
                                       "version or fail over to the fallback, then investigate the upstream change."))
    return tuple(rules)
