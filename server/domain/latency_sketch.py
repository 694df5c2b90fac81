"""Latency quantiles from a mergeable log-bucket sketch (DDSketch-style), plus error counts.

A positive value x goes to bucket i = ceil(log_γ x) with γ = (1 + α) / (1 − α); the bucket's
representative 2γ^i / (γ + 1) is within relative error α of every value in it, so any quantile
read from the sketch is within relative error α of the true sample quantile (of the same rank
definition, lower quantile: the value of rank ⌊q·(n−1)⌋ in sorted order). Default α = 1 %.
Values below `min_value` (1 µs when latencies are in ms) share one zero bucket and read back
as 0; NaN / negative values are counted as invalid and left out. Buckets are a dense count array
over a fixed index range, so merging is exact element-wise addition.

>>> import numpy as np
>>> s = LatencySketch()
>>> s.update(np.array([10.0, 20.0, 30.0, 40.0, 1000.0]))
>>> abs(s.quantile(0.5) - 30.0) / 30.0 <= s.relative_error
True
>>> s.merge(s).count
10
"""

from __future__ import annotations

import math

import numpy as np


class LatencySketch:
    """Log-bucket quantile sketch with guaranteed relative error (river-style update/merge/get)."""

    def __init__(self, relative_error: float = 0.01, min_value: float = 1e-3, max_value: float = 1e9):
        if not 0 < relative_error < 1:
            raise ValueError("relative_error must be in (0, 1)")
        self.relative_error = float(relative_error)
        self.gamma = (1 + relative_error) / (1 - relative_error)
        self._log_gamma = math.log(self.gamma)
        self.min_value = float(min_value)
        self.max_value = float(max_value)
        self._offset = math.ceil(math.log(min_value) / self._log_gamma)
        self._n_buckets = math.ceil(math.log(max_value) / self._log_gamma) - self._offset + 1
        self.counts = np.zeros(self._n_buckets, dtype=np.int64)
        self.zero_count = 0
        self.invalid_count = 0

    @property
    def count(self) -> int:
        return int(self.counts.sum()) + self.zero_count

    def update(self, values) -> None:
        """Add an array of latencies (vectorised; no per-element Python)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            return
        bad = ~(v >= 0)  # NaN or negative
        self.invalid_count += int(bad.sum())
        v = v[~bad]
        small = v < self.min_value
        self.zero_count += int(small.sum())
        v = np.minimum(v[~small], self.max_value)
        idx = np.ceil(np.log(v) / self._log_gamma).astype(np.int64) - self._offset
        np.clip(idx, 0, self._n_buckets - 1, out=idx)
        self.counts += np.bincount(idx, minlength=self._n_buckets)

    def merge(self, other: "LatencySketch") -> "LatencySketch":
        if (other.relative_error, other.min_value, other.max_value) != (self.relative_error, self.min_value, self.max_value):
            raise ValueError("cannot merge sketches with different parameters")
        out = self.copy()
        out.counts += other.counts
        out.zero_count += other.zero_count
        out.invalid_count += other.invalid_count
        return out

    def copy(self) -> "LatencySketch":
        out = LatencySketch(self.relative_error, self.min_value, self.max_value)
        out.counts = self.counts.copy()
        out.zero_count, out.invalid_count = self.zero_count, self.invalid_count
        return out

    def quantile(self, q: float) -> float:
        """The q-quantile (rank ⌊q·(n−1)⌋), within `relative_error`; NaN when empty."""
        n = self.count
        if n == 0:
            return float("nan")
        rank = math.floor(q * (n - 1))
        if rank < self.zero_count:
            return 0.0
        cum = np.cumsum(self.counts)
        i = int(np.searchsorted(cum, rank - self.zero_count, side="right"))
        return 2.0 * self.gamma ** (i + self._offset) / (self.gamma + 1.0)

    def get(self) -> dict[str, float]:
        return {"p50": self.quantile(0.5), "p95": self.quantile(0.95), "p99": self.quantile(0.99), "count": self.count}
