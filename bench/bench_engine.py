"""Benchmark: the drift engine vs scipy per-feature loops vs Evidently's data-drift report.

Workload: a reference of R rows and a current batch of N rows, F float32 numeric features (a quarter
heavy-tailed Student-t(3), the rest normal; one feature shifted by 0.25 sd in the current batch).

* engine   — `build_baseline` on the reference (reported on its own row), then one `DriftEngine`
             window updated with the current rows in ingest-sized batches (65,536 rows; timed on a
             second pass, the first pass — which compiles the kernels for these shapes — is in the
             notes) and one
             `evaluate()` (PSI / KL / JS on the baseline's deciles, KS / W1 on the reservoirs, data
             quality, family-wise verdict); the compared time is update + evaluate.
* scipy    — what one writes without driftd, per feature in a Python loop on the full data:
             decile edges (numpy.quantile) + numpy.histogram for PSI / JS, scipy.stats.ks_2samp
             (method='asymp'), scipy.stats.wasserstein_distance.
* evidently — `Report([DataDriftPreset()]).run(current, reference)` on the same data as pandas
             frames, run in a separate virtual environment (never a project dependency):
             pass ``--evidently-python /path/to/venv/bin/python``.

Ratios are other / engine (how many times slower than the engine). Results go to
bench/results/engine_cpu.csv (one row per implementation and task).

    python bench/bench_engine.py [--rows 1000000] [--reference-rows 200000] [--features 32]
                                 [--evidently-python /tmp/bench-venv/bin/python]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BATCH = 65_536

EVIDENTLY_SCRIPT = r"""
import json, sys, time, warnings
import numpy as np, pandas as pd
warnings.filterwarnings("ignore")
ref = np.load(sys.argv[1]); cur = np.load(sys.argv[2])
cols = [f"x{i}" for i in range(ref.shape[1])]
rdf, cdf = pd.DataFrame(ref, columns=cols), pd.DataFrame(cur, columns=cols)
import evidently
from evidently import Report
from evidently.presets import DataDriftPreset
t = time.perf_counter()
snap = Report([DataDriftPreset()]).run(current_data=cdf, reference_data=rdf)
d = snap.dict()
el = time.perf_counter() - t
drifted = None
for m in d.get("metrics", []):
    if "DriftedColumnsCount" in str(m.get("metric_name", "")):
        drifted = (m.get("value") or {}).get("count")
