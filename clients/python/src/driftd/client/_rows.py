"""Turning what `log()` receives into schema-ordered numpy columns (in the sender thread, in bulk).

The caller's thread only runs `LogItem.build` (cheap shape checks, no conversion); `assemble`
turns many queued items into one batch's arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from driftd.v1 import monitor_pb2

MISSING_CODE = -1  # negative codes count as missing on the server
MISSING_NAMES = frozenset({"", "None", "nan"})  # strings that mean "no value" (what pandas writes for missing)
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


@dataclass(frozen=True)
class ClientSchema:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    embeddings: tuple[tuple[str, int], ...]
    scores: tuple[str, ...]

    @classmethod
    def from_proto(cls, monitor: monitor_pb2.Monitor) -> "ClientSchema":
        s = monitor.schema
        return cls(tuple(f.name for f in s.numeric_features), tuple(f.name for f in s.categorical_features),
                   tuple(tuple(f.categories) for f in s.categorical_features),
                   tuple((b.name, b.dim) for b in s.embedding_blocks), tuple(f.name for f in s.score_outputs))

    @property
    def feature_names(self) -> set[str]:
        return set(self.numeric) | set(self.categorical)

    @property
    def feature_name_set(self) -> frozenset[str]:
        cached = self.__dict__.get("_names")
        if cached is None:
            cached = frozenset(self.numeric) | frozenset(self.categorical)
            object.__setattr__(self, "_names", cached)
        return cached


_SCALARS = (int, float, str, bool, type(None))


def _is_scalar(v: Any) -> bool:
    return type(v) in _SCALARS or np.ndim(v) == 0


def _table(data: Any) -> Mapping[str, Any] | None:
    """A DataFrame (duck-typed: `.columns` + item access) or a mapping of column arrays."""
    if data is None:
        return None
    if hasattr(data, "columns") and hasattr(data, "__getitem__") and not isinstance(data, Mapping):
        return {str(c): data[c].to_numpy() if hasattr(data[c], "to_numpy") else np.asarray(data[c]) for c in data.columns}
    return data


@dataclass
class LogItem:
    """One `log()` call: a single row (dict of scalars) or a block of N rows."""

    rows: int
    single: bool
    features: Any
    embeddings: Any
    scores: Any
    latency_ms: Any
    status_codes: Any
    request_ids: Any
    start: int = 0  # index of the item's first row among the rows the sender accepted (flush marks)

    @classmethod
    def from_arrays(cls, schema: ClientSchema, arrays: dict[str, Any], rows: int) -> "LogItem":
        """A block item holding `assemble`'s output (categorical values already codes)."""
        table: dict[str, Any] = {}
        if "numeric" in arrays:
            table.update({name: arrays["numeric"][:, i] for i, name in enumerate(schema.numeric)})
        if "categorical" in arrays:
            table.update({name: arrays["categorical"][:, i] for i, name in enumerate(schema.categorical)})
        return cls(rows, False, table or None, arrays["embeddings"] or None, arrays.get("scores"), arrays.get("latency_ms"),
                   arrays.get("status_codes"), arrays["request_ids"])

    @property
    def optional_groups(self) -> tuple[bool, bool, bool]:
        """Which optional groups (latency, status codes, request ids) the item carries. A batch
        carries a group for all its rows or none, so items that differ here never share a batch."""
        return self.latency_ms is not None, self.status_codes is not None, self.request_ids is not None

    def split(self, k: int) -> tuple["LogItem", "LogItem"]:
        """The first k rows and the rest of a block (sender thread only: used to keep messages under the limit)."""
        return _split_item(self, k)

    @classmethod
    def build(cls, schema: ClientSchema, features, embeddings, scores, latency_ms, status_codes, request_ids) -> "LogItem":
        """Cheap checks only (names and row counts); raises ValueError with the problem."""
        if type(features) is dict and all(map(_is_scalar, features.values())):
            if not features.keys() <= schema.feature_name_set:
                unknown = set(features) - schema.feature_names
                raise ValueError(f"unknown feature(s) {sorted(unknown)}; the monitor has {sorted(schema.feature_names)}")
            if schema.embeddings and not embeddings:
                raise ValueError(f"the monitor has embedding block(s) {[n for n, _ in schema.embeddings]}: pass embeddings=")
            if schema.scores and scores is None:
                raise ValueError(f"the monitor has score output(s) {list(schema.scores)}: pass scores=")
            return cls(1, True, features, embeddings, scores, latency_ms, status_codes, request_ids)
        table = _table(features)
        if isinstance(table, Mapping):
            unknown = set(table) - schema.feature_names
            if unknown:
                raise ValueError(f"unknown feature(s) {sorted(unknown)}; the monitor has {sorted(schema.feature_names)}")
            lengths = {len(v) for v in table.values()}
        elif table is not None:
            arr = np.asarray(table)
            if arr.ndim != 2 or arr.shape[1] != len(schema.numeric) or schema.categorical:
                raise ValueError(f"features as an array must be [N, {len(schema.numeric)}] numeric columns in schema order"
                                 + (" (this monitor has categorical features: pass a dict or DataFrame)" if schema.categorical else "")
                                 + f"; got shape {list(arr.shape)}")
            lengths = {arr.shape[0]}
            table = arr
        else:
            lengths = set()
        for name, dim in schema.embeddings:
            block = None if embeddings is None else embeddings.get(name)
            if block is None:
                raise ValueError(f"missing embedding block {name!r} (dim {dim})")
            shape = np.shape(block)
            if len(shape) != 2 or shape[1] != dim:
                raise ValueError(f"embedding block {name!r} must be [N, {dim}], got {list(shape)}")
            lengths.add(shape[0])
        if schema.scores:
            if scores is None:
                raise ValueError(f"the monitor has score output(s) {list(schema.scores)}: pass scores=")
            lengths.add(np.shape(scores)[0] if np.ndim(scores) else 1)
        for name, value in (("latency_ms", latency_ms), ("status_codes", status_codes), ("request_ids", request_ids)):
            if value is not None:
                lengths.add(len(value))
        if len(lengths) != 1:
            raise ValueError(f"every column of one log() call needs the same number of rows, got {sorted(lengths)}")
        (n,) = lengths
        return cls(int(n), False, table, embeddings, scores, latency_ms, status_codes, request_ids)


