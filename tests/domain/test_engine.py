"""Engine behaviour: null false-alarm rates, detection power, data-quality signals, labels, snapshots."""

import json
import math

import numpy as np
import pytest

from driftd.server.domain.baseline import build_baseline
from driftd.server.domain.batch import Batch
from driftd.server.domain.engine import DriftEngine
from driftd.server.domain.labels import auroc, ece, label_quality
from driftd.server.domain.schema import NumericFeature, Schema
from driftd.server.domain.snapshot import Verdict

from .conftest import mixed_batch

F = 32
WIDE = Schema(numeric=tuple(NumericFeature(f"x{i}") for i in range(F)))


def _wide(rng, n):
    x = rng.normal(size=(n, F))
    x[:, :8] = rng.standard_t(3, size=(n, 8))  # heavy tails
    x[:, 8:12] = np.round(x[:, 8:12])  # ties
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def wide_baseline():
    return build_baseline(WIDE, Batch(numeric=_wide(np.random.default_rng(2024), 50_000)))


def test_null_false_alarm_rates(wide_baseline):
    """200 seeded null windows of 5,000 rows: calibrated warning fires in ≤ 10 %, critical in ≤ 3 %."""
    rng = np.random.default_rng(99)
    R = 200
    col_warn = col_crit = win_warn = win_crit = 0
    psi_warn = psi_crit = 0
    for _ in range(R):
        e = DriftEngine(wide_baseline)
        e.update(Batch(numeric=_wide(rng, 5000)), now=1.0)
        s = e.evaluate(now=2.0)
        for f in s.numeric_features:
            col_warn += f.verdict in (Verdict.WARNING, Verdict.CRITICAL)
            col_crit += f.verdict == Verdict.CRITICAL
            psi_warn += f.psi.verdict in (Verdict.WARNING, Verdict.CRITICAL)
            psi_crit += f.psi.verdict == Verdict.CRITICAL
        win_warn += s.verdict in (Verdict.WARNING, Verdict.CRITICAL)
        win_crit += s.verdict == Verdict.CRITICAL
    rates = {"column_warning": col_warn / (R * F), "column_critical": col_crit / (R * F),
             "psi_warning": psi_warn / (R * F), "psi_critical": psi_crit / (R * F),
             "window_warning": win_warn / R, "window_critical": win_crit / R}
    print("null rates", json.dumps(rates))
    assert rates["column_warning"] <= 0.10 and rates["column_critical"] <= 0.03
    assert rates["window_warning"] <= 0.10 and rates["window_critical"] <= 0.03


def test_quarter_sd_shift_on_one_of_32_features_is_flagged(wide_baseline):
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(10):
        x = _wide(rng, 5000)
        x[:, 20] += 0.25  # feature 20 is N(0, 1): a 0.25 sd mean shift
        e = DriftEngine(wide_baseline)
        e.update(Batch(numeric=x), now=1.0)
        s = e.evaluate(now=2.0)
        f = s.numeric_features[20]
        hits += f.verdict == Verdict.CRITICAL and s.verdict == Verdict.CRITICAL
        assert f.psi.value > f.psi.critical_threshold and f.ks.p_value < 1e-6
        assert f.reasons and "psi" in f.reasons[0]
    assert hits == 10


def test_sentinel_and_nan_burst_count_toward_the_verdict(wide_baseline):
    rng = np.random.default_rng(8)
    x = _wide(rng, 5000)
    x[rng.uniform(size=5000) < 0.01, 20] = -999.0  # 1 % sentinel
    x[rng.uniform(size=5000) < 0.05, 21] = np.nan  # NaN burst
    e = DriftEngine(wide_baseline)
    e.update(Batch(numeric=x), now=1.0)
    s = e.evaluate(now=2.0)
    sent, burst = s.numeric_features[20], s.numeric_features[21]
    assert sent.psi.verdict == Verdict.OK  # PSI barely moves ...
    assert sent.outlier_rate.verdict != Verdict.OK and sent.verdict != Verdict.OK  # ... but the column is flagged
    assert burst.nan_rate.verdict == Verdict.CRITICAL and burst.verdict == Verdict.CRITICAL
    assert s.verdict == Verdict.CRITICAL and any("nan_rate" in r for r in s.verdict_reasons)


def test_mixed_schema_null_and_drift(mixed_baseline):
    rng = np.random.default_rng(21)
    e = DriftEngine(mixed_baseline, mmd_permutations=50)
    e.update(mixed_batch(rng, 4000), now=1.0)
    s = e.evaluate(now=2.0)
    assert s.row_count == 4000
    assert s.embedding_blocks[0].mmd2_unbiased.p_value > 0.001
    assert 0.01 < s.latency.error_rate < 0.03 and s.latency.status_count == 4000
    assert s.latency.p50_ms == pytest.approx(math.exp(3), rel=0.05)
    d = s.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["categorical_features"][0]["shares"][0]["category"] == "de"

    drifted = mixed_batch(rng, 4000)
    drifted.categorical[:, 0] = rng.choice(3, size=4000, p=[0.2, 0.3, 0.5])  # category shares flip
    drifted.categorical[:100, 1] = 9  # codes the baseline never saw
    drifted.embeddings["text"][:, :4] += 0.5  # embedding shift
    drifted.scores[:, 0] = np.clip(drifted.scores[:, 0] + 0.3, 0, 1)  # prediction drift
    drifted.numeric[:50, 0] = 500.0  # outside valid range [0, 130]
    e2 = DriftEngine(mixed_baseline, mmd_permutations=50)
    e2.update(drifted, now=1.0)
    s2 = e2.evaluate(now=2.0)
    country, device = s2.categorical_features
    assert country.verdict == Verdict.CRITICAL and country.chi2.p_value < 1e-10 and country.psi.value > 0.2
    assert device.unseen_rate.value == pytest.approx(100 / 4000) and device.unseen_rate.verdict == Verdict.CRITICAL
    emb = s2.embedding_blocks[0]
    assert emb.verdict == Verdict.CRITICAL and emb.mmd2_unbiased.p_value == pytest.approx(1 / 51)
    cos = emb.centroid_cosine_distance  # zero-mean embeddings: the cosine of the means says little, by design
    assert cos.warning_threshold is not None and cos.sample_size == 4000 and cos.baseline_sample_size == 20_000
    p = s2.score_outputs[0]
    assert p.verdict == Verdict.CRITICAL and p.positive_rate > p.baseline_positive_rate + 0.2
    assert math.isnan(s2.score_outputs[1].positive_rate)  # regression output
    age = s2.numeric_features[0]
    assert age.out_of_range_rate.value == pytest.approx(50 / 4000) and age.out_of_range_rate.verdict == Verdict.WARNING
    assert s2.verdict == Verdict.CRITICAL and s2.drifted_features >= 3


