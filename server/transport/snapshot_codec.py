"""Snapshot and baseline summaries -> protobuf.

Snapshots are stored as the engine's JSON-safe dicts (the store knows no protobuf); their keys are
the proto field names, so one descriptor-driven converter maps them: enums from their lower-case
values (`"critical"` -> `VERDICT_CRITICAL`), unix seconds -> Timestamp, and None -> unset for
`optional` fields or NaN for plain doubles (a missing statistic never reads as 0).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from driftd.server.domain.baseline import Baseline
from driftd.server.transport.codec import to_timestamp
from driftd.v1 import baseline_pb2, snapshot_pb2

_DOUBLE = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


def _enum_value(field: FieldDescriptor, value: Any) -> int:
    enum = field.enum_type
    prefix = enum.name  # e.g. Verdict -> VERDICT_
    upper = "".join("_" + c if c.isupper() and i else c for i, c in enumerate(prefix)).upper()
    name = f"{upper}_{str(value).upper()}"
    return enum.values_by_name[name].number if name in enum.values_by_name else 0


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.type in _DOUBLE:
        return math.nan if value is None else float(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum_value(field, value)
    if field.type == FieldDescriptor.TYPE_STRING:
        return str(value)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return bool(value)
    return int(value)


def fill(message: Message, data: dict[str, Any]) -> Message:
    """Copy `data` into `message` by field name (unknown keys are ignored)."""
    fields = message.DESCRIPTOR.fields_by_name
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            continue
        if field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp":
            if value is not None:
                getattr(message, key).CopyFrom(to_timestamp(datetime.fromtimestamp(float(value), tz=timezone.utc)))
            continue
        if field.is_repeated:
            target = getattr(message, key)
            for item in value or []:
                if field.message_type is not None:
                    fill(target.add(), item)
                else:
                    target.append(_scalar(field, item))
            continue
        if field.message_type is not None:
            if value is not None:
                fill(getattr(message, key), value)
            continue
        if value is None and field.has_presence:
            continue
        setattr(message, key, _scalar(field, value))
    return message


def snapshot_to_proto(monitor_id: str, snapshot: dict[str, Any]) -> snapshot_pb2.Snapshot:
    out = fill(snapshot_pb2.Snapshot(), snapshot)
    out.name = f"monitors/{monitor_id}/snapshots/{snapshot['snapshot_id']}"
    out.baseline = f"monitors/{monitor_id}/baselines/{snapshot['baseline']}"
    return out


def _finite(xs) -> list[float]:
    return [float(x) for x in xs if math.isfinite(float(x))]


def baseline_to_proto(monitor_id: str, baseline_id: str, baseline: Baseline, *, active: bool) -> baseline_pb2.Baseline:
    meta = baseline.metadata
    out = baseline_pb2.Baseline(
        name=f"monitors/{monitor_id}/baselines/{baseline_id}", model_id=meta.model_id, data_hash=meta.data_hash,
        git_commit=meta.git_commit, source=meta.source, row_count=meta.row_count, active=active,
        format_version=meta.format_version,
        create_time=to_timestamp(datetime.fromisoformat(meta.created_at)),
    )
    if baseline.numeric is not None:
        n = baseline.numeric
        for i, name in enumerate(n.names):
            out.numeric_features.add(feature=name, edges=_finite(n.edges[i, : int(n.n_edges[i])]),
                                     bucket_counts=[int(c) for c in n.counts[i, : int(n.n_edges[i]) + 1]],
                                     nan_count=int(n.nan_count[i]), mean=float(n.mean[i]), std=float(n.std[i]))
    if baseline.categorical is not None:
        c = baseline.categorical
        for i, name in enumerate(c.names):
            k = int(c.n_codes[i])
            out.categorical_features.add(feature=name, codes=list(range(k)), counts=[int(x) for x in c.counts[i, :k]])
    for name, e in baseline.embeddings.items():
        out.embedding_blocks.add(block=name, sample_size=int(e.sample.shape[0]), bandwidths=list(e.bandwidths))
    for key, thr in sorted(baseline.thresholds.items()):
        group, _, statistic = key.rpartition(".")
        columns = _threshold_columns(baseline, group)
        for i, (w, c) in enumerate(zip(thr.warning.ravel(), thr.critical.ravel())):
            out.thresholds.add(statistic=key, column=columns[i] if i < len(columns) else str(i),
                               warning=float(w), critical=float(c), shard_count=baseline.config.calibration_shards)
    return out


def _threshold_columns(baseline: Baseline, group: str) -> list[str]:
    if group == "numeric" and baseline.numeric is not None:
        return list(baseline.numeric.names)
    if group == "scores" and baseline.scores is not None:
        return list(baseline.scores.names)
    if group == "categorical" and baseline.categorical is not None:
        return list(baseline.categorical.names)
    if group.startswith("embedding."):
        return [group.split(".", 1)[1]]
    return []
