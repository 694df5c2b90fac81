"""Decode a `driftd.v1.Batch` into numpy arrays and validate it against the monitor's schema.

No per-element Python: every tensor is a zero-copy view over the request bytes; checks are on
dtypes and shapes only. NaN / inf values are data (counted as data-quality signals downstream),
never errors. Every error names the request field (`batch.numeric.shape`, `batch.embeddings["text"]`).
"""

from __future__ import annotations

import numpy as np

from driftd.server.domain.errors import InvalidArgument
from driftd.server.domain.rows import RowBatch
from driftd.server.domain.schema import Schema
from driftd.server.transport.codec import decode_tensor, from_timestamp
from driftd.v1 import ingest_pb2, tensor_pb2

FLOAT_TYPES = {tensor_pb2.DATA_TYPE_FLOAT32, tensor_pb2.DATA_TYPE_FLOAT16, tensor_pb2.DATA_TYPE_BFLOAT16, tensor_pb2.DATA_TYPE_FLOAT64}
INT_TYPES = {tensor_pb2.DATA_TYPE_INT32, tensor_pb2.DATA_TYPE_INT64}
STATUS_TYPES = {tensor_pb2.DATA_TYPE_INT32, tensor_pb2.DATA_TYPE_INT64}
MAX_ROWS_PER_BATCH = 1_000_000


def _as_float32(array: np.ndarray, dtype: int) -> np.ndarray:
    if dtype == tensor_pb2.DATA_TYPE_BFLOAT16:
        # bfloat16 is the upper half of a float32: widen the bit patterns (vectorised).
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array if array.dtype == np.float32 else array.astype(np.float32)


def decode_batch(batch: ingest_pb2.Batch, schema: Schema, prefix: str = "batch") -> RowBatch:
    rows: int | None = None
    row_source = ""

    def check_rows(n: int, path: str) -> None:
        nonlocal rows, row_source
        if rows is None:
            rows, row_source = n, path
        elif n != rows:
            raise InvalidArgument.one(path, f"has {n} rows but {row_source} has {rows}; every tensor of a batch needs the same row count")

    def matrix(t: tensor_pb2.Tensor, path: str, allowed: set[int], columns: int, what: str) -> np.ndarray:
        arr = decode_tensor(t, path, allowed=allowed, rank=2)
        if arr.shape[1] != columns:
            raise InvalidArgument.one(f"{path}.shape", f"expected {columns} {what} columns (schema order), got {arr.shape[1]}")
        check_rows(arr.shape[0], f"{path}.shape")
        return arr

    def vector(t: tensor_pb2.Tensor, path: str, allowed: set[int]) -> np.ndarray:
        arr = decode_tensor(t, path, allowed=allowed, rank=1)
        check_rows(arr.shape[0], f"{path}.shape")
        return arr

    out = RowBatch(rows=0)
    present = False
    if batch.HasField("numeric"):
        if not schema.numeric:
            raise InvalidArgument.one(f"{prefix}.numeric", "the monitor's schema has no numeric features")
        arr = matrix(batch.numeric, f"{prefix}.numeric", FLOAT_TYPES, len(schema.numeric), "numeric")
        out.numeric = _as_float32(arr, batch.numeric.dtype)
        present = True
    if batch.HasField("categorical"):
        if not schema.categorical:
            raise InvalidArgument.one(f"{prefix}.categorical", "the monitor's schema has no categorical features")
        arr = matrix(batch.categorical, f"{prefix}.categorical", INT_TYPES, len(schema.categorical), "categorical")
        out.categorical = arr.astype(np.int64, copy=False)
        present = True
    known_blocks = {b.name: b for b in schema.embeddings}
    for name in sorted(batch.embeddings):
        path = f'{prefix}.embeddings["{name}"]'
        if name not in known_blocks:
            raise InvalidArgument.one(path, f"unknown embedding block {name!r}; the schema has {sorted(known_blocks) or 'none'}")
        t = batch.embeddings[name]
        arr = matrix(t, path, FLOAT_TYPES, known_blocks[name].dim, f"embedding (dim of block {name!r})")
        out.embeddings[name] = _as_float32(arr, t.dtype)
        present = True
    if batch.HasField("scores"):
        if not schema.scores:
            raise InvalidArgument.one(f"{prefix}.scores", "the monitor's schema has no score outputs")
        out.scores = _as_float32(matrix(batch.scores, f"{prefix}.scores", FLOAT_TYPES, len(schema.scores), "score"), batch.scores.dtype)
        present = True
    if batch.HasField("latency_ms"):
        out.latency_ms = _as_float32(vector(batch.latency_ms, f"{prefix}.latency_ms", FLOAT_TYPES), batch.latency_ms.dtype)
        present = True
    if batch.HasField("status_codes"):
        out.status_codes = vector(batch.status_codes, f"{prefix}.status_codes", STATUS_TYPES).astype(np.int32, copy=False)
        present = True
    if batch.request_ids:
        if rows is not None and len(batch.request_ids) != rows:
            raise InvalidArgument.one(f"{prefix}.request_ids", f"has {len(batch.request_ids)} ids but the batch has {rows} rows")
        out.request_ids = list(batch.request_ids)
    if not present:
        raise InvalidArgument.one(prefix, "the batch carries no tensors: set numeric, categorical, embeddings, scores, latency_ms or status_codes")
    assert rows is not None
    if rows == 0:
        raise InvalidArgument.one(row_source, "the batch has no rows")
    if rows > MAX_ROWS_PER_BATCH:
        raise InvalidArgument.one(row_source, f"{rows} rows; at most {MAX_ROWS_PER_BATCH} per batch")
    out.rows = rows
    if batch.HasField("event_time"):
        out.event_time = from_timestamp(batch.event_time)
    return out
