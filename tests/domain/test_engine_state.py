"""Engine state save / restore: a restored engine evaluates and continues exactly like the original."""

import numpy as np
import pytest

from driftd.server.domain.baseline import BaselineConfig, build_baseline
from driftd.server.domain.batch import Batch
from driftd.server.domain.engine import DriftEngine
from driftd.server.domain.engine_state import restore_engine, save_engine
from driftd.server.domain.errors import FailedPrecondition, InvalidArgument
from driftd.server.domain.schema import NumericFeature, Schema

from .conftest import mixed_batch


def test_round_trip_then_continue(mixed_baseline):
    rng = np.random.default_rng(12)
    a = DriftEngine(mixed_baseline, pane_seconds=10, pane_count=3, mmd_permutations=20)
    for i in range(4):
        b = mixed_batch(rng, 300, ids_from=300 * i)
        a.update(b, now=10.0 * i + 1)
        a.write_labels(b.request_ids[:100], (b.scores[:100, 0] > 0.4).astype(int), now=10.0 * i + 2)
    blob = save_engine(a)
    b_eng = restore_engine(mixed_baseline, blob)
    assert b_eng.evaluate(now=35.0).to_dict() == a.evaluate(now=35.0).to_dict()
    assert b_eng.rows_accepted == a.rows_accepted == 1200
    more = mixed_batch(rng, 500, ids_from=5000)
    for eng in (a, b_eng):
        eng.update(more, now=36.0)
        r = eng.write_labels(more.request_ids[:50] + ["req-250"], np.ones(51), now=37.0)
        assert (r.matched, r.unmatched) == (51, 0)  # req-250 still waits in the restored pending store
    assert b_eng.evaluate(now=38.0).to_dict() == a.evaluate(now=38.0).to_dict()
    assert save_engine(b_eng) == save_engine(a)


def test_restore_refuses_another_baseline_and_garbage(mixed_baseline):
    other = build_baseline(Schema(numeric=(NumericFeature("x"),)), Batch(numeric=np.arange(100.0)[:, None]),
                           config=BaselineConfig(calibration_rounds=10))
    blob = save_engine(DriftEngine(mixed_baseline))
    with pytest.raises(FailedPrecondition):
        restore_engine(other, blob)
    with pytest.raises(InvalidArgument):
        restore_engine(mixed_baseline, b"garbage")
