"""Embedding drift through the engine against a float64 reference implementation of design §2."""

import numpy as np
import pytest

from driftd.server.domain.baseline import BaselineConfig, build_baseline, median_heuristic_bandwidths
from driftd.server.domain.batch import Batch
from driftd.server.domain.engine import DriftEngine
from driftd.server.domain.schema import EmbeddingBlock, Schema


def _mmd2_reference(x, y, bandwidths):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    z = np.concatenate([x, y])
    d2 = np.maximum(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1), 0)
    k = sum(np.exp(-d2 / (2 * b)) for b in bandwidths)
    n, m = len(x), len(y)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    unb = (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    bia = kxx.mean() + kyy.mean() - 2 * kxy.mean()
    return unb, bia


def test_median_heuristic_matches_definition():
    rng = np.random.default_rng(0)
    x = rng.standard_t(3, size=(300, 5))
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)[np.triu_indices(300, 1)]
    s2 = np.median(d2) / 2
    got = median_heuristic_bandwidths(x, (0.25, 0.5, 1.0, 2.0, 4.0))
    assert got == pytest.approx(tuple(s2 * m * m for m in (0.25, 0.5, 1.0, 2.0, 4.0)), rel=1e-9)


@pytest.mark.parametrize("shift", [0.0, 0.4])
def test_engine_mmd_and_centroid_match_float64_reference(shift):
    rng = np.random.default_rng(5)
    schema = Schema(embeddings=(EmbeddingBlock("e", 6),))
    ref = rng.standard_t(4, size=(3000, 6)).astype(np.float32)
    base = build_baseline(schema, Batch(embeddings={"e": ref}),
                          config=BaselineConfig(embedding_sample_size=200, mmd_calibration_rounds=10, mmd_calibration_max_half=100))
    cur = (rng.standard_t(4, size=(150, 6)) + shift).astype(np.float32)  # n = 150 != m = 200
    eng = DriftEngine(base, mmd_permutations=99, seed=3)
    eng.update(Batch(embeddings={"e": cur}), now=1.0)
    e = eng.evaluate(now=1.0).embedding_blocks[0]
    sample = eng.window.get(1.0).embeddings["e"].reservoir.get()["e"]
    assert len(sample) == 150
    unb, bia = _mmd2_reference(sample, base.embeddings["e"].sample, base.embeddings["e"].bandwidths)
    assert e.mmd2_unbiased.value == pytest.approx(unb, rel=1e-4, abs=1e-6)
    assert e.mmd2_biased == pytest.approx(bia, rel=1e-4, abs=1e-6)
    assert e.permutations == 99 and 1 / 100 <= e.mmd2_unbiased.p_value <= 1
    assert (e.mmd2_unbiased.p_value * 100) == pytest.approx(round(e.mmd2_unbiased.p_value * 100))  # (1 + hits) / (P + 1)
    a = cur.astype(np.float64).mean(0)
    b = ref.astype(np.float64).mean(0)
    cos = 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    assert e.centroid_cosine_distance.value == pytest.approx(cos, rel=1e-6)
    if shift:
        assert e.verdict.value == "critical" and e.mmd2_unbiased.p_value == pytest.approx(0.01)
    else:
        assert e.mmd2_unbiased.p_value > 0.01


def test_centroid_cosine_thresholds_hold_under_null_and_flag_a_rotation():
    rng = np.random.default_rng(9)
    schema = Schema(embeddings=(EmbeddingBlock("e", 16),))
    mean = np.ones(16)
    base = build_baseline(schema, Batch(embeddings={"e": (rng.normal(size=(20_000, 16)) + mean).astype(np.float32)}),
                          config=BaselineConfig(embedding_sample_size=256, mmd_calibration_rounds=5, mmd_calibration_max_half=64))
    fired = 0
    for _ in range(40):
        eng = DriftEngine(base, mmd_permutations=0)
        eng.update(Batch(embeddings={"e": (rng.normal(size=(2000, 16)) + mean).astype(np.float32)}), now=1.0)
        fired += eng.evaluate(now=1.0).embedding_blocks[0].centroid_cosine_distance.verdict.value == "critical"
    assert fired <= 3  # nominal 1 %
    rotated = mean.copy()
    rotated[:4] = -1  # same norm, different direction
    eng = DriftEngine(base, mmd_permutations=0)
    eng.update(Batch(embeddings={"e": (rng.normal(size=(2000, 16)) + rotated).astype(np.float32)}), now=1.0)
    cos = eng.evaluate(now=1.0).embedding_blocks[0].centroid_cosine_distance
    assert cos.verdict.value == "critical" and cos.value == pytest.approx(0.5, abs=0.05)
