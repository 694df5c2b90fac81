"""Panes: the mergeable summary of the rows that arrived in one time slice, on one baseline's bins.

A `Pane` holds only mergeable summaries (design §1): bin counts on the baseline's edges, NaN /
out-of-range / outlier counts and Welford moments per float column (`ColumnsPane`), category
counts, a seeded bottom-k row reservoir (numeric + score values, for KS / W1), per embedding block
a running sum (exact centroid) and a row reservoir, a latency sketch, status counts, and the
delayed-label pairs that arrived in the slice. `update(batch)` is vectorised over the batch (one
kernel call for the histogram of a block, numpy / torch reductions, no per-element Python);
`merge(other)` is exact for counts, moments (Chan et al.), sums and sketches, and sound for
reservoirs (bottom-k keys).

Batch-equals-stream: reservoir keys are a hash of (seed, pane index, row index in the pane), so
the same rows fed as one batch or in any split give identical counts and reservoirs (moments agree
to floating-point rounding).

>>> import numpy as np
>>> from driftd.server.domain.schema import Schema, NumericFeature
>>> from driftd.server.domain.batch import Batch
>>> from driftd.server.domain.baseline import build_baseline, BaselineConfig
>>> s = Schema(numeric=(NumericFeature("x"),))
>>> base = build_baseline(s, Batch(numeric=np.random.default_rng(0).normal(size=(500, 1))), config=BaselineConfig(calibration_rounds=10))
>>> p = Pane.empty(base, index=0, pane_seconds=60.0)
>>> p.update(Batch(numeric=np.array([[0.0], [np.nan], [5.0]])))
>>> p.rows, int(p.numeric.nan[0]), int(p.numeric.counts.sum())
(3, 1, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from driftd.server.domain import binning, kernel_bridge
from driftd.server.domain.baseline import Baseline, ColumnsBaseline, category_positions
from driftd.server.domain.batch import Batch, as_numpy, to_tensor
from driftd.server.domain.latency_sketch import LatencySketch
from driftd.server.domain.moments import Moments
from driftd.server.domain.reservoir import RowReservoir, row_keys

LABEL_CAPACITY = 200_000  # label pairs kept per pane (bottom-k sample beyond; counts stay exact)


class _ColumnsPlan:
    """What `ColumnsPane.update` needs of its baseline besides the data, worked out once per pane:
    the kernel summarizer per edge dtype (edges and fences validated and cast once) and the
    columns with valid ranges or positive thresholds."""

    def __init__(self, base: ColumnsBaseline):
        self.base = base
        self.fence_lo = np.where(np.isnan(base.fence_lo), -np.inf, base.fence_lo)  # NaN fence: no outliers
        self.fence_hi = np.where(np.isnan(base.fence_hi), np.inf, base.fence_hi)
        self.bounded = np.flatnonzero(np.isfinite(base.valid_min) | np.isfinite(base.valid_max))
        self.has_threshold = not np.isnan(base.positive_threshold).all()
        self.threshold = np.nan_to_num(base.positive_threshold, nan=np.inf)
        self._summarizers: dict[tuple[torch.dtype, torch.device], kernel_bridge.ColumnSummarizer] = {}

    def summarizer(self, x: torch.Tensor) -> kernel_bridge.ColumnSummarizer:
        """The summarizer for blocks like `x` (fp32 or fp64, on its device)."""
        key = (x.dtype, x.device)
        s = self._summarizers.get(key)
        if s is None:
            edges = binning.edges_tensor(self.base.edges, x)
            # fences rounded to the edges' dtype first, as the data is compared in it
            np_dtype = np.float64 if edges.dtype == torch.float64 else np.float32
            s = kernel_bridge.column_summarizer(edges, fence_lo=self.fence_lo.astype(np_dtype), fence_hi=self.fence_hi.astype(np_dtype))
            self._summarizers[key] = s
        return s


@dataclass
class ColumnsPane:
    """Counts of a float block on the baseline's bins, plus data-quality counters and moments."""

    counts: np.ndarray  # [F, E+1]
    nan: np.ndarray
    out_of_range: np.ndarray
    outliers: np.ndarray
    positives: np.ndarray
    moments: Moments
    _plan: _ColumnsPlan | None = field(default=None, repr=False, compare=False)

    @classmethod
    def empty(cls, base: ColumnsBaseline) -> "ColumnsPane":
        f = len(base.names)
        z = lambda: np.zeros(f, dtype=np.int64)  # noqa: E731
        return cls(np.zeros_like(base.counts), z(), z(), z(), z(), Moments(f))

    def update(self, x, base: ColumnsBaseline) -> None:
        t = to_tensor(x)
        if not t.is_floating_point():
            t = t.to(torch.float64)
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.to(torch.float32)
        plan = self._plan
        if plan is None or plan.base is not base:
            plan = self._plan = _ColumnsPlan(base)
        # one pass (one compiled kernel on CPU): bins, NaN, finite and outlier counts, moments. The
        # shift is the running mean (the baseline's for a column without values yet), rounded to
        # the dtype the deviations are formed in.
        np_dtype = np.float64 if t.dtype == torch.float64 else np.float32
        shift = np.nan_to_num(self.moments.shift(base.mean), nan=0.0, posinf=0.0, neginf=0.0).astype(np_dtype)
        s = plan.summarizer(t)(t, shift=shift)
        self.counts += binning.full_counts(s.histogram, base.edges.shape[1])
        nan = s.histogram.nan.cpu().numpy()
        finite = s.finite.cpu().numpy()
        self.nan += nan
        # ±inf is always out of range; finite values are compared only on bounded columns
        oor = t.shape[0] - finite - nan
        bounded = plan.bounded
        if len(bounded) or plan.has_threshold:
            a = t.cpu().numpy()
            if len(bounded):
                sub = a[:, bounded]
                oor[bounded] += ((sub < base.valid_min[bounded]) | (sub > base.valid_max[bounded])).sum(0)  # float64 compare
            if plan.has_threshold:
                self.positives += (a >= plan.threshold).sum(0)
        self.out_of_range += oor
        self.outliers += s.outliers.cpu().numpy()
        self.moments.add_sums(finite, shift.astype(np.float64), s.dev_sum.cpu().numpy(), s.dev_sq_sum.cpu().numpy(),
                              s.min.cpu().double().numpy(), s.max.cpu().double().numpy())

    @classmethod
    def warm_up(cls, base: ColumnsBaseline) -> None:
        """Compile the summary kernel for this block's shapes in fp32 and fp64 (the dtypes clients
        send) on a scratch pane, so the first real batch does not wait seconds for the compiler.
        Two sizes: the kernel sees a whole number of 256-row blocks, and dynamo specialises one
        block (a size of 1 in its broadcast) apart from several."""
        for dtype in (np.float32, np.float64):
            for rows in (1, 1000):
                cls.empty(base).update(np.zeros((rows, len(base.names)), dtype=dtype), base)

    def merge(self, o: "ColumnsPane") -> "ColumnsPane":
        return ColumnsPane(self.counts + o.counts, self.nan + o.nan, self.out_of_range + o.out_of_range,
                           self.outliers + o.outliers, self.positives + o.positives, self.moments.merge(o.moments))


