"""Quantile bin edges of numeric columns and bin counts on them (through `driftd.kernels`).

Edges: the reference quantiles at 1/B, 2/B, ..., (B−1)/B of each column's finite values (linear
interpolation, `numpy.quantile`'s default), rounded to float32-representable values (so fp32 and
fp64 data compare against them identically; quantiles beyond float32's range are clipped to its
largest finite value first, so no edge is ±inf), then de-duplicated. Ties in the reference produce
equal quantiles; equal edges collapse into one, so a column with heavy ties simply has fewer bins,
and the tied mass lands in the bin that starts at the tied value (bins are left-closed). A column
with no finite value gets the single edge 0.0. Edges are padded to a common width E with +inf.

Bin vector of one column (length E + 1): ``[under (x < e_0), interior bins [e_i, e_{i+1}), ...,
over (x >= last finite edge)]``; for a column with e finite edges, positions 0..e−1 and E are its
bins and e..E−1 are padding (always 0, masked out by `valid_bins`). NaN is counted separately.

>>> import numpy as np
>>> edges, n_edges = quantile_edges(np.array([[1.0], [1.0], [1.0], [2.0], [3.0]]), bins=4)
>>> edges.tolist(), n_edges.tolist()
([[1.0, 2.0]], [2])
>>> counts, nan = bin_counts(np.array([[0.5], [1.0], [2.5], [np.nan]]), edges)
>>> counts.tolist(), nan.tolist()
([[1, 1, 1]], [1])
"""

from __future__ import annotations

import numpy as np
import torch

from driftd.server.domain import kernel_bridge
from driftd.server.domain.batch import to_tensor
from driftd.server.domain.stats_numeric import sorted_columns  # the one sort every quantile reads


def column_quantiles(sorted_cols: tuple[np.ndarray, np.ndarray], qs) -> np.ndarray:
    """[F, len(qs)] quantiles of each column's finite values (`numpy.quantile`, linear); NaN for a
    column with none. Equal to `np.quantile` of the finite values: numpy's own steps (virtual index
    (k − 1)·q, floor, the last value past the end, its two-sided lerp) on the already sorted
    columns, vectorised, instead of a partition of a float64 copy per column (1.4 s of a 2M × 32
    baseline build). Two deliberate differences: a zero quantile is always +0.0 (which of -0.0 and
    0.0 a sort or a partition puts at a position is arbitrary, so numpy's sign of zero is too), and
    where the two neighbours are so far apart that b − a overflows (numpy: inf · 0 = NaN) the
    quantile is a·(1 − γ) + b·γ, finite."""
    vs, k = sorted_cols
    qs = np.asarray(qs, dtype=np.float64)
    if qs.ndim != 1 or not np.all((qs >= 0) & (qs <= 1)):  # NaN fails too
        raise ValueError(f"quantiles must be a 1-D sequence of values in [0, 1], got {qs!r}")
    out = np.full((len(k), len(qs)), np.nan)
    rows = np.flatnonzero(np.asarray(k) > 0)
    if not len(rows) or not len(qs):
        return out
    count = np.asarray(k)[rows].astype(np.int64)[:, None]
    # numpy.lib._function_base_impl: _QuantileMethods["linear"], _get_indexes, _get_gamma, _lerp
    virtual = (count - 1) * qs[None, :]
    prev = np.floor(virtual)
    prev[virtual >= count - 1] = -1  # numpy indexes the last value as -1 on both sides
    gamma = virtual - prev
    lo = np.where(prev < 0, count - 1, prev).astype(np.intp)
    hi = np.where(prev < 0, count - 1, prev + 1).astype(np.intp)
    a = vs[rows[:, None], lo].astype(np.float64)
    b = vs[rows[:, None], hi].astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        diff = b - a
        q = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
        q = np.where(np.isfinite(diff), q, a * (1 - gamma) + b * gamma)
    out[rows] = q + 0.0  # -0.0 + 0.0 is +0.0
    return out


