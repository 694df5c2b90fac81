"""Quantile bin edges of numeric columns and bin counts on them (through `driftd.kernels`).

Edges: the reference quantiles at 1/B, 2/B, ..., (B−1)/B of each column's finite values (linear
interpolation, `numpy.quantile`'s default), rounded to float32-representable values (so fp32 and
fp64 data compare against them identically), then de-duplicated. Ties in the reference produce
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


def quantile_edges(x: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(edges [F, E] +inf-padded, number of finite edges per column [F])."""
    x = np.asarray(x, dtype=np.float64)
    qs = np.arange(1, bins) / bins
    per_col = []
    for f in range(x.shape[1]):  # one numpy call per column (baseline build, not the hot path)
        v = x[:, f]
        v = v[np.isfinite(v)]
        if len(v) == 0:
            per_col.append(np.array([0.0]))
            continue
        e = np.quantile(v, qs).astype(np.float32).astype(np.float64)
        per_col.append(np.unique(e))
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
