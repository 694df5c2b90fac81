"""Torch reference of the tiled MMD² with permutation test: the CPU fallback and the test oracle.

Numerics (design §3): the pooled sample Z = X ∪ Y is centred (pooled mean, computed in fp64)
and cast once to the compute dtype (fp32, or fp64 for fp64 inputs); squared norms come from those
same rounded operands; ``d² = ‖z_i‖² + ‖z_j‖² − 2 z_i·z_j`` is clamped at 0; the kernel matrix is
built tile by tile ([TILE × TILE] per bandwidth, upper block triangle only, never (n+m)²), sums inside a tile in the
compute dtype and across tiles in fp64; the diagonal is masked (k(z, z) = 1 exactly is added back
for the biased estimate).

Permutation test (indicator-matrix trick): A [N, P+1] is 0/1 with column 0 the observed split
(rows 0..n−1 are X) and columns 1..P the seeded permutations (`permutation_indicators`). Per tile
``M = K_IJ @ A_J``; accumulated per column: ``s1 = 1ᵀKa`` and ``s2 = aᵀKa``, plus ``tot = 1ᵀK1``.
Then XX = s2, XY = s1 − s2, YY = tot − 2 s1 + s2 (K symmetric, diagonal masked).
"""

from __future__ import annotations

import functools

import torch

TILE = 1024
DEFAULT_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)
MEDIAN_MAX_POINTS = 1000


def compute_dtype(*ts: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in ts) else torch.float32