print(json.dumps({"seconds": el, "version": evidently.__version__, "drifted": drifted}, default=str))
"""


def make_data(rows: int, ref_rows: int, features: int, seed: int = 0):
    rng = np.random.default_rng(seed)

    def draw(n):
        x = rng.standard_normal((n, features), dtype=np.float32)
        q = features // 4
        x[:, :q] = rng.standard_t(3, size=(n, q)).astype(np.float32)
        return x

    ref = draw(ref_rows)
    cur = draw(rows)
    cur[:, features - 1] += 0.25
    return ref, cur


def bench_engine(ref, cur):
    from driftd.server.domain.baseline import build_baseline
    from driftd.server.domain.batch import Batch
    from driftd.server.domain.engine import DriftEngine
    from driftd.server.domain.schema import NumericFeature, Schema

    schema = Schema(numeric=tuple(NumericFeature(f"x{i}") for i in range(ref.shape[1])))
    t = time.perf_counter()
    baseline = build_baseline(schema, Batch(numeric=ref))
    build_s = time.perf_counter() - t
    def feed():
        eng = DriftEngine(baseline, pane_seconds=3600, pane_count=1)
        t0 = time.perf_counter()
        for start in range(0, len(cur), BATCH):
            eng.update(Batch(numeric=cur[start:start + BATCH]), now=10.0)
        return eng, time.perf_counter() - t0

    _, cold_s = feed()  # first pass in the process: includes compiling the kernels for these shapes
    engine, update_s = feed()
    t = time.perf_counter()
    snap = engine.evaluate(now=11.0)
    eval_s = time.perf_counter() - t
    return {"build_s": build_s, "update_s": update_s, "cold_update_s": cold_s, "evaluate_s": eval_s, "drifted": snap.drifted_features,
            "verdict": snap.verdict.value, "rows_counted": snap.row_count}


def bench_scipy(ref, cur):
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    t = time.perf_counter()
    drifted = 0
    for f in range(ref.shape[1]):
        r, c = ref[:, f].astype(np.float64), cur[:, f].astype(np.float64)
        edges = np.unique(np.quantile(r, np.arange(1, 10) / 10))
        bins = np.concatenate([[-np.inf], edges, [np.inf]])
        p = np.histogram(r, bins)[0] / len(r) + 1e-4
        q = np.histogram(c, bins)[0] / len(c) + 1e-4
        p, q = p / p.sum(), q / q.sum()
        psi = float(np.sum((q - p) * np.log(q / p)))
        _js = jensenshannon(p, q, base=2) ** 2
        ks = stats.ks_2samp(r, c, method="asymp")
        _w1 = stats.wasserstein_distance(r, c)
        drifted += psi > 0.1 or ks.pvalue < 0.05
    return {"seconds": time.perf_counter() - t, "drifted": drifted}


def bench_evidently(python: str, ref, cur, timeout: int):
    with tempfile.TemporaryDirectory() as d:
        np.save(f"{d}/ref.npy", ref)
        np.save(f"{d}/cur.npy", cur)
        Path(f"{d}/ev.py").write_text(EVIDENTLY_SCRIPT)
        p = subprocess.run([python, f"{d}/ev.py", f"{d}/ref.npy", f"{d}/cur.npy"], capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}")
        return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reference-rows", type=int, default=200_000)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--evidently-python", default=None)
    ap.add_argument("--evidently-timeout", type=int, default=1800)
    ap.add_argument("--out", default=str(HERE / "results" / "engine_cpu.csv"))
    args = ap.parse_args()

    ref, cur = make_data(args.rows, args.reference_rows, args.features)
    device = f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads " \
             f"{__import__('torch').get_num_threads()}"
    from driftd.server.domain import kernel_bridge

    eng = bench_engine(ref, cur)
    engine_s = eng["update_s"] + eng["evaluate_s"]
    print(f"engine: build {eng['build_s']:.2f} s, update {eng['update_s']:.2f} s (first pass {eng['cold_update_s']:.2f} s), evaluate {eng['evaluate_s']:.3f} s, "
          f"drifted {eng['drifted']}, verdict {eng['verdict']}, kernels={'driftd.kernels' if kernel_bridge.KERNELS_AVAILABLE else 'fallback'}")
    rows = [
        ("baseline_build", "engine", args.reference_rows, eng["build_s"], "", "deciles, reservoirs, 200 shard rounds of calibration"),
        ("update+evaluate", "engine", args.rows, engine_s, 1.0,
         f"update {eng['update_s']:.3f} s (first pass in the process {eng['cold_update_s']:.3f} s) + evaluate "
         f"{eng['evaluate_s']:.3f} s; verdict {eng['verdict']}; "
         f"{eng['drifted']} columns over their own thresholds; "
         f"histogram via {'driftd.kernels' if kernel_bridge.KERNELS_AVAILABLE else 'domain fallback'}"),
    ]
    sp = bench_scipy(ref, cur)
    print(f"scipy loop: {sp['seconds']:.2f} s ({sp['seconds'] / engine_s:.1f}x the engine), drifted {sp['drifted']}")
    rows.append(("update+evaluate", "scipy_loop", args.rows, sp["seconds"], sp["seconds"] / engine_s,
                 f"PSI+JS+KS(asymp)+W1 per feature on full data; drifted {sp['drifted']}"))
    if args.evidently_python:
        try:
            ev = bench_evidently(args.evidently_python, ref, cur, args.evidently_timeout)
            print(f"evidently {ev['version']}: {ev['seconds']:.2f} s ({ev['seconds'] / engine_s:.1f}x the engine)")
            rows.append(("update+evaluate", f"evidently_{ev['version']}", args.rows, ev["seconds"], ev["seconds"] / engine_s,
                         f"Report([DataDriftPreset()]).run; drifted columns {ev['drifted']}"))
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            print(f"evidently: not measured ({exc})")
            rows.append(("update+evaluate", "evidently", args.rows, "", "", f"not measured: {exc}"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", "implementation", "rows", "features", "seconds", "ratio_vs_engine", "device", "notes"])
        for task, impl, n, s, ratio, note in rows:
            w.writerow([task, impl, n, args.features, f"{s:.4f}" if s != "" else "", f"{ratio:.2f}" if ratio != "" else "",
                        device, note])
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
