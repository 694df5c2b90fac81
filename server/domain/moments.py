"""Per-column Welford moments (count, mean, M2, min, max) with the parallel (Chan et al.) merge.

Only finite values count; NaN and ±inf are left to the data-quality counters. `update` takes a whole
``[N, F]`` block (no per-element Python); `merge` combines two summaries exactly in the counts and
min/max and to floating-point rounding in mean / M2 (the Chan formula is the exact algebraic merge).

>>> import numpy as np
>>> a, b = Moments(1), Moments(1)
>>> a.update(np.array([[1.0], [2.0]])); b.update(np.array([[3.0], [np.nan], [4.0]]))
>>> m = a.merge(b)
>>> m.count.tolist(), m.mean.tolist(), round(float(m.std()[0]), 6)
([4], [2.5], 1.290994)
"""

from __future__ import annotations

import numpy as np
import torch

from driftd.server.domain.batch import to_tensor


class Moments:
    """Count / mean / M2 / min / max per column of a numeric block (river-style update, merge, get)."""

    def __init__(self, n_columns: int):
        self.count = np.zeros(n_columns, dtype=np.int64)
        self.mean = np.zeros(n_columns, dtype=np.float64)
        self.m2 = np.zeros(n_columns, dtype=np.float64)
        self.min = np.full(n_columns, np.inf)
        self.max = np.full(n_columns, -np.inf)

    def update(self, x) -> None:
        """Add the finite values of block `x` [N, F] (numpy array or torch tensor)."""
        t = to_tensor(x)
        if t.shape[0] == 0:
            return
        if not t.is_floating_point():
            t = t.to(torch.float64)
        finite = torch.isfinite(t)
        n = finite.sum(0).to(torch.int64)
        zero = torch.zeros((), dtype=t.dtype)
        xs = torch.where(finite, t, zero)
        s = xs.sum(0, dtype=torch.float64)
        nn = n.to(torch.float64)
        mean_b = torch.where(n > 0, s / nn.clamp_min(1), torch.zeros_like(s))
        dev = torch.where(finite, t.to(torch.float64) - mean_b, torch.zeros((), dtype=torch.float64))
        m2_b = (dev * dev).sum(0)
        mn = torch.where(finite, t, torch.full((), torch.inf, dtype=t.dtype)).amin(0).to(torch.float64)
        mx = torch.where(finite, t, torch.full((), -torch.inf, dtype=t.dtype)).amax(0).to(torch.float64)
        self._combine(n.numpy(), mean_b.numpy(), m2_b.numpy(), mn.numpy(), mx.numpy())

    def _combine(self, n_b, mean_b, m2_b, mn, mx) -> None:
        n_a = self.count
        n = n_a + n_b
        safe = np.maximum(n, 1)
        delta = mean_b - self.mean
        self.mean = np.where(n > 0, self.mean + delta * (n_b / safe), 0.0)
        self.m2 = self.m2 + m2_b + delta * delta * (n_a * n_b / safe)
        self.count = n
        self.min = np.minimum(self.min, mn)
        self.max = np.maximum(self.max, mx)

    def merge(self, other: "Moments") -> "Moments":
        """A new summary of both inputs (Chan et al. parallel combination)."""
        out = self.copy()
        out._combine(other.count, other.mean, other.m2, other.min, other.max)
        return out

    def copy(self) -> "Moments":
        out = Moments(len(self.count))
        out.count, out.mean, out.m2 = self.count.copy(), self.mean.copy(), self.m2.copy()
        out.min, out.max = self.min.copy(), self.max.copy()
        return out

    def variance(self) -> np.ndarray:
        """Sample variance (ddof=1); NaN where fewer than two values."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 1, self.m2 / np.maximum(self.count - 1, 1), np.nan)

    def std(self) -> np.ndarray:
        return np.sqrt(self.variance())

    def get(self) -> dict[str, np.ndarray]:
        return {"count": self.count, "mean": np.where(self.count > 0, self.mean, np.nan), "std": self.std(),
                "min": self.min, "max": self.max}
