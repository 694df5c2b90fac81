"""driftd.kernels: histogram and MMD kernels (Triton + torch reference). Imports nothing else of driftd.

Public API: `bucketize_histogram`, `column_summary` (histogram + data-quality counts + moments in
one pass; `ColumnSummarizer` for many blocks on the same edges), `mmd2`, `centroid_cosine_distance`,
`HistogramResult`, `MMDResult`, plus `permutation_indicators` / `median_heuristic_sigma2` / `default_bandwidths` (the permutations
and bandwidths `mmd2` uses, for tests and callers that need them), and `eager_kernels()` (no
torch.compile inside a block: for one-off jobs). Backend: argument ``backend=``
or env ``DRIFTD_KERNELS=triton|torch|auto``; see `driftd.kernels._common`.
"""

from driftd.kernels._common import HistogramResult, MMDResult
from driftd.kernels.column_summary import ColumnSummarizer, ColumnSummary, column_summary
from driftd.kernels.cosine import centroid_cosine_distance
from driftd.kernels.histogram import bucketize_histogram
from driftd.kernels.mmd import mmd2
from driftd.kernels.reference.histogram import eager_kernels
from driftd.kernels.reference.mmd import default_bandwidths, median_heuristic_sigma2, permutation_indicators

__all__ = [
    "ColumnSummarizer",
    "ColumnSummary",
    "HistogramResult",
    "MMDResult",
    "bucketize_histogram",
    "centroid_cosine_distance",
    "column_summary",
    "default_bandwidths",
    "eager_kernels",
    "median_heuristic_sigma2",
    "mmd2",
    "permutation_indicators",
]
