"""The one place the domain calls `driftd.kernels` (histogram, MMD, centroid cosine).

The engine calls `histogram(...)`, `mmd(...)` and `centroid_cosine(...)` from here. They forward to
`driftd.kernels` when it provides the functions; while the kernels package is still being written,
a small torch fallback with the same conventions runs instead (`KERNELS_AVAILABLE` says which).
The fallback is deliberately minimal and is not a second implementation to keep: once
`driftd.kernels` exports the names, it is never used.

Conventions (design §2 / §3): bins are left-closed `[e_i, e_{i+1})`; a value equal to an edge goes
up (`searchsorted(side='right')`); `under` = x < e_0; `over` = x >= last finite edge; edges are
padded per feature with +inf. MMD uses the RBF kernel exp(-d²/(2σ²)) summed over the given σ².

>>> import torch
>>> r = histogram(torch.tensor([[0.0], [1.0], [2.0], [float("nan")]]), torch.tensor([[1.0, 2.0, float("inf")]]))
>>> r.under.tolist(), r.counts.tolist(), r.over.tolist(), r.nan.tolist()
([1], [[1, 0]], [1], [1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

try:  # pragma: no cover - which branch runs depends on the kernels package's state
    from driftd.kernels import bucketize_histogram as _k_hist
    from driftd.kernels import centroid_cosine_distance as _k_cos
    from driftd.kernels import mmd2 as _k_mmd2

    KERNELS_AVAILABLE = True
except ImportError:  # pragma: no cover
    KERNELS_AVAILABLE = False


@dataclass(frozen=True)
class _HistogramResult:
    counts: torch.Tensor
    nan: torch.Tensor
    under: torch.Tensor
    over: torch.Tensor


@dataclass(frozen=True)
class _MMDResult:
    mmd2_unbiased: float
    mmd2_biased: float
    bandwidths: list
    p_value: float | None


def histogram(x: torch.Tensor, edges: torch.Tensor):
    """Per-feature bucket counts of `x` [N, F] on `edges` [F, E] -> (counts [F, E-1], nan, under, over)."""
    if KERNELS_AVAILABLE:
        if x.dtype != torch.float64:
            return _k_hist(x, edges)
        try:  # float64 (files, CPU-only data) is exact in the kernels' torch reference if it accepts it
            return _k_hist(x, edges)
        except (TypeError, ValueError, RuntimeError, NotImplementedError):
            pass  # a kernel that takes only fp32 / fp16 / bf16: count fp64 exactly here rather than round it
    return _fallback_histogram(x, edges)


def mmd(x: torch.Tensor, y: torch.Tensor, *, bandwidths: list[float] | None, n_permutations: int, seed: int):
    """MMD² (unbiased, biased, bandwidths σ², permutation p-value) of samples x [n, d] and y [m, d]."""
    if KERNELS_AVAILABLE:
        return _k_mmd2(x, y, bandwidths=bandwidths, n_permutations=n_permutations, seed=seed)
    return _fallback_mmd2(x, y, bandwidths=bandwidths, n_permutations=n_permutations, seed=seed)


def centroid_cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    """1 - cos(mean(x), mean(y))."""
    if KERNELS_AVAILABLE:
        return float(_k_cos(x, y))
    a = x.double().mean(0)
    b = y.double().mean(0)
    denom = a.norm() * b.norm()
    return float(1.0 - (a @ b) / denom) if denom > 0 else float("nan")


# -- fallbacks (used only while driftd.kernels lacks the functions) ---------------------------------

def _fallback_histogram(x: torch.Tensor, edges: torch.Tensor) -> _HistogramResult:
    """Compare-and-sum on CPU with numpy: ge[j] = #(x >= e_j) per feature; bins are differences."""
    n_feat, n_edges = edges.shape
    xf = x.to(torch.float32) if x.dtype in (torch.float16, torch.bfloat16) else x
    a = xf.detach().cpu().numpy()
    e = edges.detach().cpu().to(xf.dtype).numpy()
    n_fin = np.maximum(np.isfinite(e).sum(1), 1)
    ge = np.stack([(a >= e[:, j]).sum(0) for j in range(int(n_fin.max()))] or [np.zeros(n_feat, np.int64)])
    with np.errstate(invalid="ignore", over="ignore"):
        clean = bool(np.isfinite(a.sum(0)).all())
    nan = np.isnan(a).sum(0) if not clean else np.zeros(n_feat, np.int64)
    cols = np.arange(n_feat)
    over = ge[n_fin - 1, cols]
    under = (a.shape[0] - nan) - ge[0]
    counts = np.zeros((n_feat, n_edges - 1), dtype=np.int64)
    if ge.shape[0] > 1:
        inner = (ge[:-1] - ge[1:]).T  # [F, used-1]
        keep = np.arange(inner.shape[1])[None, :] < (n_fin - 1)[:, None]
        counts[:, : inner.shape[1]] = np.where(keep, inner, 0)
    t = torch.from_numpy
    return _HistogramResult(t(counts), t(np.asarray(nan, np.int64)), t(np.asarray(under, np.int64)),
                            t(np.asarray(over, np.int64)))


def _fallback_mmd2(x, y, *, bandwidths, n_permutations, seed) -> _MMDResult:
    x = x.double()
    y = y.double()
    z = torch.cat([x, y])
    n, m = len(x), len(y)
    sq = z.pow(2).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2 * z @ z.T).clamp_min(0)
    if bandwidths is None:
        iu = torch.triu_indices(len(z), len(z), 1)
        s2 = float(d2[iu[0], iu[1]].median()) / 2
        bandwidths = [s2 * (m_ ** 2) for m_ in (0.25, 0.5, 1.0, 2.0, 4.0)]
    k = sum(torch.exp(-d2 / (2 * b)) for b in bandwidths)

    def stats(ix: torch.Tensor) -> tuple[float, float]:
        a = ix.double()
        b = 1 - a
        kxx = a @ k @ a
        kyy = b @ k @ b
        kxy = a @ k @ b
        diag = torch.diagonal(k)
        tx, ty = a @ diag, b @ diag
        unb = (kxx - tx) / (n * (n - 1)) + (kyy - ty) / (m * (m - 1)) - 2 * kxy / (n * m)
        bia = kxx / n**2 + kyy / m**2 - 2 * kxy / (n * m)
        return float(unb), float(bia)

    ind = torch.zeros(n + m, dtype=torch.bool)
    ind[:n] = True
    unb, bia = stats(ind)
    p = None
    if n_permutations:
        g = torch.Generator().manual_seed(seed)
        hits = 0
        for _ in range(n_permutations):
            perm = torch.randperm(n + m, generator=g)
            hits += stats(ind[perm])[0] >= unb
        p = (1 + hits) / (n_permutations + 1)
    return _MMDResult(unb, bia, list(bandwidths), p)
