"""Panes and windows: batch-equals-stream for any split, exact row counts, expiry, routing."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftd.server.domain.batch import concat_batches
from driftd.server.domain.engine import DriftEngine
from driftd.server.domain.errors import InvalidArgument

from .conftest import mixed_batch


def _assert_same(a, b, path="snapshot"):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        # moments of fp32 data are formed in fp32 precision (see moments.py); everything else is exact
        rel = 1e-6 if path.endswith(("mean", "std")) else 1e-9
        assert a == pytest.approx(b, rel=rel, abs=1e-12), path
    else:
        assert a == b, path


def _pane_equal(p, q):
    assert p.rows == q.rows
    for group in ("numeric", "scores"):
        g, h = getattr(p, group), getattr(q, group)
        for name in ("counts", "nan", "out_of_range", "outliers", "positives"):
            assert np.array_equal(getattr(g, name), getattr(h, name)), (group, name)
        assert np.array_equal(g.moments.count, h.moments.count)
        assert np.allclose(g.moments.mean, h.moments.mean, rtol=1e-6)
        assert np.array_equal(g.moments.min, h.moments.min) and np.array_equal(g.moments.max, h.moments.max)
    assert np.array_equal(p.categorical, q.categorical)
    assert np.array_equal(p.categorical_missing, q.categorical_missing)
    for k in ("numeric", "scores"):
        assert np.array_equal(p.rows_sample.get()[k], q.rows_sample.get()[k], equal_nan=True)
    e, f = p.embeddings["text"], q.embeddings["text"]
    assert e.count == f.count and np.array_equal(e.reservoir.get()["e"], f.reservoir.get()["e"])
    assert np.allclose(e.total, f.total, rtol=1e-12)
    assert np.array_equal(p.latency.counts, q.latency.counts)
    assert (p.status_rows, p.error_rows) == (q.status_rows, q.error_rows)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 600), st.lists(st.integers(0, 600), max_size=6), st.integers(0, 1000))
def test_batch_equals_stream_for_any_split(mixed_baseline, n, cuts, seed):
    rows = mixed_batch(np.random.default_rng(seed), n)
    one = DriftEngine(mixed_baseline, mmd_permutations=20)
    many = DriftEngine(mixed_baseline, mmd_permutations=20)
    assert one.update(rows, now=100.0) == n
    bounds = sorted({0, n, *[min(c, n) for c in cuts]})
    for a, b in zip(bounds, bounds[1:]):
        many.update(rows.slice(a, b), now=100.0)
    pane = one.window.get(110.0)
    _pane_equal(pane, many.window.get(110.0))
    # every accepted row is counted exactly once in every column
    assert (pane.numeric.counts.sum(1) + pane.numeric.nan == n).all()
    assert (pane.scores.counts.sum(1) + pane.scores.nan == n).all()
    assert (pane.categorical.sum(1) + pane.categorical_missing == n).all()
    assert pane.embeddings["text"].count == n and pane.latency.count + pane.latency.invalid_count == n
    s1, s2 = one.evaluate(now=110.0).to_dict(), many.evaluate(now=110.0).to_dict()
    _assert_same(s1, s2)
    assert s1["row_count"] == n == one.rows_accepted == many.rows_accepted


def test_pane_merge_equals_window_of_concatenation(mixed_baseline):
    rng = np.random.default_rng(4)
    parts = [mixed_batch(rng, k, ids_from=1000 * i) for i, k in enumerate((300, 50, 1200))]
    w = DriftEngine(mixed_baseline, pane_seconds=60, pane_count=3)
    for i, p in enumerate(parts):
        w.update(p, now=60.0 * i + 1)  # three panes
    assert len(w.window.panes) == 3
    snap = w.evaluate(now=121.0)
    assert snap.row_count == 1550
    assert [f.sample_count for f in snap.numeric_features] == [1550, 1550 - int(np.isnan(concat_batches(parts).numeric[:, 1]).sum()), 1550]
    assert snap.latency.sample_count == 1550 and snap.latency.status_count == 1550
    assert (snap.window_start, snap.window_end) == (0.0, 121.0)


def test_panes_expire(mixed_baseline):
    rng = np.random.default_rng(5)
    e = DriftEngine(mixed_baseline, pane_seconds=10, pane_count=2)
    e.update(mixed_batch(rng, 100), now=5.0)
    e.update(mixed_batch(rng, 40), now=15.0)
    assert e.evaluate(now=19.0).row_count == 140
    assert e.evaluate(now=25.0).row_count == 40
    assert e.evaluate(now=40.0).row_count == 0
    assert e.evaluate(now=40.0).verdict.value == "insufficient_data"
    assert e.rows_accepted == 140


def test_event_time_routing(mixed_baseline):
    rng = np.random.default_rng(6)
    e = DriftEngine(mixed_baseline, pane_seconds=10, pane_count=3)
    b = mixed_batch(rng, 10)
    b.event_time = 3.0  # inside the live window -> its own pane
    e.update(b, now=25.0)
    assert sorted(e.window.panes) == [0]
    late = mixed_batch(rng, 10)
    late.event_time = -100.0  # older than the window -> arrival pane, still counted
    e.update(late, now=25.0)
    assert sorted(e.window.panes) == [0, 2] and e.evaluate(now=25.0).row_count == 20


def test_bad_batch_never_touches_the_window(mixed_baseline):
    rng = np.random.default_rng(7)
    e = DriftEngine(mixed_baseline)
    good = mixed_batch(rng, 20)
    e.update(good, now=1.0)
    bad = mixed_batch(rng, 20)
    bad.numeric = bad.numeric[:, :2]
    bad.embeddings = {"text": bad.embeddings["text"][:, :3]}
    bad.categorical = bad.categorical.astype(np.float32)
    with pytest.raises(InvalidArgument) as err:
        e.update(bad, now=1.0)
    fields = {v.field for v in err.value.violations}
    assert {"batch.numeric.shape", 'batch.embeddings["text"].shape', "batch.categorical.dtype"} <= fields
    assert e.evaluate(now=2.0).row_count == 20 and e.rows_accepted == 20


def test_torch_and_half_precision_input(mixed_baseline):
    import torch

    rng = np.random.default_rng(8)
    b = mixed_batch(rng, 200)
    t = mixed_batch(np.random.default_rng(8), 200)
    t.numeric = torch.from_numpy(t.numeric)
    t.embeddings = {"text": torch.from_numpy(t.embeddings["text"]).to(torch.bfloat16)}
    e1, e2 = DriftEngine(mixed_baseline), DriftEngine(mixed_baseline)
    e1.update(b, now=1.0)
    e2.update(t, now=1.0)
    assert np.array_equal(e1.window.get(1.0).numeric.counts, e2.window.get(1.0).numeric.counts)
    assert not math.isnan(e2.evaluate(now=1.0).embedding_blocks[0].mmd2_unbiased.value)
