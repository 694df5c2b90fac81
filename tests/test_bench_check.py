"""bench/bench_check.py stays runnable: seeded files, one real `driftd check` process measured,
and a report digest that ignores only the clock reading."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_check.py"
spec = importlib.util.spec_from_file_location("bench_check", BENCH)
bench_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_check)


def test_digest_ignores_only_the_clock():
    report = {"verdict": "ok", "baseline": {"created_at": "t1", "data_hash": "h1", "rows": 3}}
    same = {"verdict": "ok", "baseline": {"created_at": "t2", "data_hash": "h1", "rows": 3}}
    other_rows = {"verdict": "ok", "baseline": {"created_at": "t1", "data_hash": "h1", "rows": 4}}
    other_hash = {"verdict": "ok", "baseline": {"created_at": "t1", "data_hash": "h2", "rows": 3}}
    d = bench_check.report_digest
    assert d(json.dumps(report)) == d(json.dumps(same))
    assert len({d(json.dumps(report)), d(json.dumps(other_rows)), d(json.dumps(other_hash))}) == 3
    assert d("not json") == "unparsable"


def test_files_are_seeded_each_on_its_own(tmp_path):
    ref, cur = bench_check.write_files(tmp_path, 300, 120, 4)
    first = ref.read_bytes(), cur.read_bytes()
    shutil.rmtree(tmp_path)
    ref, cur = bench_check.write_files(tmp_path, 300, 120, 4)
    assert (ref.read_bytes(), cur.read_bytes()) == first
    # a file's bytes depend on its own name only: regenerating one alone gives the same file
    cur.unlink()
    assert bench_check.write_files(tmp_path, 300, 120, 4)[1].read_bytes() == first[1]
    ref.unlink()
    assert bench_check.write_files(tmp_path, 300, 120, 4)[0].read_bytes() == first[0]
    import pandas as pd

    r, c = pd.read_parquet(ref), pd.read_parquet(cur)
    assert not np.array_equal(r["x1"].to_numpy()[:120], c["x1"].to_numpy())  # not the reference's rows


@pytest.mark.skipif(bench_check.driftd_executable() is None, reason="the driftd entry point is not installed")
def test_one_check_run_is_measured(tmp_path):
    ref, cur = bench_check.write_files(tmp_path, 300, 120, 4)
    wall, rss_gb, code, digest = bench_check.run_check(bench_check.driftd_executable(), ref, cur, tmp_path)
    assert code in (0, 1), digest  # on failure the digest slot holds stderr's tail
    assert wall > 0 and 0.05 < rss_gb < 8 and len(digest) == 16
    # the same inputs give the same report (the digest leaves out only the clock and the byte hash)
    assert bench_check.run_check(bench_check.driftd_executable(), ref, cur, tmp_path)[3] == digest
