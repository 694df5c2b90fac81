"""Baselines: contents, calibration bookkeeping, serialisation round-trip, immutability, hashing."""

import dataclasses
import struct
from datetime import datetime, timezone

import numpy as np
import pytest

from driftd.server.domain.baseline import FORMAT_VERSION, Baseline, BaselineConfig, build_baseline, reference_hash
from driftd.server.domain.batch import Batch
from driftd.server.domain.errors import FailedPrecondition, InvalidArgument
from driftd.server.domain.schema import NumericFeature, Schema

from .conftest import MIXED_SCHEMA, mixed_batch


def test_contents(mixed_baseline):
    b = mixed_baseline
    assert b.metadata.model_id == "fraud" and b.metadata.git_commit == "abc123" and b.metadata.source == "unit-test"
    assert b.metadata.row_count == 20_000 and len(b.metadata.data_hash) == 64
    assert b.metadata.created_at.endswith("+00:00")
    num = b.numeric
    assert num.names == ("age", "amount", "tied")
    assert num.n_edges.tolist()[:2] == [9, 9]  # deciles
    assert 2 <= num.n_edges[2] <= 5  # 4 tied values: duplicated quantiles collapse
    assert num.counts.sum() + num.nan_count.sum() == 3 * 20_000
    assert 150 < num.nan_count[1] < 250
    assert num.sample.shape == (512 * 4, 3)
    assert b.categorical.n_codes.tolist() == [3, 6]
    assert b.categorical.counts[:, :7].sum() == 2 * 20_000
    e = b.embeddings["text"]
    assert e.sample.shape == (256, 8) and len(e.bandwidths) == 5
    assert e.bandwidths[2] == pytest.approx(8.0, rel=0.15)  # median ||x-y||² / 2 ≈ dim for N(0, I)
    assert b.scores.positive_count[0] > 0 and b.scores.positive_count[1] == 0  # regression: no positives
    for key in ("numeric.psi", "numeric.ks", "numeric.w1", "numeric.family.psi", "categorical.chi2",
                "categorical.psi", "scores.psi", "embedding.text.mmd2"):
        t = b.threshold(key)
        assert t is not None, key
        if ".family." in key:  # multipliers of the per-column thresholds, each >= 1
            assert t.warning[0] >= 1 and t.critical[0] >= 1
        else:
            assert np.all(t.critical >= t.warning - 1e-12), key


def test_round_trip_is_exact(mixed_baseline):
    blob = mixed_baseline.to_bytes()
    back = Baseline.from_bytes(blob)
    assert back.schema == mixed_baseline.schema and back.config == mixed_baseline.config
    assert back.metadata == mixed_baseline.metadata
    for group in ("numeric", "scores", "categorical"):
        a, c = getattr(mixed_baseline, group), getattr(back, group)
        for f in dataclasses.fields(a):
            va, vc = getattr(a, f.name), getattr(c, f.name)
            if isinstance(va, np.ndarray):
                assert va.dtype == vc.dtype and np.array_equal(va, vc, equal_nan=True), (group, f.name)
            else:
                assert va == vc
    assert np.array_equal(back.embeddings["text"].sample, mixed_baseline.embeddings["text"].sample)
    assert back.embeddings["text"].bandwidths == mixed_baseline.embeddings["text"].bandwidths
    assert back.thresholds.keys() == mixed_baseline.thresholds.keys()
    for k, t in mixed_baseline.thresholds.items():
        assert np.array_equal(t.warning, back.thresholds[k].warning, equal_nan=True)
    assert back.to_bytes() == blob


def test_immutable(mixed_baseline):
    with pytest.raises(dataclasses.FrozenInstanceError):
        mixed_baseline.numeric = None
    with pytest.raises(ValueError):
        mixed_baseline.numeric.edges[0, 0] = 1.0
    back = Baseline.from_bytes(mixed_baseline.to_bytes())
    with pytest.raises(ValueError):
        back.numeric.counts[0, 0] = 1


def test_bad_blobs():
    with pytest.raises(InvalidArgument):
        Baseline.from_bytes(b"not a baseline at all")
    rng = np.random.default_rng(0)
    b = build_baseline(Schema(numeric=(NumericFeature("x"),)), Batch(numeric=rng.normal(size=(100, 1))),
                       config=BaselineConfig(calibration_rounds=10))
    blob = bytearray(b.to_bytes())
    blob[8:12] = struct.pack("<I", FORMAT_VERSION + 1)
    with pytest.raises(FailedPrecondition):
        Baseline.from_bytes(bytes(blob))


def test_data_hash_depends_on_content_only():
    rng = np.random.default_rng(1)
    batch = mixed_batch(rng, 100)
    h = reference_hash(MIXED_SCHEMA, batch)
    assert h == reference_hash(MIXED_SCHEMA, dataclasses.replace(batch, numeric=batch.numeric.copy()))
    changed = batch.numeric.copy()
    changed[5, 0] += 1
    assert h != reference_hash(MIXED_SCHEMA, dataclasses.replace(batch, numeric=changed))


def test_bad_reference():
    s = Schema(numeric=(NumericFeature("x"),))
    with pytest.raises(FailedPrecondition):
        build_baseline(s, Batch(numeric=np.zeros((5, 1))))
    with pytest.raises(InvalidArgument) as e:
        build_baseline(s, Batch(numeric=np.zeros((50, 2))))
    assert e.value.violations[0].field == "reference.numeric.shape"


def test_all_nan_and_constant_columns_are_sane():
    s = Schema(numeric=(NumericFeature("nan"), NumericFeature("const")))
    x = np.stack([np.full(200, np.nan), np.full(200, 7.0)], 1)
    b = build_baseline(s, Batch(numeric=x), config=BaselineConfig(calibration_rounds=20))
    assert b.numeric.nan_count.tolist() == [200, 0]
    assert b.numeric.counts[1].sum() == 200 and b.numeric.n_edges[1] == 1


@pytest.mark.parametrize("threads", [1, 3])
def test_calibration_threads_do_not_change_the_baseline(threads):
    """The per-shard KS / W1 null values run on a thread pool; shard order is kept, so the
    thresholds (and the whole blob) are the same bytes for any number of threads."""
    cfg = BaselineConfig(calibration_rounds=30, mmd_calibration_rounds=4, reservoir_size=128,
                         embedding_sample_size=64, mmd_calibration_max_half=32)
    ref = mixed_batch(np.random.default_rng(5), 3_000)
    at = datetime(2026, 1, 2, tzinfo=timezone.utc)
    two = build_baseline(MIXED_SCHEMA, ref, config=cfg, created_at=at, threads=2)
    other = build_baseline(MIXED_SCHEMA, ref, config=cfg, created_at=at, threads=threads)
    for key, t in two.thresholds.items():  # the first difference by name, then every byte
        assert np.array_equal(t.warning, other.thresholds[key].warning, equal_nan=True), key
        assert np.array_equal(t.critical, other.thresholds[key].critical, equal_nan=True), key
    assert other.to_bytes() == two.to_bytes()


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2", True])
def test_calibration_threads_must_be_a_positive_integer(threads):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        build_baseline(MIXED_SCHEMA, mixed_batch(np.random.default_rng(5), 100), threads=threads)
