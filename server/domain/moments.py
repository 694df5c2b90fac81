"""Per-column Welford moments (count, mean, M2, min, max) with the parallel (Chan et al.) merge.

Only finite values count; NaN and ±inf are left to the data-quality counters. `update` takes a whole
``[N, F]`` block (no per-element Python); `merge` combines two summaries exactly in the counts and
min/max and to floating-point rounding in mean / M2 (the Chan formula is the exact algebraic merge;
deviations from the input are formed in the input's precision, so fp32 data gives means good to
about 1e-7 relative, whatever the split into batches).

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

from driftd.server.domain.batch import all_finite, to_tensor


class Moments:
    """Count / mean / M2 / min / max per column of a numeric block (river-style update, merge, get)."""

    def __init__(self, n_columns: int):
        self.count = np.zeros(n_columns, dtype=np.int64)
        self.mean = np.zeros(n_columns, dtype=np.float64)
        self.m2 = np.zeros(n_columns, dtype=np.float64)
        self.min = np.full(n_columns, np.inf)
        self.max = np.full(n_columns, -np.inf)

    def update(self, x) -> None:
        """Add the finite values of block `x` [N, F] (numpy array or torch tensor).

        Sums are accumulated in float64 around a shift (the current mean, or the first finite
        value), so fp32 input needs no float64 copy and the variance does not suffer from
        cancellation. CPU data is reduced with numpy (much faster than eager torch for column
        reductions on few cores), min / max with torch.
        """
        t = to_tensor(x)
        if t.shape[0] == 0:
            return
        if not t.is_floating_point() or t.dtype in (torch.float16, torch.bfloat16):
            t = t.to(torch.float32 if t.is_floating_point() else torch.float64)
        if t.is_cuda:
            t = t.cpu()
        a = t.numpy()
        has_mean = self.count > 0
        if all_finite(a):  # no NaN / inf anywhere (a column sum would be non-finite)
            n = np.full(a.shape[1], a.shape[0], dtype=np.int64)
            shift = np.where(has_mean, self.mean, a[0].astype(np.float64)).astype(a.dtype)
            y = a - shift
            shift = shift.astype(np.float64)
            s1 = y.sum(0, dtype=np.float64)
            s2 = np.einsum("ij,ij->j", y, y, dtype=np.float64)
            mn, mx = t.amin(0).double().numpy(), t.amax(0).double().numpy()
        else:
            finite = np.isfinite(a)
            n = finite.sum(0).astype(np.int64)
            with np.errstate(invalid="ignore", divide="ignore"):
                first = np.where(finite, a, 0).sum(0, dtype=np.float64) / np.maximum(n, 1)
            shift = np.where(has_mean, self.mean, first).astype(a.dtype)
            y = np.where(finite, a - shift, 0).astype(a.dtype, copy=False)
            shift = shift.astype(np.float64)
            s1 = y.sum(0, dtype=np.float64)
            s2 = np.einsum("ij,ij->j", y, y, dtype=np.float64)
            ft = torch.from_numpy(finite)
            mn = torch.where(ft, t, torch.full((), torch.inf, dtype=t.dtype)).amin(0).double().numpy()
            mx = torch.where(ft, t, torch.full((), -torch.inf, dtype=t.dtype)).amax(0).double().numpy()
        self.add_sums(n, shift, s1, s2, mn, mx)

    def shift(self, fallback: np.ndarray) -> np.ndarray:
        """Where to centre the next block's sums: the running mean, or `fallback` for columns
        without values yet (e.g. the baseline's mean)."""
        return np.where(self.count > 0, self.mean, fallback)

    def add_sums(self, n, shift, s1, s2, mn, mx) -> None:
        """Add a block summarised as, per column, n finite values with ``s1 = Σ (x − shift)``,
        ``s2 = Σ (x − shift)²`` (float64) and their min / max (what `driftd.kernels.column_summary`
        returns); `shift` as a float64 vector (the value each deviation was formed against)."""
        n = np.asarray(n, dtype=np.int64)
        s1, s2 = np.asarray(s1, dtype=np.float64), np.asarray(s2, dtype=np.float64)
        safe = np.maximum(n, 1)
        mean_b = np.where(n > 0, np.asarray(shift, dtype=np.float64) + s1 / safe, 0.0)
        m2_b = np.where(n > 0, np.maximum(s2 - s1 * s1 / safe, 0.0), 0.0)
        self._combine(n, mean_b, m2_b, np.asarray(mn, dtype=np.float64), np.asarray(mx, dtype=np.float64))

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
