"""Cosine distance between the centroids of two samples."""

from __future__ import annotations

import torch

from driftd.kernels._common import check_float


def centroid_cosine_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """``1 − cos(mean(x), mean(y))`` of x [n, d] and y [m, d] (means in fp64); NaN when a mean is 0.

    >>> centroid_cosine_distance(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]))
    1.0
    """
    check_float("x", x, 2)
    check_float("y", y, 2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y need the same dimension, got {x.shape[1]} and {y.shape[1]}")
    if x.shape[0] < 1 or y.shape[0] < 1:
        raise ValueError("centroid_cosine_distance needs at least one row in x and in y")
    a = x.to(torch.float64).mean(0)
    b = y.to(torch.float64).mean(0).to(a.device)
    denom = float(a.norm() * b.norm())
    if not denom > 0:
        return float("nan")
    return float(1.0 - float(a @ b) / denom)
