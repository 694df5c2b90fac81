"""`driftd check`: formats, JSON document, exit codes, and one-line errors on bad input."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from driftd.server.check_cli import app

runner = CliRunner()
N = 3000


def _frame(rng, shift=0.0):
    return pd.DataFrame({
        "age": rng.normal(40 + shift, 10, N), "amount": rng.lognormal(3, 1, N),
        "country": rng.choice(["de", "fr", "us"], N), "device": rng.integers(0, 4, N),
        "p_score": rng.uniform(0, 1, N),
    })


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("check")
    rng = np.random.default_rng(0)
    _frame(rng).to_csv(d / "ref.csv", index=False)
    _frame(rng).to_parquet(d / "same.parquet")
    _frame(rng, shift=5).to_csv(d / "drift.csv", index=False)
    np.savez(d / "ref.npz", a=rng.normal(size=N), c=rng.integers(0, 3, N), emb=rng.normal(size=(N, 8)).astype(np.float32))
    np.savez(d / "cur.npz", a=rng.normal(size=N), c=rng.integers(0, 3, N),
             emb=(rng.normal(size=(N, 8)) + 0.5).astype(np.float32))
    return d


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_same_distribution_passes(files):
    r = _run("--reference", files / "ref.csv", "--current", files / "same.parquet", "--json", "--fail-on", "warning")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "ok" and doc["drifted_features"] == 0
    assert set(doc["features"]) == {"age", "amount", "country", "device"} and set(doc["scores"]) == {"p_score"}
    age = doc["features"]["age"]
    for key in ("psi", "kl", "js", "ks_stat", "ks_pvalue", "w1", "nan_rate", "out_of_range_rate", "chi2", "chi2_pvalue", "verdict"):
        assert key in age
    assert age["chi2"] is None and doc["features"]["country"]["chi2_pvalue"] is not None
    assert age["thresholds"]["psi"]["warning"] > 0 and age["sample_size"] == N
    assert doc["rows"] == {"reference": N, "current": N}


def test_drift_fails_at_the_requested_level(files):
    r = _run("--reference", files / "ref.csv", "--current", files / "drift.csv", "--json", "--fail-on", "critical")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "critical" and doc["features"]["age"]["verdict"] == "critical"
    assert doc["features"]["age"]["psi"] > 0.2 and doc["drifted_features"] >= 1
    assert _run("--reference", files / "ref.csv", "--current", files / "drift.csv", "--json").exit_code == 0


def test_table_output(files):
    r = _run("--reference", files / "ref.csv", "--current", files / "drift.csv")
    assert r.exit_code == 0
    assert "age" in r.stdout and "critical" in r.stdout and "verdict" in r.stdout
    assert "\x1b[" not in r.stderr  # no progress bar when not a TTY


def test_npz_with_embeddings(files):
    r = _run("--reference", files / "ref.npz", "--current", files / "cur.npz", "--json", "--permutations", "50",
             "--fail-on", "warning")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["features"]["c"]["kind"] == "categorical" and doc["features"]["a"]["kind"] == "numeric"
    emb = doc["embeddings"]["emb"]
    assert emb["verdict"] == "critical" and emb["p_value"] == pytest.approx(1 / 51) and len(emb["bandwidths"]) == 5
    assert emb["mmd2_unbiased"] > 0 and emb["centroid_cosine"] is not None


def test_schema_file_selects_columns_and_ranges(files, tmp_path):
    schema = {"numeric": [{"name": "age", "valid_min": 0, "valid_max": 45}],
              "categorical": [{"name": "country", "categories": ["de", "fr"]}]}
    (tmp_path / "s.json").write_text(json.dumps(schema))
    r = _run("--reference", files / "ref.csv", "--current", files / "same.parquet", "--schema", tmp_path / "s.json", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc["features"]) == {"age", "country"} and doc["scores"] == {}
    assert doc["features"]["age"]["out_of_range_rate"] > 0.2  # the range says ≤ 45
    assert doc["features"]["country"]["unseen_rate"] == pytest.approx(0.0)  # "us" is in the reference's "other" bin


def _bad(r, fragment):
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("driftd check: error:"), r.stderr
    assert fragment in lines[0]
    assert "Traceback" not in r.stderr + r.stdout


def test_bad_inputs_exit_2_with_one_line(files, tmp_path):
    ref = files / "ref.csv"
    _bad(_run("--reference", tmp_path / "nope.csv", "--current", ref), "not found")
    (tmp_path / "empty.csv").write_text("")
    _bad(_run("--reference", ref, "--current", tmp_path / "empty.csv"), "empty")
    (tmp_path / "header.csv").write_text("age,amount\n")
    _bad(_run("--reference", ref, "--current", tmp_path / "header.csv"), "empty")
    df = _frame(np.random.default_rng(1)).drop(columns=["amount"])
    df.to_csv(tmp_path / "fewer.csv", index=False)
    _bad(_run("--reference", ref, "--current", tmp_path / "fewer.csv"), "columns differ")
    df = _frame(np.random.default_rng(1))
    df["age"] = df["age"].astype(str)
    df.loc[3, "age"] = "forty"
    df.to_csv(tmp_path / "text.csv", index=False)
    _bad(_run("--reference", ref, "--current", tmp_path / "text.csv"), "'forty'")
    df = _frame(np.random.default_rng(1))
    df["device"] = df["device"] + 0.5
    df.to_csv(tmp_path / "frac.csv", index=False)
    _bad(_run("--reference", ref, "--current", tmp_path / "frac.csv"), "fractional")
    (tmp_path / "x.txt").write_text("a\n1\n")
    _bad(_run("--reference", ref, "--current", tmp_path / "x.txt"), "unsupported format")
    (tmp_path / "s.json").write_text("{not json")
    _bad(_run("--reference", ref, "--current", ref, "--schema", tmp_path / "s.json"), "not valid JSON")
    (tmp_path / "s2.json").write_text(json.dumps({"numeric": [{"name": "missing_col"}]}))
    _bad(_run("--reference", ref, "--current", ref, "--schema", tmp_path / "s2.json"), "missing_col")
    _bad(_run("--reference", ref, "--current", ref, "--fail-on", "sometimes"), "--fail-on")
    _bad(_run("--reference", ref, "--current", ref, "--threads", "0"), "must be an integer in [1, 64], got '0'")
    _bad(_run("--reference", ref, "--current", ref, "--threads", "two"), "must be an integer in [1, 64], got 'two'")
    np.savez(tmp_path / "dim.npz", a=np.zeros(N), c=np.zeros(N, dtype=np.int64), emb=np.zeros((N, 3), np.float32))
    _bad(_run("--reference", files / "ref.npz", "--current", tmp_path / "dim.npz"), "dim 3")
    pd.DataFrame({"age": [1.0, 2.0], "amount": [1.0, 2.0], "country": ["de", "fr"], "device": [1, 2],
                  "p_score": [0.1, 0.2]}).to_csv(tmp_path / "tiny.csv", index=False)
    _bad(_run("--reference", tmp_path / "tiny.csv", "--current", ref), "at least 20")


def test_real_process_exit_code_and_stderr(files, tmp_path):
    p = subprocess.run([sys.executable, "-m", "driftd.server.check_cli", "--reference", str(tmp_path / "missing.parquet"),
                        "--current", str(files / "ref.csv")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().count("\n") == 0 and "not found" in p.stderr


def test_small_check_runs_the_kernels_eagerly_with_the_same_report(files, monkeypatch):
    """Compiling the CPU kernels costs more than it saves on a short check: below
    COMPILE_MIN_VALUES no compiled kernel is used, and the report equals the one with compiled
    kernels (DRIFTD_KERNELS_COMPILE=1)."""
    from driftd.kernels.reference import column_summary as summary_ref
    from driftd.kernels.reference import histogram as hist_ref

    args = ("--reference", files / "ref.csv", "--current", files / "drift.csv", "--json")
    monkeypatch.setenv("DRIFTD_KERNELS_COMPILE", "1")
    compiled = _run(*args)
    assert compiled.exit_code == 0, compiled.stderr
    monkeypatch.delenv("DRIFTD_KERNELS_COMPILE")

    asked = []
    for module in (hist_ref, summary_ref):
        monkeypatch.setattr(module, "_get_compiled", lambda real=module._get_compiled: asked.append(real) or real())
    eager = _run(*args)
    assert eager.exit_code == 0, eager.stderr
    assert asked == []  # no compiled kernel was even asked for
    a, b = json.loads(compiled.stdout), json.loads(eager.stdout)
    a.pop("baseline"), b.pop("baseline")  # created_at differs
    assert a == b
    assert hist_ref.compile_enabled()  # the eager scope ended with the check


def test_threads_reach_the_build_and_do_not_change_the_report(files, monkeypatch):
    """`--threads` (or DRIFTD_CALIBRATION_THREADS) only spreads the calibration over threads; a bad
    environment value is the same one-line error as a bad flag."""
    from driftd.server.domain import baseline as baseline_module

    used = []
    real = baseline_module.build_baseline
    monkeypatch.setattr(baseline_module, "build_baseline", lambda *a, **kw: used.append(kw["threads"]) or real(*a, **kw))
    args = ("--reference", files / "ref.csv", "--current", files / "drift.csv", "--json")
    one = _run(*args, "--threads", "1")
    monkeypatch.setenv("DRIFTD_CALIBRATION_THREADS", "3")
    three = _run(*args)
    assert one.exit_code == three.exit_code == 0, (one.stderr, three.stderr)
    assert used == [1, 3]
    a, b = json.loads(one.stdout), json.loads(three.stdout)
    a["baseline"].pop("created_at"), b["baseline"].pop("created_at")
    assert a == b
    assert _run(*args, "--threads", "2").exit_code == 0 and used[-1] == 2  # the flag beats the environment
    monkeypatch.setenv("DRIFTD_CALIBRATION_THREADS", "abc")
    _bad(_run(*args), "DRIFTD_CALIBRATION_THREADS) must be an integer in [1, 64], got 'abc'")


def test_input_errors_come_before_the_heavy_imports(files, tmp_path):
    """A wrong path or a file that cannot be read is reported before torch / scipy are imported
    (~3 s): the check reads its files first."""
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom driftd.server.check_cli import app\n"
            f"r = CliRunner().invoke(app, ['--reference', {str(tmp_path / 'missing.parquet')!r}, '--current', {str(files / 'ref.csv')!r}])\n"
            "print(r.exit_code, 'torch' in sys.modules, 'scipy.stats' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.stdout.split() == ["2", "False", "False"], p.stdout + p.stderr
