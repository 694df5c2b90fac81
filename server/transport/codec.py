"""Protobuf <-> domain conversion. Servicers stay thin: they call these and the domain.

Tensors: raw little-endian bytes + dtype + shape, decoded zero-copy with `np.frombuffer` (the
array is a read-only view over the request's bytes; nothing per element runs in Python).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
from google.protobuf import duration_pb2, timestamp_pb2

from driftd.client.wire import tensor
from driftd.server.domain.errors import FieldViolation, InvalidArgument
from driftd.server.domain.monitor import (
    AlarmRule,
    CalibratedLevel,
    CompositeCondition,
    CompositeMode,
    Direction,
    MetricCondition,
    Monitor,
    MonitorSpec,
    Severity,
    Statistic,
    StatisticsConfig,
    WindowSpec,
)
from driftd.server.domain.schema import CategoricalFeature, EmbeddingBlock, NumericFeature, Schema, ScoreKind, ScoreOutput
from driftd.v1 import monitor_pb2, tensor_pb2

# -- tensors ------------------------------------------------------------------------------------

# bfloat16 has no numpy dtype: it travels as uint16 bit patterns and is widened by the consumer.
NUMPY_DTYPES: dict[int, np.dtype] = {
    tensor_pb2.DATA_TYPE_FLOAT32: np.dtype("<f4"),
    tensor_pb2.DATA_TYPE_FLOAT16: np.dtype("<f2"),
    tensor_pb2.DATA_TYPE_BFLOAT16: np.dtype("<u2"),
    tensor_pb2.DATA_TYPE_FLOAT64: np.dtype("<f8"),
    tensor_pb2.DATA_TYPE_INT32: np.dtype("<i4"),
    tensor_pb2.DATA_TYPE_INT64: np.dtype("<i8"),
    tensor_pb2.DATA_TYPE_UINT8: np.dtype("u1"),
    tensor_pb2.DATA_TYPE_BOOL: np.dtype("?"),
}
MAX_RANK = 4


def decode_tensor(t: tensor_pb2.Tensor, field: str, *, allowed: set[int] | None = None, rank: int | None = None) -> np.ndarray:
    """A read-only numpy view over the tensor's bytes, or INVALID_ARGUMENT naming `field`."""
    if t.dtype not in NUMPY_DTYPES:
        raise InvalidArgument.one(f"{field}.dtype", f"unknown or unspecified dtype {t.dtype}")
    if allowed is not None and t.dtype not in allowed:
        names = ", ".join(tensor_pb2.DataType.Name(a) for a in sorted(allowed))
        raise InvalidArgument.one(f"{field}.dtype", f"dtype {tensor_pb2.DataType.Name(t.dtype)} not allowed here; use one of {names}")
    shape = tuple(int(s) for s in t.shape)
    if rank is not None and len(shape) != rank:
        raise InvalidArgument.one(f"{field}.shape", f"expected rank {rank}, got shape {list(shape)}")
    if len(shape) > MAX_RANK or any(s < 0 for s in shape):
        raise InvalidArgument.one(f"{field}.shape", f"invalid shape {list(shape)}")
    dtype = NUMPY_DTYPES[t.dtype]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow, and ~20x cheaper than np.prod
    data = t.data  # read once: the protobuf runtime (upb) copies a bytes field on every access
    if len(data) != expected:
        raise InvalidArgument.one(f"{field}.data", f"shape {list(shape)} of {tensor_pb2.DataType.Name(t.dtype)} needs {expected} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


# One encoder for server and clients (the server depends on the client distribution for its stubs).
encode_tensor = tensor


# -- times ---------------------------------------------------------------------------------------

def to_timestamp(dt: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(dt.astimezone(timezone.utc))
    return ts


def from_timestamp(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=timezone.utc)


def _seconds(d: duration_pb2.Duration) -> float:
    return d.seconds + d.nanos / 1e9


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(round(seconds * 1e9)))
    return d


# -- monitors ------------------------------------------------------------------------------------

_SCORE_KINDS = {monitor_pb2.SCORE_KIND_UNSPECIFIED: ScoreKind.PROBABILITY, monitor_pb2.SCORE_KIND_PROBABILITY: ScoreKind.PROBABILITY,
                monitor_pb2.SCORE_KIND_REGRESSION: ScoreKind.REGRESSION}
_SCORE_KINDS_OUT = {ScoreKind.PROBABILITY: monitor_pb2.SCORE_KIND_PROBABILITY, ScoreKind.REGRESSION: monitor_pb2.SCORE_KIND_REGRESSION}
_SEVERITIES = {monitor_pb2.SEVERITY_P1: Severity.P1, monitor_pb2.SEVERITY_P2: Severity.P2, monitor_pb2.SEVERITY_P3: Severity.P3}
_DIRECTIONS = {monitor_pb2.DIRECTION_ABOVE: Direction.ABOVE, monitor_pb2.DIRECTION_BELOW: Direction.BELOW}
_LEVELS = {monitor_pb2.CALIBRATED_LEVEL_WARNING: CalibratedLevel.WARNING, monitor_pb2.CALIBRATED_LEVEL_CRITICAL: CalibratedLevel.CRITICAL}
_MODES = {monitor_pb2.COMPOSITE_MODE_ALL: CompositeMode.ALL, monitor_pb2.COMPOSITE_MODE_ANY: CompositeMode.ANY,
          monitor_pb2.COMPOSITE_MODE_K_OF_N: CompositeMode.K_OF_N}
_STATISTICS = {getattr(monitor_pb2, f"STATISTIC_{s.name}"): s for s in Statistic}


def _invert(d: dict) -> dict:
    return {v: k for k, v in d.items()}


class _Enums:
    """Collects unknown-enum violations while converting, so one response names every bad field."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def get(self, table: dict, value: int, field: str, enum_name: str):
        if value in table:
            return table[value]
        what = "unspecified" if value == 0 else f"unknown value {value}"
        self.violations.append(FieldViolation(field, f"{enum_name} is {what}; use one of {', '.join(monitor_pb2.DESCRIPTOR.enum_types_by_name[enum_name].values_by_number[k].name for k in sorted(table))}"))
        return None


def spec_from_proto(m: monitor_pb2.Monitor, prefix: str = "monitor") -> MonitorSpec:
    """Convert and validate; raises InvalidArgument naming every bad field."""
    enums = _Enums()
    s = m.schema
    schema = Schema(
        numeric=tuple(NumericFeature(f.name, f.valid_min if f.HasField("valid_min") else None,
                                     f.valid_max if f.HasField("valid_max") else None) for f in s.numeric_features),
        categorical=tuple(CategoricalFeature(f.name, tuple(f.categories)) for f in s.categorical_features),
        embeddings=tuple(EmbeddingBlock(f.name, f.dim) for f in s.embedding_blocks),
        scores=tuple(
            ScoreOutput(f.name, enums.get(_SCORE_KINDS, f.kind, f"{prefix}.schema.score_outputs[{i}].kind", "ScoreKind") or ScoreKind.PROBABILITY,
                        f.positive_threshold if f.HasField("positive_threshold") else 0.5)
            for i, f in enumerate(s.score_outputs)
        ),
    )
    w = m.window
    window = WindowSpec(
        pane_seconds=_seconds(w.pane_duration) if w.HasField("pane_duration") else WindowSpec.pane_seconds,
        pane_count=w.pane_count or WindowSpec.pane_count,
        evaluation_interval_seconds=_seconds(w.evaluation_interval) if w.HasField("evaluation_interval") else None,
    )
    st = m.statistics
    defaults = StatisticsConfig()
    statistics = StatisticsConfig(
        enabled=tuple(x for x in (enums.get(_STATISTICS, v, f"{prefix}.statistics.enabled[{i}]", "Statistic") for i, v in enumerate(st.enabled)) if x),
        numeric_bins=st.numeric_bins or defaults.numeric_bins,
        reservoir_size=st.reservoir_size or defaults.reservoir_size,
        embedding_sample_size=st.embedding_sample_size or defaults.embedding_sample_size,
        mmd_permutations=st.mmd_permutations if st.mmd_permutations else defaults.mmd_permutations,
        mmd_bandwidth_multipliers=tuple(st.mmd_bandwidth_multipliers) or defaults.mmd_bandwidth_multipliers,
        label_ttl_seconds=_seconds(st.label_ttl) if st.HasField("label_ttl") else defaults.label_ttl_seconds,
    )
    rules = tuple(_rule_from_proto(r, f"{prefix}.rules[{i}]", enums) for i, r in enumerate(m.rules))
    spec = MonitorSpec(
        model_id=m.model_id, model_version=m.model_version, lane=m.lane, description=m.description,
        labels=tuple(sorted(m.labels.items())), schema=schema, window=window, statistics=statistics, rules=rules,
    )
    problems = enums.violations + spec.violations(prefix)
    if problems:
        raise InvalidArgument(problems)
    return spec


def _rule_from_proto(r: monitor_pb2.AlarmRule, path: str, enums: _Enums) -> AlarmRule:
    metric = composite = None
    which = r.WhichOneof("condition")
    if which == "metric":
        c = r.metric
        tw = c.WhichOneof("threshold")
        metric = MetricCondition(
            selector=c.selector,
            direction=enums.get(_DIRECTIONS, c.direction, f"{path}.metric.direction", "Direction"),
            fixed_threshold=c.fixed_threshold if tw == "fixed_threshold" else None,
            calibrated_threshold=(enums.get(_LEVELS, c.calibrated_threshold, f"{path}.metric.calibrated_threshold", "CalibratedLevel")
                                  if tw == "calibrated_threshold" else None),
            max_p_value=c.max_p_value if c.HasField("max_p_value") else None,
        )
        if tw == "calibrated_threshold" and metric.calibrated_threshold is None:
            # The unknown level is already reported; keep the threshold "set" so it is not reported twice.
            metric = MetricCondition(metric.selector, metric.direction, 0.0, None, metric.max_p_value)
    elif which == "composite":
        c = r.composite
        composite = CompositeCondition(
            mode=enums.get(_MODES, c.mode, f"{path}.composite.mode", "CompositeMode"), rule_ids=tuple(c.rule_ids), k=c.k,
        )
    severity = enums.get(_SEVERITIES, r.severity, f"{path}.severity", "Severity")
    return AlarmRule(
        rule_id=r.rule_id, metric=metric, composite=composite, min_samples=r.min_samples, for_evaluations=r.for_evaluations,
        cooldown_seconds=_seconds(r.cooldown), keep_firing_for_seconds=_seconds(r.keep_firing_for),
        severity=severity or Severity.P3, labels=tuple(sorted(r.labels.items())), summary=r.summary, runbook=r.runbook,
    )


def monitor_to_proto(monitor: Monitor) -> monitor_pb2.Monitor:
    spec = monitor.spec
    out = monitor_pb2.Monitor(
        name=monitor.name, model_id=spec.model_id, model_version=spec.model_version, lane=spec.lane,
        description=spec.description, labels=dict(spec.labels),
        active_baseline=f"{monitor.name}/baselines/{monitor.active_baseline_id}" if monitor.active_baseline_id else "",
        create_time=to_timestamp(monitor.create_time), update_time=to_timestamp(monitor.update_time), etag=monitor.etag,
    )
    for f in spec.schema.numeric:
        nf = out.schema.numeric_features.add(name=f.name)
        if f.valid_min is not None:
            nf.valid_min = f.valid_min
        if f.valid_max is not None:
            nf.valid_max = f.valid_max
    for f in spec.schema.categorical:
        out.schema.categorical_features.add(name=f.name, categories=list(f.categories))
    for f in spec.schema.embeddings:
        out.schema.embedding_blocks.add(name=f.name, dim=f.dim)
    for f in spec.schema.scores:
        out.schema.score_outputs.add(name=f.name, kind=_SCORE_KINDS_OUT[f.kind], positive_threshold=f.positive_threshold)
    w = spec.window
    out.window.pane_duration.CopyFrom(_duration(w.pane_seconds))
    out.window.pane_count = w.pane_count
    out.window.evaluation_interval.CopyFrom(_duration(w.effective_evaluation_interval))
    st = spec.statistics
    stats_out = _invert(_STATISTICS)
    out.statistics.enabled.extend(stats_out[s] for s in st.enabled)
    out.statistics.numeric_bins = st.numeric_bins
    out.statistics.reservoir_size = st.reservoir_size
    out.statistics.embedding_sample_size = st.embedding_sample_size
    out.statistics.mmd_permutations = st.mmd_permutations
    out.statistics.mmd_bandwidth_multipliers.extend(st.mmd_bandwidth_multipliers)
    out.statistics.label_ttl.CopyFrom(_duration(st.label_ttl_seconds))
    for rule in spec.rules:
        out.rules.append(_rule_to_proto(rule))
    return out


def _rule_to_proto(rule: AlarmRule) -> monitor_pb2.AlarmRule:
    r = monitor_pb2.AlarmRule(
        rule_id=rule.rule_id, min_samples=rule.min_samples, for_evaluations=rule.for_evaluations,
        cooldown=_duration(rule.cooldown_seconds), keep_firing_for=_duration(rule.keep_firing_for_seconds),
        severity=_invert(_SEVERITIES)[rule.severity], labels=dict(rule.labels), summary=rule.summary, runbook=rule.runbook,
    )
    if rule.metric is not None:
        c = rule.metric
        r.metric.selector = c.selector
        r.metric.direction = _invert(_DIRECTIONS)[c.direction]
        if c.fixed_threshold is not None:
            r.metric.fixed_threshold = c.fixed_threshold
        if c.calibrated_threshold is not None:
            r.metric.calibrated_threshold = _invert(_LEVELS)[c.calibrated_threshold]
        if c.max_p_value is not None:
            r.metric.max_p_value = c.max_p_value
    if rule.composite is not None:
        r.composite.mode = _invert(_MODES)[rule.composite.mode]
        r.composite.rule_ids.extend(rule.composite.rule_ids)
        r.composite.k = rule.composite.k
    return r
