"""Bottom-k row reservoirs: seeded, mergeable uniform samples without replacement.

Every row gets a 64-bit pseudo-random key, a hash of (seed, stream id, row index in the stream);
the reservoir keeps the k rows with the smallest keys. Because keys are i.i.d. uniform, the k
smallest keys of any set of rows are a uniform sample of that set, so merging two reservoirs (keep
the k smallest keys of the union) is a uniform sample of the union — rows from a big pane and a
small pane are weighted correctly without any explicit weights. Keys depend on the row's position
in its stream, not on how rows were split into batches, so one batch or many small ones give the
identical reservoir (rows are stored sorted by key, a canonical order).

>>> import numpy as np
>>> r = RowReservoir(capacity=3)
>>> r.update({"x": np.arange(10.0)[:, None]}, row_keys(seed=7, stream=0, start=0, n=10))
>>> len(r), r.rows_seen
(3, 10)
>>> r2 = RowReservoir(capacity=3)
>>> for s in range(0, 10, 4):
...     r2.update({"x": np.arange(10.0)[s:s + 4, None]}, row_keys(seed=7, stream=0, start=s, n=min(4, 10 - s)))
>>> bool((r.get()["x"] == r2.get()["x"]).all())
True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, vectorised over a uint64 array."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def row_keys(seed: int, stream: int, start: int, n: int) -> np.ndarray:
    """Keys of rows `start .. start+n-1` of stream `stream` under `seed` (uint64 [n])."""
    base = splitmix64(np.array([(seed * 0x100000001B3 + stream) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        idx = np.arange(start, start + n, dtype=np.uint64) + base
    return splitmix64(idx)


class RowReservoir:
    """The `capacity` rows with the smallest keys, stored as named column blocks sorted by key."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = int(capacity)
        self.keys = np.empty(0, dtype=np.uint64)
        self.columns: dict[str, np.ndarray] = {}
        self.rows_seen = 0

    def __len__(self) -> int:
        return len(self.keys)

    def _threshold(self) -> np.uint64 | None:
        return self.keys[-1] if len(self.keys) >= self.capacity else None

    def update(self, columns: Mapping[str, np.ndarray], keys: np.ndarray) -> None:
        """Offer rows (each block [n, ...], same n as `keys`); only rows that can enter are copied."""
        n = len(keys)
        self.rows_seen += n
        if n == 0:
            return
        thr = self._threshold()
        if thr is not None:
            sel = np.flatnonzero(keys < thr)
            if len(sel) == 0:
                return
            keys = keys[sel]
            columns = {k: np.asarray(v)[sel] for k, v in columns.items()}
        elif len(keys) > self.capacity:
            sel = np.argpartition(keys, self.capacity - 1)[: self.capacity]
            keys = keys[sel]
            columns = {k: np.asarray(v)[sel] for k, v in columns.items()}
        self._absorb(keys, {k: np.asarray(v) for k, v in columns.items()})

    def _absorb(self, keys: np.ndarray, columns: Mapping[str, np.ndarray]) -> None:
        if self.columns:
            all_keys = np.concatenate([self.keys, keys])
            cols = {k: np.concatenate([self.columns[k], columns[k]]) for k in self.columns}
        else:
            all_keys, cols = keys, dict(columns)
        if len(all_keys) > self.capacity:
            sel = np.argpartition(all_keys, self.capacity - 1)[: self.capacity]
        else:
            sel = np.arange(len(all_keys))
        order = sel[np.argsort(all_keys[sel], kind="stable")]
        self.keys = all_keys[order]
        self.columns = {k: np.ascontiguousarray(v[order]) for k, v in cols.items()}

    def merge(self, other: "RowReservoir") -> "RowReservoir":
        """A reservoir of the union of both inputs' rows (uniform over all rows seen by either)."""
        out = self.copy()
        out.rows_seen += other.rows_seen
        if len(other):
            out._absorb(other.keys, other.columns)
        return out

    def copy(self) -> "RowReservoir":
        out = RowReservoir(self.capacity)
        out.keys = self.keys.copy()
        out.columns = {k: v.copy() for k, v in self.columns.items()}
        out.rows_seen = self.rows_seen
        return out

    def get(self) -> dict[str, np.ndarray]:
        """The sampled rows, per column block, in key order."""
        return self.columns