def _head_tail(value: Any, k: int) -> tuple[Any, Any]:
    if value is None:
        return None, None
    if isinstance(value, Mapping):
        pairs = {name: _head_tail(v, k) for name, v in value.items()}
        return {n: h for n, (h, _) in pairs.items()}, {n: t for n, (_, t) in pairs.items()}
    if isinstance(value, (list, tuple)):
        return value[:k], value[k:]
    arr = np.asarray(value)
    return arr[:k], arr[k:]


def _split_item(item: "LogItem", k: int) -> tuple["LogItem", "LogItem"]:
    parts = [_head_tail(getattr(item, name), k) for name in ("features", "embeddings", "scores", "latency_ms", "status_codes", "request_ids")]
    head = LogItem(k, False, *(h for h, _ in parts), start=item.start)
    tail = LogItem(item.rows - k, False, *(t for _, t in parts), start=item.start + k)
    return head, tail


def _categorical_codes(values: np.ndarray, categories: tuple[str, ...]) -> np.ndarray:
    values = np.asarray(values)
    unseen = len(categories)
    if values.dtype.kind in "iu":
        in_range = (values >= INT32_MIN) & (values <= INT32_MAX)
        return np.where(in_range, values, unseen).astype(np.int64)
    if values.dtype.kind == "f":
        # NaN = missing; an integral value in int32 range is a code; +-inf and fractions are unseen
        with np.errstate(invalid="ignore"):
            code_like = np.isfinite(values) & (values == np.round(values)) & (values >= INT32_MIN) & (values <= INT32_MAX)
        return np.where(np.isnan(values), MISSING_CODE, np.where(code_like, values, unseen)).astype(np.int64)
    # strings: map each distinct value once; a name outside `categories` becomes code K (unseen)
    uniques, inverse = np.unique(values.astype(str), return_inverse=True)
    index = {c: i for i, c in enumerate(categories)}
    lookup = np.array([index.get(u, MISSING_CODE if u in MISSING_NAMES else len(categories)) for u in uniques], np.int64)
    return lookup[inverse]


