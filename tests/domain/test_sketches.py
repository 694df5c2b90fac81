"""Mergeable sketches: moments, bottom-k reservoirs, latency sketch, binning, concept-drift detectors."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftd.server.domain import binning
from driftd.server.domain.concept_drift import Cusum, PageHinkley
from driftd.server.domain.latency_sketch import LatencySketch
from driftd.server.domain.moments import Moments
from driftd.server.domain.reservoir import RowReservoir, row_keys

floats = st.one_of(st.floats(min_value=-1e6, max_value=1e6), st.sampled_from([np.nan, np.inf, -np.inf]))


@settings(max_examples=60, deadline=None)
@given(st.lists(floats, min_size=0, max_size=60), st.lists(st.integers(0, 60), max_size=4))
def test_moments_any_split_equal_numpy(values, cuts):
    x = np.array(values, dtype=np.float64).reshape(-1, 1)
    bounds = sorted({0, len(x), *[min(c, len(x)) for c in cuts]})
    parts = []
    for a, b in zip(bounds, bounds[1:]):
        m = Moments(1)
        m.update(x[a:b])
        parts.append(m)
    merged = Moments(1)
    for p in parts:
        merged = merged.merge(p)
    fin = x[np.isfinite(x)]
    assert merged.count[0] == len(fin)
    if len(fin):
        assert merged.mean[0] == pytest.approx(fin.mean(), rel=1e-9, abs=1e-6)
        assert merged.min[0] == fin.min() and merged.max[0] == fin.max()
    if len(fin) > 1:
        assert merged.variance()[0] == pytest.approx(fin.var(ddof=1), rel=1e-7, abs=1e-3)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 50), st.lists(st.integers(0, 300), max_size=5), st.integers(0, 2**32))
def test_reservoir_is_split_invariant(n, k, cuts, seed):
    x = np.arange(n, dtype=np.float64)[:, None]
    one = RowReservoir(k)
    one.update({"x": x}, row_keys(seed, 3, 0, n))
    many = RowReservoir(k)
    bounds = sorted({0, n, *[min(c, n) for c in cuts]})
    for a, b in zip(bounds, bounds[1:]):
        many.update({"x": x[a:b]}, row_keys(seed, 3, a, b - a))
    assert np.array_equal(one.get()["x"], many.get()["x"])
    assert len(one) == min(n, k) and one.rows_seen == many.rows_seen == n


def test_reservoir_merge_weights_panes_by_size():
    # pane A has 9x the rows of pane B: a merged sample must hold ~90 % rows of A
    rng_total = 0
    for trial in range(30):
        a, b = RowReservoir(200), RowReservoir(200)
        a.update({"src": np.zeros((9000, 1))}, row_keys(trial, 1, 0, 9000))
        b.update({"src": np.ones((1000, 1))}, row_keys(trial, 2, 0, 1000))
        m = a.merge(b)
        assert len(m) == 200 and m.rows_seen == 10_000
        rng_total += m.get()["src"].sum()
    share_b = rng_total / (30 * 200)
    assert abs(share_b - 0.1) < 0.02  # binomial sd over 6000 draws ≈ 0.004


def test_reservoir_inclusion_is_uniform():
    hits = np.zeros(100)
    for seed in range(400):
        r = RowReservoir(10)
        r.update({"i": np.arange(100)[:, None]}, row_keys(seed, 0, 0, 100))
        hits[r.get()["i"].ravel()] += 1
    # each row expected in 400 * 10 / 100 = 40 samples; chi-square goodness of fit
    from scipy import stats
    assert stats.chisquare(hits).pvalue > 0.001


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=1e6), min_size=1, max_size=200),
       st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.0, 1.0]))
def test_latency_sketch_relative_error(values, q):
    s = LatencySketch(relative_error=0.01)
    half = len(values) // 2
    s1, s2 = LatencySketch(0.01), LatencySketch(0.01)
    s1.update(np.array(values[:half]))
    s2.update(np.array(values[half:]))
    s.update(np.array(values))
    truth = np.quantile(np.array(values), q, method="lower")
    for sk in (s, s1.merge(s2)):
        assert abs(sk.quantile(q) - truth) <= 0.01 * truth * (1 + 1e-9)
    assert np.array_equal(s.counts, s1.merge(s2).counts)


def test_latency_sketch_invalid_and_tiny_values():
    s = LatencySketch()
    s.update(np.array([np.nan, -1.0, 0.0, 1e-6, 5.0]))
    assert s.invalid_count == 2 and s.count == 3 and s.quantile(0.0) == 0.0
    assert math.isnan(LatencySketch().quantile(0.5))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.floats(min_value=-100, max_value=100, width=32), st.sampled_from([np.nan, np.inf, -np.inf])),
                min_size=1, max_size=80),
       st.lists(st.floats(min_value=-100, max_value=100, width=32), min_size=1, max_size=12))
def test_bin_counts_match_searchsorted(values, ref):
    x = np.array(values, dtype=np.float32)[:, None]
    edges, n_edges = binning.quantile_edges(np.array(ref)[:, None], bins=10)
    counts, nan = binning.bin_counts(x, edges)
    e = edges[0, : n_edges[0]]
    xv = x[:, 0].astype(np.float64)
    xv = xv[~np.isnan(xv)]
    pos = np.searchsorted(e, xv, side="right")
    expected = np.bincount(pos, minlength=len(e) + 1)
    got = counts[0][binning.valid_bins(n_edges, edges.shape[1])[0]]
    assert np.array_equal(got, expected)
    assert nan[0] == np.isnan(x).sum()
    pos2 = binning.bin_positions(x, edges, n_edges)
    assert np.array_equal(np.bincount(pos2[pos2 >= 0], minlength=edges.shape[1] + 1), counts[0])


def test_quantile_edges_deciles_and_ties():
    x = np.arange(1001, dtype=np.float64)[:, None]
    edges, n = binning.quantile_edges(x, bins=10)
    assert n[0] == 9 and np.allclose(edges[0], np.quantile(x[:, 0], np.arange(1, 10) / 10))
    tied = np.concatenate([np.zeros(700), np.arange(300.0)])[:, None]  # 70 % zeros
    edges, n = binning.quantile_edges(tied, bins=10)
    assert n[0] == len(np.unique(edges[0][np.isfinite(edges[0])])) and edges[0][0] == 0.0
    counts, _ = binning.bin_counts(tied, edges)
    assert counts[0][1] >= 700  # the tied mass sits in the bin that starts at 0
    const, n = binning.quantile_edges(np.full((50, 1), 3.0), bins=10)
    assert n[0] == 1 and const[0][0] == 3.0


def _cusum_loop(x, mu0, k):
    s = 0.0
    for v in x:
        s = max(0.0, s + v - mu0 - k)
    return s


def _ph_loop(x, delta):
    n = tot = m = mmin = 0.0
    for v in x:
        n += 1
        tot += v
        m += v - tot / n - delta
        mmin = min(mmin, m)
    return m - mmin


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1), max_size=300), st.lists(st.integers(0, 300), max_size=4))
def test_cusum_and_page_hinkley_equal_loops_for_any_split(xs, cuts):
    x = np.array(xs, dtype=float)
    c, ph = Cusum(mu0=0.2), PageHinkley()
    bounds = sorted({0, len(x), *[min(v, len(x)) for v in cuts]})
    for a, b in zip(bounds, bounds[1:]):
        c.update(x[a:b])
        ph.update(x[a:b])
    assert c.statistic == pytest.approx(_cusum_loop(x, 0.2, 0.05), abs=1e-9)
    assert ph.statistic == pytest.approx(_ph_loop(x, 0.005), abs=1e-9)


def test_cusum_warmup_estimates_mu0_and_detects_a_rise():
    rng = np.random.default_rng(0)
    c = Cusum()
    c.update((rng.uniform(size=5000) < 0.1).astype(float))
    assert c.mu0 == pytest.approx(0.1, abs=0.05) and not c.get()["detected"]
    c.update((rng.uniform(size=3000) < 0.3).astype(float))
    assert c.get()["detected"]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4).flatmap(lambda f: st.lists(
    st.lists(st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.0, 1.0, 1.0, np.nan, np.inf, -np.inf, 1e300, -1e300])),
             min_size=f, max_size=f),
    min_size=1, max_size=60)))
def test_quantiles_from_one_sort_equal_numpy_per_column(rows):
    """Edges and quartiles come from one sort of the reference; they must be exactly numpy's
    quantile of each column's finite values (ties, NaN, +-inf, all-non-finite columns)."""
    x = np.array(rows, dtype=np.float64)
    before = x.copy()
    cols = binning.sorted_columns(x)
    assert np.array_equal(x, before, equal_nan=True)  # the caller's array is never rewritten (one column was)
    edges, n_edges = binning.quantile_edges(x, bins=10, sorted_cols=cols)
    for f in range(x.shape[1]):
        assert np.all(np.isfinite(edges[f, : n_edges[f]])) and np.all(edges[f, n_edges[f]:] == np.inf)
    q = binning.column_quantiles(cols, [0.25, 0.75])
    for f in range(x.shape[1]):
        v = x[:, f][np.isfinite(x[:, f])]
        assert cols[1][f] == len(v)
        if len(v) == 0:
            assert np.isnan(q[f]).all() and n_edges[f] == 1 and edges[f, 0] == 0.0
            continue
        assert np.array_equal(q[f], np.quantile(v, [0.25, 0.75]))  # bit for bit
        mean, std = binning.column_mean_std(cols)
        scale = 1e-12 * len(v) * np.abs(v).max()  # summation order differs (sorted): cancellation
        with np.errstate(all="ignore"):  # 1e300 squared overflows in both
            assert mean[f] == pytest.approx(np.mean(v), rel=1e-12, abs=scale)
            if len(v) < 2:
                assert np.isnan(std[f])
            elif np.isfinite(np.std(v, ddof=1)):
                assert std[f] == pytest.approx(np.std(v, ddof=1), rel=1e-12, abs=scale)
        f32 = float(np.finfo(np.float32).max)
        want = np.unique(np.clip(np.quantile(v, np.arange(1, 10) / 10), -f32, f32).astype(np.float32).astype(np.float64))
        assert n_edges[f] == len(want) and np.array_equal(edges[f, : n_edges[f]], want)
        assert np.all(np.isinf(edges[f, n_edges[f]:]))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3).flatmap(lambda f: st.lists(
    st.lists(st.one_of(st.floats(-100, 100, width=32), st.sampled_from([0.0, 1.0, 1.0, np.nan, np.inf, -np.inf, 3e38, -3e38])),
             min_size=f, max_size=f), min_size=1, max_size=60)), st.booleans(), st.sampled_from([2, 4, 10]))
