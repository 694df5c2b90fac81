"""`RowBatch`: the rows of one ingest batch, validated against the schema, as numpy arrays.

The transport decodes a `driftd.v1.Batch` into this (zero-copy views); the service queues it and
the drift engine consumes it. Arrays are in schema column order; a group that was not logged is None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np


@dataclass
class RowBatch:
    """One validated batch: arrays in schema column order (None = group not logged)."""

    rows: int
    numeric: np.ndarray | None = None        # [N, n_numeric] float32
    categorical: np.ndarray | None = None    # [N, n_categorical] int64
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # block -> [N, dim] float32
    scores: np.ndarray | None = None         # [N, n_scores] float32
    latency_ms: np.ndarray | None = None     # [N] float32
    status_codes: np.ndarray | None = None   # [N] int32
    request_ids: list[str] | None = None
    event_time: datetime | None = None

    @property
    def nbytes(self) -> int:
        arrays = [self.numeric, self.categorical, self.scores, self.latency_ms, self.status_codes, *self.embeddings.values()]
        return sum(a.nbytes for a in arrays if a is not None)

    @staticmethod
    def concat(batches: list["RowBatch"]) -> "RowBatch":
        """Coalesce batches for one kernel call per group. Groups are independent columns: each
        group concatenates the batches that carried it (request ids stay with their own batch's rows
        only when every batch carried them; otherwise they are dropped from the coalesced view)."""
        if len(batches) == 1:
            return batches[0]

        def cat(arrays: list[np.ndarray | None]) -> np.ndarray | None:
            present = [a for a in arrays if a is not None]
            return np.concatenate(present) if present else None

        blocks = sorted({name for b in batches for name in b.embeddings})
        ids = [b.request_ids for b in batches]
        return RowBatch(
            rows=sum(b.rows for b in batches),
            numeric=cat([b.numeric for b in batches]),
            categorical=cat([b.categorical for b in batches]),
            embeddings={name: cat([b.embeddings.get(name) for b in batches]) for name in blocks},
            scores=cat([b.scores for b in batches]),
            latency_ms=cat([b.latency_ms for b in batches]),
            status_codes=cat([b.status_codes for b in batches]),
            request_ids=[i for part in ids for i in part] if all(part is not None for part in ids) else None,
            event_time=max((b.event_time for b in batches if b.event_time is not None), default=None),
        )