def assemble(schema: ClientSchema, items: Sequence[LogItem]) -> dict[str, Any]:
    """One batch's arrays from many log items (all single rows or blocks, mixed freely)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("numeric", "categorical", "scores", "latency_ms", "status_codes")}
    embed_parts: dict[str, list[np.ndarray]] = {name: [] for name, _ in schema.embeddings}
    ids: list[str] = []
    ids_complete = True
    with_latency = all(it.latency_ms is not None for it in items)
    with_status = all(it.status_codes is not None for it in items)
    run: list[LogItem] = []

    def flush_singles() -> None:
        if not run:
            return
        n = len(run)
        if schema.numeric:
            parts["numeric"].append(np.array([[_num(it.features.get(c)) for c in schema.numeric] for it in run], np.float32).reshape(n, -1))
        if schema.categorical:
            index = [{name: i for i, name in enumerate(cats)} for cats in schema.categories]
            parts["categorical"].append(np.array(
                [[_code(it.features.get(c), idx) for c, idx in zip(schema.categorical, index)] for it in run], np.int64).reshape(n, -1))
        for name, dim in schema.embeddings:
            embed_parts[name].append(np.asarray([it.embeddings[name] for it in run], np.float32).reshape(n, dim))
        if schema.scores:
            parts["scores"].append(np.asarray([np.atleast_1d(_score_row(it.scores, schema)) for it in run], np.float32).reshape(n, -1))
        if with_latency:
            parts["latency_ms"].append(np.asarray([it.latency_ms for it in run], np.float32))
        if with_status:
            parts["status_codes"].append(np.asarray([it.status_codes for it in run], np.int32))
        run.clear()

    for it in items:
        if it.request_ids is None:
            ids_complete = False
        else:
            ids.extend([it.request_ids] if it.single else [str(x) for x in it.request_ids])
        if it.single:
            run.append(it)
            continue
        flush_singles()
        n = it.rows
        table = it.features
        if schema.numeric:
            if isinstance(table, np.ndarray):
                parts["numeric"].append(table.astype(np.float32, copy=False))
            else:
                cols = [np.asarray(table[c], np.float32) if table is not None and c in table else np.full(n, np.nan, np.float32)
                        for c in schema.numeric]
                parts["numeric"].append(np.stack(cols, axis=1))
        if schema.categorical:
            cols = [_categorical_codes(table[c], cats) if table is not None and c in table else np.full(n, MISSING_CODE, np.int64)
                    for c, cats in zip(schema.categorical, schema.categories)]
            parts["categorical"].append(np.stack(cols, axis=1))
        for name, _ in schema.embeddings:
            embed_parts[name].append(np.asarray(it.embeddings[name], np.float32))
        if schema.scores:
            parts["scores"].append(np.asarray(it.scores, np.float32).reshape(n, -1))
        if with_latency:
            parts["latency_ms"].append(np.asarray(it.latency_ms, np.float32))
        if with_status:
            parts["status_codes"].append(np.asarray(it.status_codes, np.int32))
    flush_singles()
    out: dict[str, Any] = {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in parts.items() if v}
    out["embeddings"] = {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in embed_parts.items() if v}
    out["request_ids"] = ids if ids_complete and ids else None
    return out


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _code(v: Any, index: dict[str, int]) -> int:
    """One categorical value -> code: an int is a code, a known name its index, an unknown name the
    first code past the named ones (the baseline never saw it: counted as unseen), None missing."""
    if v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)) or (isinstance(v, str) and v in MISSING_NAMES):
        return MISSING_CODE
    if isinstance(v, (int, np.integer, float, np.floating)) and not isinstance(v, bool):
        # the same rule as blocks (and the Node client): an integral value in int32 range is a code
        return int(v) if math.isfinite(v) and v == int(v) and INT32_MIN <= v <= INT32_MAX else len(index)
    return index.get(str(v), len(index))


def _score_row(scores: Any, schema: ClientSchema) -> Any:
    if isinstance(scores, Mapping):
        return [scores[name] for name in schema.scores]
    return scores
