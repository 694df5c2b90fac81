"""Public MMD² (RBF kernel, several bandwidths, permutation p-value): validation and dispatch."""

from __future__ import annotations

import math

import torch

from driftd.kernels._common import MMDResult, check_float, resolve_backend
from driftd.kernels.reference.mmd import (
    compute_dtype,
    default_bandwidths,
    mmd2_sums_torch,
    permutation_indicators,
    pooled_centred,
    stats_from_sums,
)


def _validate(x, y, bandwidths, n_permutations) -> list[float] | None:
    check_float("x", x, 2)
    check_float("y", y, 2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y need the same dimension, got {x.shape[1]} and {y.shape[1]}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"mmd2 needs at least 2 rows in x and in y, got {x.shape[0]} and {y.shape[0]}")
    if x.device != y.device:
        raise ValueError(f"x is on {x.device} but y on {y.device}")
    if not isinstance(n_permutations, int) or isinstance(n_permutations, bool) or n_permutations < 0:
        raise ValueError(f"n_permutations must be an int >= 0, got {n_permutations!r}")
    if bandwidths is None:
        return None
    bws = [float(b) for b in (bandwidths.tolist() if isinstance(bandwidths, torch.Tensor) else bandwidths)]
    if not bws or any(not (b > 0 and math.isfinite(b)) for b in bws):
        raise ValueError(f"bandwidths (σ² values) must be positive and finite, got {bws}")
    return bws


def mmd2(x: torch.Tensor, y: torch.Tensor, *, bandwidths=None, n_permutations: int = 0, seed: int = 0,
         backend: str = "auto") -> MMDResult:
    """MMD² between samples x [n, d] and y [m, d] with the RBF kernel ``exp(−‖x−y‖² / (2σ²))``.

    `bandwidths` are σ² values, summed over (each also reported). ``None`` → the median heuristic:
    σ² = median pairwise squared distance of the pooled sample / 2 (≤ 1000 pooled rows, a seeded
    subsample beyond that; see `median_heuristic_sigma2`), then σ² · {0.25, 0.5, 1, 2, 4}²
    (σ · {0.25, …, 4}). ``mmd2_unbiased`` / ``mmd2_biased`` are sums over bandwidths. With
    ``n_permutations = P > 0`` the p-value is ``(1 + #{T_perm >= T_obs}) / (P + 1)`` on the summed
    unbiased statistic, permutations from `permutation_indicators(n, m, P, seed)`; ``None`` when P = 0.
    The (n+m)² kernel matrix is never materialised (tiles).
    """
    bws = _validate(x, y, bandwidths, n_permutations)
    n, m = x.shape[0], y.shape[0]
    if bws is None:
        bws = default_bandwidths(x, y, seed=seed)
    a = permutation_indicators(n, m, n_permutations, seed, device=x.device)
    if resolve_backend(backend, x.device) == "triton":
        from driftd.kernels.triton.mmd import mmd2_sums_triton

        s1, s2, tot, s1_all, s2_all, tot_all = mmd2_sums_triton(x, y, a, n, bws)
    else:
        z = pooled_centred(x, y, compute_dtype(x, y))
        s1, s2, tot, s1_all, s2_all = mmd2_sums_torch(z, a, n, bws)
        tot_all = tot.sum()
    unb, bia = stats_from_sums(s1.cpu(), s2.cpu(), tot.cpu(), n, m)  # per bandwidth, observed split
    p_value = None
    perm_stats = None
    if n_permutations:
        t_all, _ = stats_from_sums(s1_all.cpu(), s2_all.cpu(), tot_all.cpu(), n, m)  # [P+1], Σ over bandwidths
        perm_stats = t_all[1:]
        p_value = float((1 + int((perm_stats >= t_all[0]).sum())) / (n_permutations + 1))
    return MMDResult(
        mmd2_unbiased=float(unb.sum()),
        mmd2_biased=float(bia.sum()),
        bandwidths=bws,
        p_value=p_value,
        per_bandwidth_unbiased=unb.tolist(),
        per_bandwidth_biased=bia.tolist(),
        n_permutations=n_permutations,
        permutation_stats=perm_stats,
    )