def test_counts_from_sorted_equal_the_kernel_histogram(rows, as_float32, bins):
    """The baseline's counts from its sorted columns equal the histogram kernel's on the same
    edges, for float32 and float64 data with ties, NaN, ±inf and columns without a finite value."""
    x = np.array(rows, dtype=np.float32 if as_float32 else np.float64)
    if not as_float32:
        x[x == 3e38] *= 1e10  # beyond float32's range: clipped edges, not infinite ones
        x[x == -3e38] *= 1e10
    cols = binning.sorted_columns(x)
    edges, n_edges = binning.quantile_edges(x, bins=bins, sorted_cols=cols)
    counts, nan = binning.counts_from_sorted(cols, x.astype(np.float64), edges, n_edges)
    want_counts, want_nan = binning.bin_counts(x, edges)
    assert np.array_equal(counts, want_counts) and np.array_equal(nan, want_nan)


def test_single_column_baseline_leaves_its_reference_alone_and_equals_the_wide_one():
    """One column took a path where the sort ran in the caller's array (torch returned a view):
    its ±inf became NaN before they were counted. The reference must come back unchanged and the
    column's summary must equal the same column's in a two-column baseline."""
    from driftd.server.domain.baseline import BaselineConfig, build_baseline
    from driftd.server.domain.batch import Batch
    from driftd.server.domain.schema import NumericFeature, Schema

    rng = np.random.default_rng(11)
    col = rng.normal(size=600)
    col[:30], col[30:40], col[40:50] = np.inf, -np.inf, np.nan
    one = col[:, None].copy()
    cfg = BaselineConfig(calibration_rounds=5)
    b1 = build_baseline(Schema(numeric=(NumericFeature("a"),)), Batch(numeric=one), config=cfg)
    assert np.array_equal(one[:, 0], col, equal_nan=True)
    two = np.stack([col, rng.normal(size=600)], 1)
    b2 = build_baseline(Schema(numeric=(NumericFeature("a"), NumericFeature("b"))), Batch(numeric=two), config=cfg)
    c1, c2 = b1.numeric, b2.numeric
    assert c1.nan_count[0] == c2.nan_count[0] == 10
    assert c1.out_of_range_count[0] == c2.out_of_range_count[0] == 40
    real = lambda c: c.counts[0][binning.valid_bins(c.n_edges, c.edges.shape[1])[0]]  # noqa: E731
    assert np.array_equal(c1.edges[0, : c1.n_edges[0]], c2.edges[0, : c2.n_edges[0]]) and np.array_equal(real(c1), real(c2))
    assert c1.counts[0].sum() == 590  # every non-NaN value in a bin, ±inf in under / over


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 60), st.integers(1, 4), st.integers(2, 5), st.integers(1, 6), st.booleans(), st.integers(0, 2**32 - 1))
def test_shard_counts_equal_a_loop_over_shards(n, n_cols, n_shards, n_bins, wide, seed):
    """Calibration's per-shard bin counts: every shard's rows counted once per column, missing
    values (-1) and rows in no shard (n not a multiple of the shard count) left out."""
    from driftd.server.domain.calibration import shard_counts

    rng = np.random.default_rng(seed)
    positions = rng.integers(-1, n_bins, size=(n, n_cols)).astype(np.int64 if wide else np.int16)
    h = n // n_shards
    if h == 0:
        return
    perm = rng.permutation(n)[: n_shards * h].reshape(n_shards, h)
    got = shard_counts(positions, perm, n_bins)
    for s in range(n_shards):
        for f in range(n_cols):
            p = positions[perm[s], f]
            assert np.array_equal(got[s, f], np.bincount(p[p >= 0], minlength=n_bins))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 3).flatmap(lambda f: st.lists(
    st.lists(st.one_of(st.floats(-1e6, 1e6, width=32), st.sampled_from([0.0, 1.0, 1.0, np.nan, np.inf, -np.inf])),
             min_size=f, max_size=f), min_size=1, max_size=60)))