@dataclass
class EmbeddingPane:
    count: int
    total: np.ndarray  # [dim] float64 sum of finite rows
    nonfinite_rows: int
    reservoir: RowReservoir

    def merge(self, o: "EmbeddingPane") -> "EmbeddingPane":
        return EmbeddingPane(self.count + o.count, self.total + o.total, self.nonfinite_rows + o.nonfinite_rows,
                             self.reservoir.merge(o.reservoir))


@dataclass
class Pane:
    """Summary of one time slice [start, end) of a monitor's rows against one baseline."""

    index: int
    start: float
    end: float
    seed: int
    rows: int = 0
    numeric: ColumnsPane | None = None
    scores: ColumnsPane | None = None
    categorical: np.ndarray | None = None  # [Fc, Kmax+1] counts (codes, then "other")
    categorical_missing: np.ndarray | None = None
    rows_sample: RowReservoir | None = None  # columns "numeric" [k, F], "scores" [k, S]
    embeddings: dict[str, EmbeddingPane] = field(default_factory=dict)
    latency: LatencySketch = field(default_factory=LatencySketch)
    status_rows: int = 0
    error_rows: int = 0
    labels: RowReservoir = field(default_factory=lambda: RowReservoir(LABEL_CAPACITY))  # score, label, delay_s
    labelled: int = 0
    _base: Baseline | None = None

    @classmethod
    def empty(cls, base: Baseline, *, index: int, pane_seconds: float, seed: int = 0) -> "Pane":
        p = cls(index=index, start=index * pane_seconds, end=(index + 1) * pane_seconds, seed=seed, _base=base)
        if base.numeric is not None:
            p.numeric = ColumnsPane.empty(base.numeric)
        if base.scores is not None:
            p.scores = ColumnsPane.empty(base.scores)
        if base.categorical is not None:
            p.categorical = np.zeros_like(base.categorical.counts)
            p.categorical_missing = np.zeros(len(base.categorical.names), dtype=np.int64)
        p.rows_sample = RowReservoir(base.config.reservoir_size)
        for name in base.embeddings:
            dim = next(b.dim for b in base.schema.embeddings if b.name == name)
            p.embeddings[name] = EmbeddingPane(0, np.zeros(dim), 0, RowReservoir(base.config.embedding_sample_size))
        return p

    def update(self, batch: Batch) -> None:
        """Add the batch's rows (already validated against the baseline's schema)."""
        base = self._base
        n = batch.n_rows
        if n == 0:
            return
        keys = row_keys(self.seed, stream=self.index, start=self.rows, n=n)
        sample_cols = {}
        if self.numeric is not None:
            self.numeric.update(batch.numeric, base.numeric)
            sample_cols["numeric"] = as_numpy(batch.numeric)
        if self.scores is not None:
            self.scores.update(batch.scores, base.scores)
            sample_cols["scores"] = as_numpy(batch.scores)
        if self.rows_sample is not None and sample_cols:
            self.rows_sample.update(sample_cols, keys)
        if self.categorical is not None:
            codes = np.asarray(as_numpy(batch.categorical), dtype=np.int64)
            pos = category_positions(codes, base.categorical.n_codes)
            width = self.categorical.shape[1]
            flat = pos + np.arange(codes.shape[1])[None, :] * width
            self.categorical += np.bincount(flat[pos >= 0], minlength=self.categorical.size).reshape(self.categorical.shape)
            self.categorical_missing += (pos < 0).sum(0)
        for name, ep in self.embeddings.items():
            e = to_tensor(batch.embeddings[name])
            finite = torch.isfinite(e).all(1)
            ep.count += n
            ep.nonfinite_rows += int((~finite).sum())
            ep.total += torch.where(finite[:, None], e, torch.zeros((), dtype=e.dtype)).sum(0, dtype=torch.float64).numpy()
            ep.reservoir.update({"e": as_numpy(e)}, keys)
        if batch.latency_ms is not None:
            self.latency.update(as_numpy(batch.latency_ms))
        if batch.status_codes is not None:
            sc = as_numpy(batch.status_codes)
            self.status_rows += len(sc)
            self.error_rows += int((sc >= 500).sum())
        self.rows += n

    def add_labels(self, scores: np.ndarray, labels: np.ndarray, delays_s: np.ndarray) -> None:
        """Joined (score, label, label delay) pairs that arrived in this pane."""
        keys = row_keys(self.seed ^ 0x1ABE1, stream=self.index, start=self.labelled, n=len(labels))
        self.labels.update({"score": np.asarray(scores, np.float64), "label": np.asarray(labels, np.float64),
                            "delay": np.asarray(delays_s, np.float64)}, keys)
        self.labelled += len(labels)

    def merge(self, o: "Pane") -> "Pane":
        """A pane summarising both (bounds = the union's hull)."""
        out = Pane(index=max(self.index, o.index), start=min(self.start, o.start), end=max(self.end, o.end),
                   seed=self.seed, rows=self.rows + o.rows, _base=self._base)
        out.numeric = None if self.numeric is None else self.numeric.merge(o.numeric)
        out.scores = None if self.scores is None else self.scores.merge(o.scores)
        out.categorical = None if self.categorical is None else self.categorical + o.categorical
        out.categorical_missing = None if self.categorical_missing is None else self.categorical_missing + o.categorical_missing
        out.rows_sample = None if self.rows_sample is None else self.rows_sample.merge(o.rows_sample)
        out.embeddings = {k: v.merge(o.embeddings[k]) for k, v in self.embeddings.items()}
        out.latency = self.latency.merge(o.latency)
        out.status_rows = self.status_rows + o.status_rows
        out.error_rows = self.error_rows + o.error_rows
        out.labels = self.labels.merge(o.labels)
        out.labelled = self.labelled + o.labelled
        return out
