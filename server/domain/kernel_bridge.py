"""The one place the domain calls `driftd.kernels` (histogram, column summary, MMD, centroid cosine).

Conventions (design §2 / §3): bins are left-closed `[e_i, e_{i+1})`; a value equal to an edge goes
up (`searchsorted(side='right')`); `under` = x < e_0; `over` = x >= last finite edge; edges are
padded per feature with +inf. MMD uses the RBF kernel exp(-d²/(2σ²)) summed over the given σ²;
its permutation p-value is (1 + #{T_perm ≥ T_obs}) / (P + 1). The kernels pick Triton on CUDA and
their torch reference on CPU (`DRIFTD_KERNELS` overrides).

>>> import torch
>>> r = histogram(torch.tensor([[0.0], [1.0], [2.0], [float("nan")]]), torch.tensor([[1.0, 2.0, float("inf")]]))
>>> r.under.tolist(), r.counts.tolist(), r.over.tolist(), r.nan.tolist()
([1], [[1, 0]], [1], [1])
"""

from __future__ import annotations

import torch

from driftd.kernels import ColumnSummarizer, bucketize_histogram, centroid_cosine_distance, mmd2

KERNELS_AVAILABLE = True  # kept for the benchmark's report; the domain has no other histogram / MMD path


def histogram(x: torch.Tensor, edges: torch.Tensor):
    """Per-feature bucket counts of `x` [N, F] on `edges` [F, E] -> (counts [F, E-1], nan, under, over)."""
    return bucketize_histogram(x, edges)


def column_summarizer(edges: torch.Tensor, *, fence_lo, fence_hi) -> ColumnSummarizer:
    """Summaries of blocks x [N, F] on `edges` [F, E] in one pass each: the histogram, NaN / finite /
    outlier counts (against the fences) and the moments of the finite values around a per-call
    shift (see `driftd.kernels.ColumnSummarizer`; edges and fences validated once)."""
    return ColumnSummarizer(edges, fence_lo=fence_lo, fence_hi=fence_hi)


def mmd(x: torch.Tensor, y: torch.Tensor, *, bandwidths: list[float] | None, n_permutations: int, seed: int):
    """MMD² (unbiased, biased, bandwidths σ², permutation p-value) of samples x [n, d] and y [m, d]."""
    return mmd2(x, y, bandwidths=bandwidths, n_permutations=n_permutations, seed=seed)


def centroid_cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    """1 - cos(mean(x), mean(y))."""
    return float(centroid_cosine_distance(x, y))