def test_float32_reference_sorted_as_float32_gives_the_float64_results(rows):
    """float32 references are sorted as float32 (half the memory); every summary read from them
    equals, bit for bit, the one from the same values widened to float64 first."""
    x32 = np.array(rows, dtype=np.float32)
    x64 = x32.astype(np.float64)
    c32, c64 = binning.sorted_columns(x32), binning.sorted_columns(x64)
    assert c32[0].dtype == np.float32 and np.array_equal(c32[1], c64[1])
    e32, n32 = binning.quantile_edges(x32, bins=10, sorted_cols=c32)
    e64, n64 = binning.quantile_edges(x64, bins=10, sorted_cols=c64)
    assert np.array_equal(e32, e64) and np.array_equal(n32, n64)
    assert np.array_equal(binning.column_quantiles(c32, [0.25, 0.75]), binning.column_quantiles(c64, [0.25, 0.75]), equal_nan=True)
    for a, b in zip(binning.column_mean_std(c32), binning.column_mean_std(c64)):
        assert np.array_equal(a, b, equal_nan=True)
    for a, b in zip(binning.counts_from_sorted(c32, x32, e32, n32), binning.counts_from_sorted(c64, x64, e64, n64)):
        assert np.array_equal(a, b)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 3000), n_cols=st.integers(1, 3), dtype=st.sampled_from([np.float32, np.float64]),
       qs=st.lists(st.floats(0, 1), min_size=1, max_size=12), data=st.data())
