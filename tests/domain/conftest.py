"""Shared seeded data for the engine tests."""

import numpy as np
import pytest

from driftd.server.domain.baseline import BaselineConfig, build_baseline
from driftd.server.domain.batch import Batch
from driftd.server.domain.schema import (CategoricalFeature, EmbeddingBlock, NumericFeature, Schema, ScoreKind,
                                          ScoreOutput)

MIXED_SCHEMA = Schema(
    numeric=(NumericFeature("age", valid_min=0, valid_max=130), NumericFeature("amount"), NumericFeature("tied")),
    categorical=(CategoricalFeature("country", ("de", "fr", "us")), CategoricalFeature("device")),
    embeddings=(EmbeddingBlock("text", 8),),
    scores=(ScoreOutput("p_fraud"), ScoreOutput("ltv", ScoreKind.REGRESSION)),
)


def mixed_batch(rng: np.random.Generator, n: int, *, shift: float = 0.0, ids_from: int = 0) -> Batch:
    age = rng.normal(40 + shift, 12, size=n)
    amount = rng.standard_t(3, size=n) * 50 + 100  # heavy tails
    tied = rng.integers(0, 4, size=n).astype(np.float64)
    num = np.stack([age, amount, tied], 1).astype(np.float32)
    num[rng.uniform(size=n) < 0.01, 1] = np.nan
    cat = np.stack([rng.choice(3, size=n, p=[0.5, 0.3, 0.2]), rng.integers(0, 6, size=n)], 1)
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    p = 1 / (1 + np.exp(-rng.normal(-1, 1, size=n)))
    scores = np.stack([p, rng.gamma(2.0, 10.0, size=n)], 1).astype(np.float32)
    return Batch(numeric=num, categorical=cat, embeddings={"text": emb}, scores=scores,
                 latency_ms=rng.lognormal(3, 0.5, size=n), status_codes=np.where(rng.uniform(size=n) < 0.02, 503, 200),
                 request_ids=[f"req-{i}" for i in range(ids_from, ids_from + n)])


@pytest.fixture(scope="session")
def mixed_baseline():
    rng = np.random.default_rng(11)
    cfg = BaselineConfig(calibration_rounds=100, mmd_calibration_rounds=20, reservoir_size=512,
                         embedding_sample_size=256, mmd_calibration_max_half=128)
    return build_baseline(MIXED_SCHEMA, mixed_batch(rng, 20_000), model_id="fraud", git_commit="abc123",
                          source="unit-test", config=cfg)
