"""column_summary: the compiled CPU pass and the eager torch path vs a float64 numpy oracle (NaN,
±inf, ties on edges, heavy tails, +inf-padded edges, odd shapes, every input dtype), split
invariance, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from driftd.kernels import ColumnSummarizer, bucketize_histogram, column_summary

from .test_histogram import assert_same, make_case

INF = float("inf")


def numpy_summary(x: np.ndarray, shift: np.ndarray, lo: np.ndarray, hi: np.ndarray, dtype) -> dict:
    """Oracle: deviations formed in the compute dtype (as documented), everything else in float64."""
    fin = np.isfinite(x)
    dev = np.where(fin, (x.astype(dtype) - shift.astype(dtype)).astype(np.float64), 0.0)
    with np.errstate(invalid="ignore"):
        outliers = ((x < lo) | (x > hi)).sum(0)
    return {"finite": fin.sum(0), "outliers": outliers, "dev_sum": dev.sum(0), "dev_sq_sum": (dev * dev).sum(0),
            "min": np.where(fin, x, np.inf).min(0) if len(x) else np.full(x.shape[1], np.inf),
            "max": np.where(fin, x, -np.inf).max(0) if len(x) else np.full(x.shape[1], -np.inf)}


def heavy_case(n, f, e, seed, dtype):
    x, edges = make_case(n, f, e, seed=seed, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 1)
    if f > 1:  # a Student-t(1) column (Cauchy: heavy tails) and a column of ties
        x[:, 1] = torch.distributions.StudentT(1.0).sample((n,)) * 10.0 if n else x[:, 1]
        x[: n // 2, f - 1] = 0.25
    x[torch.rand(n, f, generator=g) < 0.01] = float("nan")
    return x.to(dtype), edges


def check(x: torch.Tensor, edges: torch.Tensor, s, shift, lo, hi):
    cdt = torch.float64 if torch.float64 in (x.dtype, edges.dtype) else torch.float32
    np_cdt = np.float64 if cdt == torch.float64 else np.float32
    assert_same(s.histogram, bucketize_histogram(x, edges, backend="torch"))
    xs = x.to(cdt).double().numpy()
    want = numpy_summary(xs, np.asarray(shift, np.float64).astype(np_cdt).astype(np.float64),
                         np.asarray(lo, np.float64).astype(np_cdt), np.asarray(hi, np.float64).astype(np_cdt), np_cdt)
    for name in ("finite", "outliers"):
        got = getattr(s, name)
        assert got.dtype == torch.int64
        np.testing.assert_array_equal(got.numpy(), want[name], err_msg=name)
    for name in ("dev_sum", "dev_sq_sum"):
        got = getattr(s, name)
        assert got.dtype == torch.float64
        # the same float64 terms summed in another order
        np.testing.assert_allclose(got.numpy(), want[name], rtol=1e-11, atol=1e-9, err_msg=name)
    for name in ("min", "max"):
        np.testing.assert_array_equal(getattr(s, name).double().numpy(), want[name], err_msg=name)
    assert int(s.finite.sum() + s.histogram.nan.sum()) <= x.shape[0] * x.shape[1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
# around the 256-row block and the 8,192-row copy limit of histogram.padded_blocks, and other odd shapes
@pytest.mark.parametrize("n,f,e", [(1, 1, 1), (5, 3, 4), (255, 2, 5), (256, 3, 5), (257, 2, 9), (2047, 1, 9), (2048, 4, 9),
                                   (2049, 5, 9), (5000, 7, 11), (700, 3, 40), (8192, 2, 9), (9000, 3, 9)])
@pytest.mark.parametrize("compiled", [True, False])
def test_matches_float64_oracle(monkeypatch, dtype, n, f, e, compiled):
    if not compiled:
        monkeypatch.setenv("DRIFTD_KERNELS_COMPILE", "0")
    x, edges = heavy_case(n, f, e, seed=n + f + e, dtype=dtype)
    edges = edges.to(torch.float64 if dtype == torch.float64 else torch.float32)
    rng = np.random.default_rng(n)
    shift = rng.normal(size=f)
    lo, hi = -np.abs(rng.normal(size=f)) - 1.0, np.abs(rng.normal(size=f)) + 1.0
    lo[0] = -np.inf  # an unfenced side: only −inf is never an outlier there
    s = column_summary(x, edges, shift=shift, fence_lo=lo, fence_hi=hi, backend="torch")
    check(x, edges, s, shift, lo, hi)


def test_compiled_equals_eager_exactly_on_counts(monkeypatch):
    x, edges = heavy_case(6000, 6, 9, seed=3, dtype=torch.float32)
    a = column_summary(x, edges, shift=0.5, fence_lo=-2.0, fence_hi=2.0)
    monkeypatch.setenv("DRIFTD_KERNELS_COMPILE", "0")
    b = column_summary(x, edges, shift=0.5, fence_lo=-2.0, fence_hi=2.0)
    assert_same(a.histogram, b.histogram)
    for name in ("finite", "outliers", "min", "max"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for name in ("dev_sum", "dev_sq_sum"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-11, atol=1e-9)


def test_defaults_and_empty_block():
    x = torch.tensor([[1.0, -INF], [float("nan"), 3.0], [INF, 2.0]])
    s = column_summary(x, torch.tensor([[0.0, 2.0], [1.0, INF]]))
    assert s.outliers.tolist() == [0, 0]  # no fences: nothing is an outlier, not even ±inf
    assert s.finite.tolist() == [1, 2] and s.histogram.nan.tolist() == [1, 0]
    assert s.dev_sum.tolist() == [1.0, 5.0] and s.dev_sq_sum.tolist() == [1.0, 13.0]
    e = column_summary(torch.empty(0, 2), torch.tensor([[0.0], [1.0]]))
    assert e.finite.tolist() == [0, 0] and e.min.tolist() == [INF, INF] and e.max.tolist() == [-INF, -INF]
    assert e.histogram.full().sum().item() == 0


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5000), st.lists(st.integers(0, 5000), max_size=4), st.integers(0, 10_000))
def test_summaries_of_parts_add_up(n, cuts, seed):
    """Counts of any split add up exactly; sums agree to rounding; min / max combine."""
    x, edges = heavy_case(n, 3, 9, seed=seed, dtype=torch.float32)
    kw = dict(shift=[0.1, -0.2, 0.0], fence_lo=-1.5, fence_hi=1.5)
    whole = column_summary(x, edges, **kw)
    bounds = sorted({0, n, *[c for c in cuts if c < n]})
    parts = [column_summary(x[a:b], edges, **kw) for a, b in zip(bounds, bounds[1:])]
    for name in ("counts", "nan", "under", "over"):
        assert torch.equal(getattr(whole.histogram, name), sum(getattr(p.histogram, name) for p in parts)), name
    assert torch.equal(whole.finite, sum(p.finite for p in parts))
    assert torch.equal(whole.outliers, sum(p.outliers for p in parts))
    torch.testing.assert_close(whole.dev_sum, sum(p.dev_sum for p in parts), rtol=1e-11, atol=1e-9)
    torch.testing.assert_close(whole.dev_sq_sum, sum(p.dev_sq_sum for p in parts), rtol=1e-11, atol=1e-9)
    assert torch.equal(whole.min, torch.stack([p.min for p in parts]).amin(0))
    assert torch.equal(whole.max, torch.stack([p.max for p in parts]).amax(0))


@pytest.mark.parametrize("kw,msg", [
    (dict(shift=[0.0]), r"shift must have shape \(2,\)"),
    (dict(shift=[0.0, float("nan")]), "shift must be finite"),
    (dict(shift=[0.0, INF]), "shift must be finite"),
    (dict(fence_lo=[float("nan"), 0.0]), "fence_lo must be free of NaN"),
    (dict(fence_hi=np.zeros((2, 1))), r"fence_hi must have shape \(2,\)"),
])
def test_bad_vectors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        column_summary(torch.zeros(3, 2), torch.zeros(2, 1), **kw)


def test_bad_block_is_the_histogram_error():
    with pytest.raises(ValueError, match="edges has 3 rows but x has 2 features"):
        column_summary(torch.zeros(3, 2), torch.zeros(3, 1))
    with pytest.raises(TypeError, match="x must be float32"):
        column_summary(torch.zeros(3, 2, dtype=torch.int64), torch.zeros(2, 1))
    # the edges are checked before their shape is compared with x's, as bucketize_histogram does
    for bad_edges, error, msg in [([[0.0], [1.0]], TypeError, "edges must be a torch.Tensor"),
                                  (torch.zeros(3), ValueError, "edges must be 2-D"),
                                  (torch.zeros(3, 1, dtype=torch.int64), TypeError, "edges must be float32")]:
        for fn in (column_summary, bucketize_histogram):
            with pytest.raises(error, match=msg):
                fn(torch.zeros(3, 2), bad_edges)



def assert_same_summary(a, b):
    assert_same(a.histogram, b.histogram)
    for name in ("finite", "outliers", "dev_sum", "dev_sq_sum", "min", "max"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("compiled", [True, False])
def test_summarizer_is_column_summary_for_every_block(monkeypatch, compiled):
    """One summarizer over blocks of different sizes, dtypes and shifts gives what column_summary
    gives for each (its per-dtype constants are cached, not reused across dtypes)."""
    if not compiled:
        monkeypatch.setenv("DRIFTD_KERNELS_COMPILE", "0")
    x, edges = heavy_case(3000, 4, 9, seed=11, dtype=torch.float64)
    edges = edges.to(torch.float32)
    lo, hi = [-1.0, -INF, -0.5, -2.0], [1.0, 2.0, INF, 0.5]
    summarize = ColumnSummarizer(edges, fence_lo=lo, fence_hi=hi)
    for n, dtype, shift in [(3000, torch.float32, None), (17, torch.float64, [0.5, -1.0, 0.0, 2.0]), (256, torch.float16, 0.25),
                            (1, torch.float32, [1.0, 2.0, 3.0, 4.0]), (0, torch.float32, None), (600, torch.float64, -0.5)]:
        xb = x[:n].to(dtype)
        assert_same_summary(summarize(xb, shift=shift), column_summary(xb, edges, shift=shift, fence_lo=lo, fence_hi=hi))
        check(xb, edges, summarize(xb, shift=shift), 0.0 if shift is None else shift, lo, hi)


def test_summarizer_validates_its_constants_once_and_each_block():
    with pytest.raises(ValueError, match="edges must be sorted"):
        ColumnSummarizer(torch.tensor([[2.0, 1.0]]))
    with pytest.raises(ValueError, match=r"fence_hi must have shape \(1,\)"):
        ColumnSummarizer(torch.tensor([[1.0, 2.0]]), fence_hi=[1.0, 2.0])
    with pytest.raises(ValueError, match="backend must be one of"):
        ColumnSummarizer(torch.tensor([[1.0, 2.0]]), backend="cuda")
    summarize = ColumnSummarizer(torch.tensor([[1.0, 2.0], [0.0, INF]]), fence_lo=-1.0)
    with pytest.raises(ValueError, match="edges has 2 rows but x has 3 features"):
        summarize(torch.zeros(4, 3))
    with pytest.raises(TypeError, match="x must be float32"):
        summarize(torch.zeros(4, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="shift must be finite"):
        summarize(torch.zeros(4, 2), shift=[0.0, float("nan")])
    s = summarize(torch.tensor([[1.5, -3.0]]), shift=[1.0, 0.0])  # still usable after the errors
    assert s.histogram.counts.tolist() == [[1], [0]] and s.outliers.tolist() == [0, 1]


def test_padded_blocks_bound_every_piece():
    """Every piece is whole blocks, at most max_rows rows, and the real rows add up to N (also when
    the short-batch copy would exceed max_rows)."""
    from driftd.kernels.reference.histogram import padded_blocks

    for n in (0, 1, 255, 256, 257, 4095, 4096, 4097, 8000, 8191, 8192, 8193, 12_288, 40_000):
        for max_rows, copy_rows in ((4096, 8192), (32_768, 8192), (1000, 100)):
            x = torch.arange(n, dtype=torch.float32)[:, None]
            pieces = padded_blocks(x, 256, copy_rows=copy_rows, max_rows=max_rows)
            assert all(len(p) % 256 == 0 and len(p) <= max(256, max_rows) for p, _ in pieces), (n, max_rows)
            real = torch.cat([p[: len(p) - pad] for p, pad in pieces]) if pieces else x
            assert torch.equal(real, x), (n, max_rows)  # each row once, in order
            assert all(torch.isnan(p[len(p) - pad:]).all() for p, pad in pieces)


def test_long_blocks_are_summarised_in_bounded_calls(monkeypatch):
    """The compiled kernel holds the GIL: no call may take more than MAX_CALL_ROWS rows, and the
    pieces still add up to the whole block (checked against the float64 oracle)."""
    from driftd.kernels.reference import column_summary as ref
    from driftd.kernels.reference.histogram import MAX_CALL_ROWS

    compiled, calls = ref._get_compiled(), []

    def recording(x, *args):
        calls.append(x.shape[0])
        return compiled(x, *args)

    monkeypatch.setattr(ref, "_compiled", recording)
    x, edges = heavy_case(3 * MAX_CALL_ROWS + 1000, 2, 9, seed=5, dtype=torch.float32)
    s = column_summary(x, edges, shift=[0.1, -0.1], fence_lo=-1.0, fence_hi=1.0)
    assert calls == [MAX_CALL_ROWS] * 3 + [768, 256]  # three full calls, the aligned rest, the padded tail
    check(x, edges, s, [0.1, -0.1], -1.0, 1.0)


def test_docstring_examples():
    import doctest
    import importlib

    for name in ("driftd.kernels.column_summary", "driftd.kernels.reference.histogram"):
        mod = importlib.import_module(name)  # the package re-exports a function named column_summary
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0, name


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 600), f=st.integers(1, 5), spread=st.sampled_from([0.5, 3.0, 1e3]),
       dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16]),
       seed=st.integers(0, 2**16))
def test_eager_fast_path_for_finite_blocks_equals_the_masked_path(n, f, spread, dtype, seed):
    """A block without NaN / ±inf skips the masks (and the fence compares when min / max lie
    inside the fences): every field equals the masked computation exactly, with or without
    outliers, for every dtype, 1 row, 1 column. A block with a NaN takes the masked path."""
    from driftd.kernels.reference import column_summary as ref

    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, f, generator=g, dtype=torch.float64) * spread).to(dtype)
    shift = x[0].clone()
    lo = torch.full((f,), -2.0, dtype=dtype)
    hi = torch.full((f,), 2.0, dtype=dtype)
    masked_path = ref._moments_masked
    masked = masked_path(x, shift, lo, hi)
    calls = []
    spy = lambda *a: calls.append(1) or masked_path(*a)  # noqa: E731
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ref, "_moments_masked", spy)
        fast = ref.moments_eager(x, shift, lo, hi)
        assert calls == []  # the fast path ran
        for a, b in zip(fast, masked):
            assert a.dtype == b.dtype and torch.equal(a, b)
        x[n // 2, f - 1] = float("nan")
        ref.moments_eager(x, shift, lo, hi)
        assert calls == [1]  # a NaN sends the block down the masked path