def test_column_quantiles_are_numpys_bits(n, n_cols, dtype, qs, data):
    """Any q in [0, 1], any column length (the virtual index lands on, between and past the
    values), float32 and float64 sorted columns: the same bits as `np.quantile` of the finite
    values widened to float64. (-0.0 and 0.0 compare equal and either may sit at a given sorted
    position — numpy's own partition picks arbitrarily — so they are compared as values.)"""
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_t(2, size=(n, n_cols)).astype(dtype)
    special = rng.random(x.shape) < 0.2  # NaN / inf (dropped), signed zeros and ties (kept)
    x[special] = rng.choice(np.array([np.nan, np.inf, 0.0, -0.0, 1.0], dtype=dtype), size=int(special.sum()))
    qs = qs + [0.0, 0.25, 0.5, 1.0] + list(np.arange(1, 10) / 10)
    got = binning.column_quantiles(binning.sorted_columns(x), qs)
    for f in range(n_cols):
        v = x[:, f][np.isfinite(x[:, f])].astype(np.float64)
        if len(v) == 0:
            assert np.isnan(got[f]).all()
            continue
        assert np.array_equal(got[f], np.quantile(v, qs))  # exact: == on every value
        assert not np.any(np.signbit(got[f]) & (got[f] == 0))  # a zero is always +0.0


