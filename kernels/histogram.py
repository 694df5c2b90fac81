"""Public fused bucketize-histogram: validation, dispatch (Triton kernel / torch reference)."""

from __future__ import annotations

import torch

from driftd.kernels._common import HistogramResult, check_float, resolve_backend


def _validate(x, edges) -> None:
    check_float("x", x, 2)
    validate_edges(edges)
    validate_block(x, edges)


def validate_block(x, edges) -> None:
    """x fits already-validated edges: a float [N, F] tensor on their device."""
    check_float("x", x, 2)
    if edges.shape[0] != x.shape[1]:
        raise ValueError(f"edges has {edges.shape[0]} rows but x has {x.shape[1]} features (need edges [F, E])")
    if x.device != edges.device:
        raise ValueError(f"x is on {x.device} but edges on {edges.device}")


def validate_edges(edges) -> None:
    check_float("edges", edges, 2)
    if edges.shape[1] < 1:
        raise ValueError("edges needs at least one edge per feature")
    if bool(torch.isnan(edges).any()):
        raise ValueError("edges contain NaN")
    if edges.shape[1] > 1 and not bool((edges[:, 1:] >= edges[:, :-1]).all()):
        raise ValueError("edges must be sorted (non-decreasing) along each feature; pad with +inf")


def bucketize_histogram(x: torch.Tensor, edges: torch.Tensor, *, backend: str = "auto") -> HistogramResult:
    """Per-feature bin counts of `x` [N, F] on sorted `edges` [F, E] (+inf-padded per feature).

    Bins are left-closed ``[e_i, e_{i+1})`` — a value equal to an edge goes to the bin above, as
    ``searchsorted(edges, x, side='right')``. With k_f finite edges for feature f:
    ``under = #(x < e_0)``, ``counts[f, i] = #(e_i <= x < e_{i+1})`` for i < k_f − 1 (padded bins
    are 0), ``over = #(x >= e_{k_f−1})``; NaN are counted only in ``nan``; −inf lands in ``under``
    and +inf in ``over``. The PSI bin vector is ``[under, counts[:k_f−1], over]``
    (`HistogramResult.full()` gives ``[under, counts..., over]`` with the padded zeros).

    >>> r = bucketize_histogram(torch.tensor([[0.0], [1.0], [1.5], [2.0], [float("nan")]]),
    ...                         torch.tensor([[1.0, 2.0, float("inf")]]))
    >>> r.under.tolist(), r.counts.tolist(), r.over.tolist(), r.nan.tolist()
    ([1], [[2, 0]], [1], [1])
    """
    _validate(x, edges)
    if resolve_backend(backend, x.device) == "triton":
        from driftd.kernels.triton.histogram import bucketize_histogram_triton

        return HistogramResult(*bucketize_histogram_triton(x, edges))
    from driftd.kernels.reference.histogram import bucketize_histogram_torch

    return HistogramResult(*bucketize_histogram_torch(x, edges))