def column_mean_std(sorted_cols: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """([F] mean, [F] standard deviation with ddof=1) of each column's finite values; NaN for a
    column with none (std: with fewer than two). From the sorted columns, so the baseline build
    needs no NaN-filled [N, F] copy for `np.nanmean` / `np.nanstd` (the same values up to the
    order of summation)."""
    vs, k = sorted_cols
    mean, std = np.full(len(k), np.nan), np.full(len(k), np.nan)
    for f in range(len(k)):
        v = vs[f, : k[f]].astype(np.float64)
        if k[f]:
            mean[f] = v.mean()
        if k[f] > 1:
            std[f] = v.std(ddof=1)
    return mean, std


def quantile_edges(x: np.ndarray, bins: int, *, sorted_cols: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(edges [F, E] +inf-padded, number of finite edges per column [F]). `sorted_cols` (from
    `sorted_columns(x)`) saves the sort when the caller has it."""
    sorted_cols = sorted_columns(x) if sorted_cols is None else sorted_cols
    q = column_quantiles(sorted_cols, np.arange(1, bins) / bins)
    # clipped into float32's range before rounding: an edge must stay finite (+inf marks padding)
    f32 = float(np.finfo(np.float32).max)
    per_col = [np.unique(np.clip(row, -f32, f32).astype(np.float32).astype(np.float64)) if k else np.array([0.0])
               for row, k in zip(q, sorted_cols[1])]
    width = max(len(e) for e in per_col) if per_col else 1
    edges = np.full((len(per_col), width), np.inf)
    for f, e in enumerate(per_col):
        edges[f, : len(e)] = e
    return edges, np.array([len(e) for e in per_col], dtype=np.int64)


def valid_bins(n_edges: np.ndarray, width: int) -> np.ndarray:
    """Mask [F, width + 1] of the real bins of each column (see module docstring)."""
    pos = np.arange(width + 1)[None, :]
    ne = np.asarray(n_edges)[:, None]
    return (pos < ne) | (pos == width)


def edges_tensor(edges: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    """The edges in the dtype the kernels compare `x` in (fp32 for fp32 / fp16 / bf16 data, which the
    fp32-representable edges make exact; fp64 for fp64 data)."""
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    return torch.tensor(edges, dtype=dtype, device=x.device)


def full_counts(hist, width: int) -> np.ndarray:
    """[F, width + 1] int64 ``[under, interior..., over]`` from a kernels `HistogramResult`."""
    counts = np.empty((hist.counts.shape[0], width + 1), dtype=np.int64)
    counts[:, 0] = hist.under.cpu().numpy()
    counts[:, 1:width] = hist.counts.cpu().numpy().reshape(counts.shape[0], width - 1)
    counts[:, width] = hist.over.cpu().numpy()
    return counts


def bin_counts(x, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bin counts [F, E+1] int64 as [under, interior..., over], NaN counts [F]) of block x [N, F]."""
    t = to_tensor(x)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    width = edges.shape[1]
    if t.shape[0] == 0:
        return np.zeros((edges.shape[0], width + 1), dtype=np.int64), np.zeros(edges.shape[0], dtype=np.int64)
    r = kernel_bridge.histogram(t, edges_tensor(edges, t))
    return full_counts(r, width), r.nan.cpu().numpy().astype(np.int64)


def counts_from_sorted(sorted_cols: tuple[np.ndarray, np.ndarray], x: np.ndarray, edges: np.ndarray,
                       n_edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`bin_counts(x, edges)` from x's `sorted_columns`: the finite values at or above each edge
    are found by one binary search per edge, ±inf and NaN are counted apart. The baseline build
    has the sorted columns anyway; this spares it a pass over the reference, and a server's first
    baseline the compile of the CPU histogram kernel (5-8 s on the 2-core dev machine).
    Exact: the edges are float32-representable, so float64 comparisons decide as the kernels'
    float32 ones do for float32 (or narrower) data."""
    vs, k = sorted_cols
    n_cols, width = edges.shape
    counts = np.zeros((n_cols, width + 1), dtype=np.int64)
    pos_inf, neg_inf = (x == np.inf).sum(0), (x == -np.inf).sum(0)
    for f in range(n_cols):  # E binary searches per column
        ne = int(n_edges[f])
        ge = k[f] - np.searchsorted(vs[f, : k[f]].astype(np.float64), edges[f, :ne], side="left")  # finite values >= each edge
        counts[f, 0] = k[f] - ge[0] + neg_inf[f]
        counts[f, 1:ne] = ge[:-1] - ge[1:]
        counts[f, width] = ge[-1] + pos_inf[f]
    return counts, (len(x) - k - pos_inf - neg_inf).astype(np.int64)


def bin_positions(x: np.ndarray, edges: np.ndarray, n_edges: np.ndarray) -> np.ndarray:
    """Bin position of every value ([N, F] int16, -1 for NaN), the same bins as `bin_counts`."""
    x = np.asarray(x, dtype=np.float64)
    width = edges.shape[1]
    out = np.empty(x.shape, dtype=np.int16)
    for f in range(x.shape[1]):
        e = edges[f, : n_edges[f]]
        pos = np.searchsorted(e, x[:, f], side="right")
        pos = np.where(pos >= n_edges[f], width, pos)
        out[:, f] = np.where(np.isnan(x[:, f]), -1, pos)
    return out