def test_signed_zeros_give_the_same_quantiles_for_either_dtype_and_order():
    """Which of -0.0 / 0.0 a sort puts first is arbitrary; the quantiles (and so the edges a
    baseline stores) must not depend on it, nor on float32 vs float64."""
    col = np.array([-0.0, 0.0, -0.0, 0.0, 0.0, -0.0, -1.0, 1.0, 0.0, -0.0, 0.0])
    qs = np.arange(1, 10) / 10
    seen = set()
    for dtype in (np.float32, np.float64):
        for perm in np.random.default_rng(0).permuted(np.tile(np.arange(len(col)), (6, 1)), axis=1):
            q = binning.column_quantiles(binning.sorted_columns(col[perm].astype(dtype)[:, None]), qs)[0]
            seen.add(q.tobytes())
            assert np.array_equal(q, np.quantile(col, qs))
    assert len(seen) == 1


def test_quantiles_of_values_beyond_float32_range_stay_finite():
    """b − a can overflow for finite float64 neighbours (numpy's lerp gives NaN there); a NaN edge
    would put values in the wrong bin."""
    x = np.array([[-1.7e308], [1.7e308], [1.7e308], [-1.7e308], [0.0]])
    cols = binning.sorted_columns(x)
    q = binning.column_quantiles(cols, np.arange(1, 10) / 10)
    assert np.all(np.isfinite(q)) and np.all(np.diff(q[0]) >= 0)
    edges, n_edges = binning.quantile_edges(x, bins=10, sorted_cols=cols)
    assert np.all(np.isfinite(edges[0, : n_edges[0]]))
    counts, nan = binning.counts_from_sorted(cols, x, edges, n_edges)
    assert counts.sum() == 5 and nan.sum() == 0


@pytest.mark.parametrize("qs", [[-0.5], [1.5], [np.nan], [[0.5]]])
def test_quantiles_outside_0_1_are_refused(qs):
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        binning.column_quantiles(binning.sorted_columns(np.arange(5.0)[:, None]), qs)


def test_read_only_float32_reference_sorts_without_a_warning():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)[::-1].copy()
    x.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vs, k = binning.sorted_columns(x)
    assert vs.dtype == np.float32 and np.array_equal(vs, np.sort(x, axis=0).T) and list(k) == [6, 6]