def test_delayed_labels_join_and_quality(mixed_baseline):
    rng = np.random.default_rng(31)
    e = DriftEngine(mixed_baseline, pane_seconds=60, pane_count=2, label_ttl_seconds=100)
    b = mixed_batch(rng, 1000)
    e.update(b, now=10.0)
    scores = b.scores[:, 0].astype(np.float64)
    y = (rng.uniform(size=1000) < scores).astype(int)  # calibrated labels
    r = e.write_labels(b.request_ids[:600] + ["nope"], np.r_[y[:600], 1], now=70.0)
    assert (r.matched, r.unmatched, r.duplicates) == (600, 1, 0)
    assert e.write_labels(b.request_ids[:10], y[:10], now=71.0).duplicates == 10
    s = e.evaluate(now=75.0)
    lq = s.label_quality
    assert lq.labelled_count == 600 and lq.label_delay_p50_s == 60.0 and lq.label_delay_max_s == 60.0
    ref = label_quality(scores[:600], y[:600])
    assert lq.auroc == pytest.approx(ref["auroc"]) and lq.brier == pytest.approx(np.mean((scores[:600] - y[:600]) ** 2))
    assert lq.accuracy == pytest.approx(np.mean((scores[:600] >= 0.5) == y[:600]))
    # TTL: rows older than 100 s can no longer be labelled
    assert e.write_labels(b.request_ids[600:], y[600:], now=200.0).matched == 0


def test_auroc_and_ece_against_plain_formulas():
    rng = np.random.default_rng(3)
    s = np.round(rng.uniform(size=300), 1)  # many ties
    y = (rng.uniform(size=300) < s).astype(int)
    pos, neg = s[y == 1], s[y == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert auroc(s, y) == pytest.approx(pairs, rel=1e-12)
    s[0] = 1.0  # the last bin is closed at 1.0
    bins = np.minimum((s * 10).astype(int), 9)
    want = sum(abs(y[bins == b].mean() - s[bins == b].mean()) * (bins == b).mean() for b in range(10) if (bins == b).any())
    assert ece(s, y) == pytest.approx(want, rel=1e-12)
    q = label_quality(np.array([0.9, 0.8, 0.2, 0.6]), np.array([1, 0, 0, 1]))
    assert (q["precision"], q["recall"]) == (pytest.approx(2 / 3), 1.0) and q["f1"] == pytest.approx(0.8)


def test_concept_drift_from_label_errors(mixed_baseline):
    rng = np.random.default_rng(41)
    e = DriftEngine(mixed_baseline, pane_seconds=60, pane_count=100)
    t = 0.0
    for i in range(30):
        b = mixed_batch(rng, 500, ids_from=i * 500)
        e.update(b, now=t)
        p = b.scores[:, 0].astype(float)
        good = (p >= 0.5).astype(int) if i < 15 else 1 - (p >= 0.5).astype(int)  # model goes wrong at i = 15
        flip = rng.uniform(size=500) < 0.05
        e.write_labels(b.request_ids, np.where(flip, 1 - good, good), now=t + 1)
        t += 10
        if i == 14:
            assert not e.evaluate(now=t).label_quality.concept_drift_detected
    lq = e.evaluate(now=t).label_quality
    assert lq.concept_drift_detected and lq.cusum_error > lq.cusum_threshold


def test_min_samples_gives_insufficient_data(mixed_baseline):
    e = DriftEngine(mixed_baseline)
    e.update(mixed_batch(np.random.default_rng(1), 5), now=1.0)
    s = e.evaluate(now=1.0)
    assert all(f.verdict == Verdict.INSUFFICIENT_DATA for f in s.numeric_features)
    assert s.numeric_features[0].psi.sample_size == 5 and s.numeric_features[0].psi.warning_threshold is not None


def test_mixed_schema_null_window_rate(mixed_baseline):
    """Numeric + categorical + scores + an embedding block: whole-window false alarms stay low."""
    rng = np.random.default_rng(123)
    R = 60
    warn = crit = emb = 0
    for _ in range(R):
        e = DriftEngine(mixed_baseline, mmd_permutations=99)
        e.update(mixed_batch(rng, 3000), now=1.0)
        s = e.evaluate(now=2.0)
        warn += s.verdict in (Verdict.WARNING, Verdict.CRITICAL)
        crit += s.verdict == Verdict.CRITICAL
        emb += s.embedding_blocks[0].verdict != Verdict.OK
    print("mixed null rates", {"window_warning": warn / R, "window_critical": crit / R, "embedding_flagged": emb / R})
    assert warn / R <= 0.2 and crit / R <= 0.08 and emb / R <= 0.15
