"""bench/bench_check.py stays runnable: seeded files, one real `driftd check` process measured,
and a report digest that ignores only the clock reading and the reference-bytes hash."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_check.py"
spec = importlib.util.spec_from_file_location("bench_check", BENCH)
bench_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_check)


def test_digest_ignores_created_at_and_data_hash_only():
    report = {"verdict": "ok", "baseline": {"created_at": "t1", "data_hash": "h1", "rows": 3}}
    same = {"verdict": "ok", "baseline": {"created_at": "t2", "data_hash": "h2", "rows": 3}}
    other = {"verdict": "ok", "baseline": {"created_at": "t1", "data_hash": "h1", "rows": 4}}
    d = bench_check.report_digest
    assert d(json.dumps(report)) == d(json.dumps(same)) != d(json.dumps(other))
    assert d("not json") == "unparsable"


def test_files_are_seeded_and_kept(tmp_path):
    ref, cur = bench_check.write_files(tmp_path, 300, 120, 4)
    first = ref.read_bytes(), cur.read_bytes()
    shutil.rmtree(tmp_path)
    ref, cur = bench_check.write_files(tmp_path, 300, 120, 4)
    assert (ref.read_bytes(), cur.read_bytes()) == first


@pytest.mark.skipif(bench_check.driftd_executable() is None, reason="the driftd entry point is not installed")
def test_one_check_run_is_measured(tmp_path):
    ref, cur = bench_check.write_files(tmp_path, 300, 120, 4)
    wall, rss_gb, code, digest = bench_check.run_check(bench_check.driftd_executable(), ref, cur, tmp_path)
    assert code in (0, 1), digest  # on failure the digest slot holds stderr's tail
    assert wall > 0 and 0.05 < rss_gb < 8 and len(digest) == 16
    # the same inputs give the same report (the digest leaves out only the clock and the byte hash)
    assert bench_check.run_check(bench_check.driftd_executable(), ref, cur, tmp_path)[3] == digest
