"""Engine-thread cost of one window update per batch size, without gRPC or an event loop.

    python bench/bench_engine_update.py [--seconds 5] [--rows 256 1024 4096 16384] [--csv PATH]

`DriftEngine.update` (what a monitor's runtime runs on its engine thread per batch or coalesced
batches: validation, the fused column summary kernel, moments, reservoir, counters) on 32 float32
numeric columns against a baseline of 20,000 rows, one torch thread (the server's default
`torch_threads`), after `warm_up`. Reports µs per call and rows/s; the fixed cost per call is what
small batches pay. The same batch is fed repeatedly into one window (the time stays fixed, so every
call lands in one pane).

Also: the longest time another Python thread (standing in for the server's event loop) waits for
the GIL while the engine updates with one coalesced batch of `--stall-rows` rows (262,144 = the
runtime's `max_coalesce_rows`). The compiled CPU kernel holds the GIL while it runs, so this is
bounded by the rows per kernel call; with nothing else running the waits are ~the interpreter's
5 ms switch interval.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import torch

from driftd.server.domain.baseline import BaselineConfig, build_baseline
from driftd.server.domain.batch import Batch
from driftd.server.domain.engine import DriftEngine
from driftd.server.domain.schema import NumericFeature, Schema

FEATURES = 32
RESULTS = Path(__file__).resolve().parent / "results" / "engine_update_cpu.csv"


def engine() -> DriftEngine:
    rng = np.random.default_rng(0)
    schema = Schema(numeric=tuple(NumericFeature(f"f{k}") for k in range(FEATURES)))
    reference = Batch(numeric=rng.normal(size=(20_000, FEATURES)).astype(np.float32))
    e = DriftEngine(build_baseline(schema, reference, config=BaselineConfig(calibration_rounds=10)))
    e.warm_up()
    return e


def us_per_call(e: DriftEngine, rows: int, seconds: float) -> float:
    block = np.random.default_rng(rows).normal(size=(rows, FEATURES)).astype(np.float32)
    for _ in range(20):
        e.update(Batch(numeric=block), now=1000.0)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        e.update(Batch(numeric=block), now=1000.0)
        calls += 1
    return elapsed / calls * 1e6


def longest_gil_wait_ms(e: DriftEngine, rows: int, repeats: int = 5) -> float:
    """Longest gap between two iterations of a busy Python thread while `e` updates with `rows` rows."""
    block = np.random.default_rng(7).normal(size=(rows, FEATURES)).astype(np.float32)
    e.update(Batch(numeric=block), now=1000.0)  # this size's first call out of the way
    longest = 0.0  # written by the watcher when it stops, read after join
    measuring, stop = threading.Event(), threading.Event()

    def watch() -> None:
        nonlocal longest
        last, worst = time.perf_counter(), 0.0
        while not stop.is_set():
            now = time.perf_counter()
            if measuring.is_set():
                worst = max(worst, now - last)
            last = now
        longest = worst

    t = threading.Thread(target=watch)
    t.start()
    time.sleep(0.05)  # the thread is running before anything is measured
    measuring.set()
    for _ in range(repeats):
        e.update(Batch(numeric=block), now=1000.0)
    stop.set()
    t.join()
    return longest * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="measuring time per batch size")
    ap.add_argument("--rows", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    ap.add_argument("--stall-rows", type=int, default=262_144)
    ap.add_argument("--csv", type=Path, default=RESULTS)
    ns = ap.parse_args()
    torch.set_num_threads(1)
    e = engine()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows_out = []
    print(f"{'batch rows':>10s} {'us / call':>10s} {'rows/s':>12s}")
    for rows in ns.rows:
        us = us_per_call(e, rows, ns.seconds)
        rows_out.append({"device": "cpu (2-core dev machine)", "commit": rev, "batch_rows": rows, "features": FEATURES,
                         "us_per_call": round(us, 1), "rows_per_s": round(rows / us * 1e6)})
        print(f"{rows:10d} {us:10.1f} {rows / us * 1e6:12,.0f}")
    wait_ms = longest_gil_wait_ms(e, ns.stall_rows)
    print(f"longest GIL wait of another thread during {ns.stall_rows:,}-row updates: {wait_ms:.1f} ms")
    for r in rows_out:
        r["gil_wait_rows"], r["longest_gil_wait_ms"] = ns.stall_rows, round(wait_ms, 1)
    ns.csv.parent.mkdir(parents=True, exist_ok=True)
    with ns.csv.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows_out[0]))
        w.writeheader()
        w.writerows(rows_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