def pooled_centred(x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Z = [x; y] minus the pooled mean (fp64 mean), in `dtype`."""
    mu = (x.sum(0, dtype=torch.float64) + y.sum(0, dtype=torch.float64)) / (len(x) + len(y))
    return torch.cat([x.to(dtype), y.to(dtype)]) - mu.to(dtype)


def median_heuristic_sigma2(x: torch.Tensor, y: torch.Tensor, *, seed: int = 0,
                            max_points: int = MEDIAN_MAX_POINTS) -> float:
    """σ² = median of pairwise squared distances (i < j) of the pooled sample / 2, in fp64.

    At most `max_points` pooled rows are used: all of them when N <= max_points, else a seeded
    subsample (``torch.randperm(N, generator=manual_seed(seed))[:max_points]``, sorted). The median
    is numpy's (mean of the two middle values). Returns 1.0 when the median is 0 or not finite.
    """
    big_n = len(x) + len(y)
    if big_n > max_points:  # gather the subsample first: never copy the whole pooled sample
        g = torch.Generator().manual_seed(int(seed))
        idx = torch.randperm(big_n, generator=g)[:max_points].sort().values
        ix, iy = idx[idx < len(x)], idx[idx >= len(x)] - len(x)
        z = torch.cat([x[ix.to(x.device)].to(torch.float64), y[iy.to(y.device)].to(torch.float64)])
    else:
        z = torch.cat([x.to(torch.float64), y.to(torch.float64)])
    z = z - z.mean(0)
    sq = (z * z).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_min(0)
    iu = torch.triu_indices(len(z), len(z), 1, device=z.device)
    vals = d2[iu[0], iu[1]]
    if vals.numel() == 0:
        return 1.0
    med = float(torch.quantile(vals, 0.5))
    s2 = med / 2.0
    return s2 if s2 > 0 and s2 < float("inf") else 1.0


def default_bandwidths(x: torch.Tensor, y: torch.Tensor, *, seed: int = 0) -> list[float]:
    """σ²·c² for c in (0.25, 0.5, 1, 2, 4) (i.e. σ·c), σ² from `median_heuristic_sigma2`."""
    s2 = median_heuristic_sigma2(x, y, seed=seed)
    return [s2 * c * c for c in DEFAULT_MULTIPLIERS]


def permutation_indicators(n: int, m: int, n_permutations: int, seed: int = 0,
                           device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A [n+m, P+1] 0/1: column 0 marks rows 0..n−1 (the observed X); column p >= 1 marks the
    first n entries of the p-th ``torch.randperm(n+m)`` drawn from ``torch.Generator().manual_seed(seed)``
    (on CPU, so identical on every device). The last few results are cached (the engine repeats
    the same n, m, P, seed); treat the returned tensor as read-only."""
    return _permutation_indicators(int(n), int(m), int(n_permutations), int(seed), torch.device(device), dtype)


@functools.lru_cache(maxsize=4)
def _permutation_indicators(n: int, m: int, n_permutations: int, seed: int, device: torch.device,
                            dtype: torch.dtype) -> torch.Tensor:
    big_n = n + m
    a = torch.zeros((big_n, n_permutations + 1), dtype=dtype)
    a[:n, 0] = 1
    if n_permutations:
        g = torch.Generator().manual_seed(int(seed))
        cols = torch.empty((n_permutations, n), dtype=torch.int64)
        for p in range(n_permutations):  # one randperm per permutation (vectorised inside)
            cols[p] = torch.randperm(big_n, generator=g)[:n]
        a[cols.T, torch.arange(1, n_permutations + 1)[None, :]] = 1
    return a.to(device)


def stats_from_sums(s1: torch.Tensor, s2: torch.Tensor, tot: torch.Tensor, n: int, m: int):
    """(unbiased, biased) from fp64 sums s1 = 1ᵀKa, s2 = aᵀKa, tot = 1ᵀK1 of a diagonal-masked K
    (any matching shapes: per bandwidth, or per permutation column)."""
    xx = s2
    xy = s1 - s2
    yy = tot - 2.0 * s1 + s2
    unb = xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2.0 * xy / (n * m)
    bia = (xx + n) / (n * n) + (yy + m) / (m * m) - 2.0 * xy / (n * m)
    return unb, bia


def mmd2_sums_torch(z: torch.Tensor, a: torch.Tensor, n: int, bandwidths: list[float], *,
                    tile: int = TILE):
    """Sums over the diagonal-masked kernel matrix, fp64 across tiles:

    per bandwidth b (observed split, rows < n are X): ``s1[b] = 1ᵀK_b a0``, ``s2[b] = a0ᵀK_b a0``,
    ``tot[b] = 1ᵀK_b 1``; for K_Σ = Σ_b K_b and every column of A: ``s1_all = 1ᵀK_Σ A``,
    ``s2_all = diag(AᵀK_Σ A)`` (the permutation statistics use these, column 0 included, so the
    observed and permuted statistics are computed the same way).

    K is symmetric, so only the tiles J >= I of a square [tile × tile] grid are computed; an
    off-diagonal tile stands for itself and its mirror (weight 2 in the symmetric sums, and its
    row sums carry the mirror's ``1ᵀK_JI A_I``).
    """
    big_n = z.shape[0]
    cdt = z.dtype
    nb = len(bandwidths)
    has_perm = a.shape[1] > 1
    a = a.to(cdt)
    sq = (z * z).sum(1)
    coef = torch.tensor([-0.5 / b for b in bandwidths], dtype=cdt, device=z.device)[:, None, None]
    isx = (torch.arange(big_n, device=z.device) < n).to(cdt)
    xx = torch.zeros(nb, dtype=torch.float64, device=z.device)
    yy = torch.zeros_like(xx)
    tot = torch.zeros_like(xx)
    s1_all = torch.zeros(a.shape[1], dtype=torch.float64, device=z.device)
    s2_all = torch.zeros_like(s1_all)
    for i0 in range(0, big_n, tile):
        i1 = min(i0 + tile, big_n)
        zi, ai, xi = z[i0:i1], a[i0:i1], isx[i0:i1]
        macc = torch.zeros((i1 - i0, a.shape[1]), dtype=cdt, device=z.device) if has_perm else None
        rmirror = torch.zeros(i1 - i0, dtype=cdt, device=z.device)
        diag_s2 = None
        for j0 in range(i0, big_n, tile):
            j1 = min(j0 + tile, big_n)
            d2 = torch.addmm(sq[i0:i1, None] + sq[None, j0:j1], zi, z[j0:j1].T, alpha=-2.0).clamp_min_(0)
            if j0 == i0:  # diagonal tile: mask k(z_i, z_i) (exp(-inf) = 0)
                d2.fill_diagonal_(float("inf"))
            w = 1.0 if j0 == i0 else 2.0
            k = torch.exp(d2[None] * coef)  # [nb, R, C]
            rowx = k @ isx[j0:j1]  # [nb, R]
            rowall = k.sum(2)
            t_xx = (rowx @ xi).to(torch.float64)
            t_tot = rowall.sum(1).to(torch.float64)
            t_xany = (rowall @ xi).to(torch.float64)
            xx += w * t_xx
            tot += w * t_tot
            yy += w * (t_tot - t_xany - rowx.sum(1).to(torch.float64) + t_xx)
            if has_perm:
                ks = k.sum(0)
                mt = ks @ a[j0:j1]
                macc += mt
                if j0 == i0:
                    diag_s2 = (ai * mt).sum(0).to(torch.float64)
                else:
                    rmirror += ks.sum(1)
        if has_perm:
            s1_all += (macc.sum(0) + rmirror @ ai).to(torch.float64)
            s2_all += 2.0 * (ai * macc).sum(0).to(torch.float64) - diag_s2
    cross = tot - xx - yy
    s1, s2 = xx + cross / 2, xx
    if not has_perm:  # column 0 only: the observed split
        s1_all, s2_all = s1.sum()[None], s2.sum()[None]
    return s1, s2, tot, s1_all, s2_all
