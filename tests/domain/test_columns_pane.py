"""ColumnsPane.update (one fused kernel pass) against a float64 numpy recomputation from the raw
rows: bins, NaN, out-of-range (bounded and unbounded columns, ±inf), outliers, moments, min / max —
over several batches with NaN, ±inf, ties, heavy tails and a column with no finite value."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftd.server.domain.baseline import BaselineConfig, build_baseline
from driftd.server.domain.batch import Batch
from driftd.server.domain.pane import ColumnsPane
from driftd.server.domain.schema import NumericFeature, Schema


@pytest.fixture(scope="module")
def baseline():
    rng = np.random.default_rng(0)
    schema = Schema(numeric=(NumericFeature("normal"), NumericFeature("bounded", valid_min=-1.0, valid_max=1.0),
                             NumericFeature("cauchy"), NumericFeature("ties"), NumericFeature("empty")))
    ref = np.stack([rng.normal(size=3000), rng.uniform(-1, 1, 3000), rng.standard_cauchy(3000),
                    rng.integers(0, 4, 3000).astype(float), np.full(3000, np.nan)], axis=1)
    return build_baseline(schema, Batch(numeric=ref), config=BaselineConfig(calibration_rounds=5))


def batches(seed: int, dtype):
    rng = np.random.default_rng(seed)
    out = []
    for n in (1, 700, 2048, 3001):
        x = np.stack([rng.normal(loc=3.0, size=n) * 1e3, rng.uniform(-1.5, 1.5, n), rng.standard_cauchy(n) * 1e4,
                      rng.integers(0, 4, n).astype(float), np.full(n, np.nan)], axis=1)
        x[rng.random((n, 5)) < 0.02] = np.nan
        x[rng.random((n, 5)) < 0.01] = np.inf
        x[rng.random((n, 5)) < 0.01] = -np.inf
        out.append(x.astype(dtype))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_columns_pane_matches_float64_recomputation(baseline, dtype, as_tensor):
    base = baseline.numeric
    pane = ColumnsPane.empty(base)
    blocks = batches(1, dtype)
    for b in blocks:
        pane.update(torch.from_numpy(b) if as_tensor else b, base)
    x = np.concatenate(blocks).astype(np.float64)
    fin = np.isfinite(x)
    np.testing.assert_array_equal(pane.nan, np.isnan(x).sum(0))
    oor = np.isinf(x).sum(0) + ((x < base.valid_min) | (x > base.valid_max)).sum(0) * 1
    np.testing.assert_array_equal(pane.out_of_range, oor)
    with np.errstate(invalid="ignore"):
        lo = base.fence_lo.astype(np.float32 if dtype != np.float64 else np.float64)
        hi = base.fence_hi.astype(lo.dtype)
        np.testing.assert_array_equal(pane.outliers, ((x < lo) | (x > hi)).sum(0))
    for f in range(x.shape[1]):
        e = base.edges[f][: base.n_edges[f]]
        v = x[~np.isnan(x[:, f]), f]
        c = np.bincount(np.searchsorted(e, v, side="right"), minlength=len(e) + 1)
        np.testing.assert_array_equal(pane.counts[f, base.valid[f]], c, err_msg=f"bins of column {f}")
        vals = x[fin[:, f], f]
        assert pane.moments.count[f] == len(vals)
        if len(vals):
            rtol = 1e-12 if dtype == np.float64 else 1e-6
            np.testing.assert_allclose(pane.moments.mean[f], vals.mean(), rtol=rtol, atol=rtol * vals.std())  # error ~ eps x spread
            np.testing.assert_allclose(pane.moments.std()[f], vals.std(ddof=1), rtol=rtol)
            assert pane.moments.min[f] == vals.min() and pane.moments.max[f] == vals.max()
        else:  # the all-NaN column: no moments; only its ±inf values land in the outer bins
            assert np.isinf(pane.moments.min[f]) and pane.counts[f].sum() == np.isinf(x[:, f]).sum() > 0


def test_engine_warm_up_changes_nothing(baseline):
    from driftd.server.domain.engine import DriftEngine

    engine = DriftEngine(baseline)
    engine.warm_up()
    snap = engine.evaluate(now=1.0)
    assert snap.row_count == 0 and engine.rows_accepted == 0
    assert all(f.sample_count == 0 for f in snap.numeric_features)


def test_after_warm_up_no_batch_size_compiles_anything(baseline):
    """The update kernel is compiled by warm_up for every size a runtime sends it (one row, part of a
    block, one block, several, a long batch with a padded tail): a first large or coalesced batch
    must not stall the engine thread on the compiler."""
    from torch._dynamo.utils import counters

    from driftd.server.domain.engine import DriftEngine

    torch._dynamo.reset()  # forget what earlier tests compiled
    engine = DriftEngine(baseline)
    engine.warm_up()
    compiled = counters["frames"]["ok"]
    assert compiled > 0, "warm_up compiled nothing: is the CPU compile path off?"
    rng = np.random.default_rng(3)
    for rows in (1, 5, 255, 256, 257, 1024, 2049, 4096, 9000, 20_000, 70_000):
        for dtype in (np.float32, np.float64):
            engine.update(Batch(numeric=rng.normal(size=(rows, len(baseline.numeric.names))).astype(dtype)), now=1.0)
    assert counters["frames"]["ok"] == compiled
