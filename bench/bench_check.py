"""Benchmark: `driftd check` end to end, as a CI gate runs it — wall time and peak memory.

Writes two seeded float32 parquet files (a reference of R rows and a current file of N rows, F
columns: a quarter heavy-tailed Student-t(3) with a few NaN, the rest normal, one column shifted by
0.25 sd in the current file), then runs ``driftd check --reference R --current C --json`` as a
separate process ``--repeat`` times. Each run reports the whole process's wall time and its peak
resident memory (``ru_maxrss`` of that child alone, from ``os.wait4``) and a digest of the report
without the baseline's ``created_at``, so two builds' reports can
be compared for equality.

To compare two builds, run it in each checkout (or with the change stashed) on the same files
(``--data-dir`` keeps them) and alternate the runs; results go to bench/results/check_cpu.csv.

    python bench/bench_check.py [--reference-rows 2000000] [--rows 2000000] [--features 32]
                                [--repeat 2] [--data-dir /tmp/driftd-check-bench] [--label HEAD]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VOLATILE = {"created_at"}
FIELDS = ["label", "reference_rows", "rows", "features", "run", "wall_s", "max_rss_gib", "exit_code",
          "report_digest", "machine"]


def write_files(data_dir: Path, reference_rows: int, rows: int, features: int, seed: int = 7) -> tuple[Path, Path]:
    """The two parquet files, written once per shape and reused. Each file has its own generator
    (seeded by `seed` and which file it is), so a file's bytes depend only on its own name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data_dir.mkdir(parents=True, exist_ok=True)
    ref_path = data_dir / f"ref_{reference_rows}x{features}.parquet"
    cur_path = data_dir / f"cur_{rows}x{features}.parquet"
    heavy = features // 4
    for which, (path, n, shift) in enumerate(((ref_path, reference_rows, 0.0), (cur_path, rows, 0.25))):
        if path.exists():
            continue
        rng = np.random.default_rng([seed, which])
        x = rng.standard_normal((n, features), dtype=np.float32)
        x[:, :heavy] = rng.standard_t(3, size=(n, heavy)).astype(np.float32)
        x[:, :heavy][rng.random((n, heavy)) < 0.001] = np.nan  # a view: sets NaN in x
        x[:, features - 1] += np.float32(shift)
        table = pa.table({f"x{i}": x[:, i] for i in range(features)})
        pq.write_table(table, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
    return ref_path, cur_path


def report_digest(stdout: str) -> str:
    """sha256 of the JSON report without the baseline's `created_at` (a clock reading)."""
    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k not in VOLATILE}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        return "unparsable"
    return hashlib.sha256(json.dumps(strip(report), sort_keys=True).encode()).hexdigest()[:16]


def run_check(driftd: str, ref: Path, cur: Path, scratch: Path) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS GiB, exit code, report digest) of one `driftd check` process."""
    out_path, err_path = scratch / "check.out", scratch / "check.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([driftd, "check", "--reference", str(ref), "--current", str(cur), "--json"],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        # wait4 reaps this child and gives its own rusage (RUSAGE_CHILDREN would be a max over all)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C: do not leave a multi-GB check running
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - t0
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(), err_path.read_text()
    detail = report_digest(stdout) if code in (0, 1) else stderr.strip()[-200:]
    return wall, usage.ru_maxrss / 1024 ** 2, code, detail  # ru_maxrss is KiB on Linux: GiB


def driftd_executable() -> str | None:
    """The `driftd` entry point of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "driftd"
    return str(beside) if beside.exists() else shutil.which("driftd")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference-rows", type=int, default=2_000_000)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/driftd-check-bench"))
    ap.add_argument("--label", default="", help="what build this is (e.g. a commit); default: git HEAD")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "check_cpu.csv")
    args = ap.parse_args()

    driftd = driftd_executable() or sys.exit("no driftd entry point beside this python nor on PATH: use the project's venv")
    label = args.label or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                         text=True, cwd=HERE).stdout.strip()
    ref, cur = write_files(args.data_dir, args.reference_rows, args.rows, args.features)
    machine = f"{platform.machine()} {os.cpu_count()} cpus"
    new_file = not args.out.exists()
    with args.out.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        for i in range(args.repeat):
            wall, rss, code, digest = run_check(driftd, ref, cur, args.data_dir)
            row = dict(label=label, reference_rows=args.reference_rows, rows=args.rows, features=args.features,
                       run=i + 1, wall_s=f"{wall:.2f}", max_rss_gib=f"{rss:.2f}", exit_code=code,
                       report_digest=digest, machine=machine)
            writer.writerow(row)
            fh.flush()
            print(f"{label} run {i + 1}: {wall:.2f} s, max RSS {rss:.2f} GiB, exit {code}, report {digest}", flush=True)


if __name__ == "__main__":
    main()
