"""Public fused column summary: histogram + data-quality counts + shifted moments in one pass."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from driftd.kernels._common import HistogramResult, check_float, resolve_backend
from driftd.kernels.histogram import validate_block, validate_edges
from driftd.kernels.reference.column_summary import column_summary_torch, moments_eager
from driftd.kernels.reference.histogram import bin_layout, counts_from_ge, finite_edge_counts


@dataclass(frozen=True)
class ColumnSummary:
    """Per-column summary of a block x [N, F] (tensors [F] unless noted, on x's device).

    ``histogram``: as `bucketize_histogram` (left-closed bins on the edges, NaN / under / over).
    ``finite``: non-NaN, non-±inf values (int64). ``outliers``: ``x < fence_lo or x > fence_hi``
    (int64; NaN never counts, ±inf counts against a finite fence). ``dev_sum`` / ``dev_sq_sum``:
    ``Σ (x − shift)`` and ``Σ (x − shift)²`` over the finite values (float64; the deviation is
    formed in the compute dtype, its square and the sums in float64). ``min`` / ``max``: of the
    finite values (compute dtype; +inf / −inf for a column without one).
    """

    histogram: HistogramResult
    finite: torch.Tensor
    outliers: torch.Tensor
    dev_sum: torch.Tensor
    dev_sq_sum: torch.Tensor
    min: torch.Tensor
    max: torch.Tensor


def _vector(name: str, v, f: int, dtype: torch.dtype, device: torch.device, *, finite: bool) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=torch.float64)
    if t.ndim == 0:
        t = t.expand(f)
    if t.shape != (f,):
        raise ValueError(f"{name} must have shape ({f},), got {tuple(t.shape)}")
    if bool((~torch.isfinite(t) if finite else torch.isnan(t)).any()):
        raise ValueError(f"{name} must be {'finite' if finite else 'free of NaN'}, got {t.tolist()}")
    return t.to(device=device, dtype=dtype)


def column_summary(x: torch.Tensor, edges: torch.Tensor, *, shift=None, fence_lo=None, fence_hi=None,
                   backend: str = "auto") -> ColumnSummary:
    """Histogram, NaN / finite / outlier counts and shifted moments of every column of `x` [N, F].

    `edges` [F, E] as for `bucketize_histogram`. `shift` [F] (default 0): the moments are taken
    around it, so a shift near the column mean keeps ``M2 = dev_sq_sum − dev_sum² / n`` free of
    cancellation. `fence_lo` / `fence_hi` [F] (default ∓inf: no outliers). Everything is computed
    in the promoted dtype of x and edges (fp16 / bf16 in fp32), shift and fences rounded to it.
    On CPU one compiled pass over the data; on CUDA the histogram runs on the Triton kernel when
    the backend resolves to it, the rest in torch. For many blocks on the same edges and fences,
    `ColumnSummarizer` validates those once.

    >>> s = column_summary(torch.tensor([[0.0], [1.0], [2.0], [float("nan")], [9.0]]),
    ...                    torch.tensor([[1.0, 2.0]]), shift=[1.0], fence_lo=[-1.0], fence_hi=[5.0])
    >>> s.histogram.under.tolist(), s.histogram.counts.tolist(), s.histogram.over.tolist()
    ([1], [[1]], [2])
    >>> s.finite.tolist(), s.outliers.tolist(), s.dev_sum.tolist(), s.dev_sq_sum.tolist()
    ([4], [1], [8.0], [66.0])
    >>> s.min.tolist(), s.max.tolist()
    ([0.0], [9.0])
    """
    # bucketize_histogram's error order: x, then the edges (the summarizer), then the shapes (its call)
    check_float("x", x, 2)
    return ColumnSummarizer(edges, fence_lo=fence_lo, fence_hi=fence_hi, backend=backend)(x, shift=shift)


class ColumnSummarizer:
    """`column_summary` of many blocks on the same edges and fences (a window's batches).

    The edges, the fences and the backend are validated once, and cast once per compute dtype; a
    call checks only the block and the shift, so a small batch pays for its data rather than for
    re-validating constants. Results are those of `column_summary` with the same arguments.

    >>> summarize = ColumnSummarizer(torch.tensor([[1.0, 2.0]]), fence_lo=[-1.0], fence_hi=[5.0])
    >>> s = summarize(torch.tensor([[0.0], [1.5], [9.0]]), shift=[1.0])
    >>> s.histogram.under.tolist(), s.histogram.counts.tolist(), s.histogram.over.tolist(), s.outliers.tolist()
    ([1], [[1]], [1], [1])
    """

    def __init__(self, edges: torch.Tensor, *, fence_lo=None, fence_hi=None, backend: str = "auto"):
        validate_edges(edges)
        self.edges = edges.clone()  # validated once: a caller's later in-place edit must not slip past
        self.backend = backend
        resolve_backend(backend, edges.device)  # a bad name fails here, not at the first block
        f = edges.shape[0]
        cpu = torch.device("cpu")
        self._fence_lo = _vector("fence_lo", float("-inf") if fence_lo is None else fence_lo, f, torch.float64, cpu, finite=False)
        self._fence_hi = _vector("fence_hi", float("inf") if fence_hi is None else fence_hi, f, torch.float64, cpu, finite=False)
        self._by_dtype: dict[torch.dtype, tuple] = {}

    def _constants(self, cdt: torch.dtype):
        """(edges, fence_lo, fence_hi, `bin_layout`) in compute dtype `cdt` on the edges' device."""
        c = self._by_dtype.get(cdt)
        if c is None:
            dev = self.edges.device
            e = self.edges.to(cdt).contiguous()
            layout = bin_layout(finite_edge_counts(e), e.shape[1])
            c = self._by_dtype.setdefault(cdt, (e, self._fence_lo.to(dev, cdt), self._fence_hi.to(dev, cdt), layout))
        return c

    def __call__(self, x: torch.Tensor, *, shift=None) -> ColumnSummary:
        """The `ColumnSummary` of block `x` [N, F] with the moments taken around `shift` [F] (default 0)."""
        validate_block(x, self.edges)
        n, f = x.shape
        cdt = torch.promote_types(x.dtype, self.edges.dtype)
        if cdt in (torch.float16, torch.bfloat16):
            cdt = torch.float32
        e, lo, hi, layout = self._constants(cdt)
        shift_t = _vector("shift", 0.0 if shift is None else shift, f, cdt, x.device, finite=True)
        xc = x.to(cdt)
        if resolve_backend(self.backend, x.device) == "triton":
            from driftd.kernels.triton.histogram import bucketize_histogram_triton

            # histogram on the Triton kernel, the moments in torch (one fused Triton pass is future work)
            hist = HistogramResult(*bucketize_histogram_triton(x, self.edges))
            return ColumnSummary(hist, *moments_eager(xc, shift_t, lo, hi))
        ge, nan, finite, outliers, s1, s2, mn, mx = column_summary_torch(xc, e, shift_t, lo, hi)
        hist = HistogramResult(*counts_from_ge(ge, nan, n, layout=layout))
        return ColumnSummary(hist, finite, outliers, s1, s2, mn, mx)
