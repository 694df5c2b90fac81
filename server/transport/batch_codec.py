"""Decode a `driftd.v1.Batch` into the domain `Batch`, validated against the monitor's schema.

No per-element Python: every tensor is a zero-copy view over the request bytes (bf16 is widened
to fp32 in one vectorised shift). Byte-level problems (dtype, shape/bytes mismatch) are found here;
schema problems (column counts, missing groups, row counts) by `Batch.validate` — one rule set for
every entry point. Every error names the request field (`batch.numeric.shape`,
`batch.embeddings["text"]`). NaN / inf values are data, never errors.
"""

from __future__ import annotations

import numpy as np

from driftd.server.domain.batch import Batch
from driftd.server.domain.errors import InvalidArgument
from driftd.server.domain.schema import Schema
from driftd.server.transport.codec import decode_tensor, from_timestamp
from driftd.v1 import ingest_pb2, tensor_pb2

FLOAT_TYPES = {tensor_pb2.DATA_TYPE_FLOAT32, tensor_pb2.DATA_TYPE_FLOAT16, tensor_pb2.DATA_TYPE_BFLOAT16, tensor_pb2.DATA_TYPE_FLOAT64}
INT_TYPES = {tensor_pb2.DATA_TYPE_INT32, tensor_pb2.DATA_TYPE_INT64}
MAX_ROWS_PER_BATCH = 1_000_000


def _floats(t: tensor_pb2.Tensor, path: str, rank: int) -> np.ndarray:
    arr = decode_tensor(t, path, allowed=FLOAT_TYPES, rank=rank)
    if t.dtype == tensor_pb2.DATA_TYPE_BFLOAT16:
        # bfloat16 is the upper half of a float32: widen the bit patterns.
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr


def _wire_bytes(arr: np.ndarray | None, t: tensor_pb2.Tensor) -> int:
    if arr is None:
        return 0
    return arr.nbytes // 2 if t.dtype == tensor_pb2.DATA_TYPE_BFLOAT16 else arr.nbytes  # bf16 was widened to 4 bytes


def decode_tensors(batch: ingest_pb2.Batch, prefix: str = "batch") -> tuple[Batch, int]:
    """Byte-level decode, no schema yet: the domain `Batch` (views over the request's bytes) and the
    payload size in bytes (tensor data + request ids), from the same single read of each tensor's
    bytes (the protobuf runtime copies a bytes field on every access)."""
    out = Batch(
        numeric=_floats(batch.numeric, f"{prefix}.numeric", 2) if batch.HasField("numeric") else None,
        categorical=(decode_tensor(batch.categorical, f"{prefix}.categorical", allowed=INT_TYPES, rank=2)
                     if batch.HasField("categorical") else None),
        embeddings={name: _floats(batch.embeddings[name], f'{prefix}.embeddings["{name}"]', 2) for name in sorted(batch.embeddings)},
        scores=_floats(batch.scores, f"{prefix}.scores", 2) if batch.HasField("scores") else None,
        latency_ms=_floats(batch.latency_ms, f"{prefix}.latency_ms", 1) if batch.HasField("latency_ms") else None,
        status_codes=(decode_tensor(batch.status_codes, f"{prefix}.status_codes", allowed=INT_TYPES, rank=1)
                      if batch.HasField("status_codes") else None),
        request_ids=list(batch.request_ids) if batch.request_ids else None,
        event_time=from_timestamp(batch.event_time).timestamp() if batch.HasField("event_time") else None,
    )
    size = (_wire_bytes(out.numeric, batch.numeric) + _wire_bytes(out.categorical, batch.categorical)
            + _wire_bytes(out.scores, batch.scores) + _wire_bytes(out.latency_ms, batch.latency_ms)
            + _wire_bytes(out.status_codes, batch.status_codes))
    for name, arr in out.embeddings.items():
        size += _wire_bytes(arr, batch.embeddings[name])
    if out.request_ids:
        size += sum(map(len, out.request_ids))
    return out, size


def check_batch(out: Batch, schema: Schema, prefix: str = "batch") -> None:
    """Schema rules (`Batch.validate`) and the row-count bounds; INVALID_ARGUMENT naming the field."""
    out.validate(schema, prefix)
    rows = out.n_rows
    if rows == 0:
        raise InvalidArgument.one(prefix, "the batch has no rows")
    if rows > MAX_ROWS_PER_BATCH:
        raise InvalidArgument.one(prefix, f"{rows} rows; at most {MAX_ROWS_PER_BATCH} per batch (split it)")


def decode_batch(batch: ingest_pb2.Batch, schema: Schema, prefix: str = "batch") -> Batch:
    out, _ = decode_tensors(batch, prefix)
    check_batch(out, schema, prefix)
    return out
