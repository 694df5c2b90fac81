"""Variant and block-size sweep for the Triton kernels on a GPU, against the current defaults, on the
same data in one process. Prints one line per run, a table and the best configuration per case last,
and writes every run to a CSV. The defaults live in kernels/triton/*.py; this script only measures.

    python bench/kernels_tune.py --out $OUT/kernels_tune_h100.csv [--ops histogram,mmd2] [--quick]
                                 [--budget-s 420]

Histogram (N = 1e7 rows, fp32, B = bins incl. the two outer ones = B − 1 edges): the default
("auto": compare-and-sum for <= 40 edges), "compare" at other programs-per-SM, and "compare_lanes"
over rows per tile, packed words per program (4 edges each), num_warps and programs per SM. Figure:
bytes of x read per second, and that as % of the device-to-device copy bandwidth measured in this
run (bytes read + written, as bench/bench_kernels.py). Every variant's counts must equal the
default's (column check).

MMD² (bf16, n = m, 5 median-heuristic bandwidths, P permutations): the default ("rowblock", tf32
permutation product, CUDA_CONFIG), rowblock with the fp16 permutation product / unmasked d loop,
and the grouped "tiles" schedule over (BM, BN, BLOCK_K, num_warps, num_stages, GROUP, PC,
persistent programs per SM) with tf32 / fp16 permutation products. Figure: executed TFLOP/s with
FLOP = (2n)²·d + (2n)²·(P+1) (as bench/bench_kernels.py) and % of the bf16 8192³ matmul measured in
this run. Column check: |ΔT| of the summed unbiased MMD² (and, with permutations, the largest |ΔT|
over the permutation statistics) against the default run.

Timing: CUDA events around each call after one warm-up call (compiles), median of --reps calls.
Runs stop when --budget-s is spent (the table covers what ran); a config that fails to compile
(e.g. out of shared memory) is recorded with its error and skipped.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_kernels import copy_bandwidth, matmul_peak  # noqa: E402  (same ceilings as the bench)

from driftd.kernels.reference.mmd import default_bandwidths, permutation_indicators, stats_from_sums  # noqa: E402
from driftd.kernels.triton import histogram as th  # noqa: E402
from driftd.kernels.triton import mmd as tm  # noqa: E402

FIELDS = ["device", "op", "case", "variant", "config", "seconds", "gbps", "pct_of_copy", "tflops",
          "pct_of_matmul", "speedup_vs_default", "check", "note"]


def time_cuda(fn, reps: int) -> float:
    fn()  # warm-up: compile, caches
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) / 1e3)
    return statistics.median(ts)


class Budget:
    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def _set(mod, values: dict):
    old = {k: getattr(mod, k) for k in values}
    for k, v in values.items():
        setattr(mod, k, v)
    return old


def hist_variants(n_edges: int, quick: bool):
    yield "default", {}
    for pps in ((8,) if quick else (4, 16)):
        yield "compare", dict(STRATEGY="compare", PROGRAMS_PER_SM=pps)
    seen = set()
    words_needed = math.ceil((n_edges + 1) / 4)
    for bn in ((32,) if quick else (16, 32, 64)):
        warps = 4 if bn <= 32 else 8
        for mw in ((4,) if quick else (2, 4, 8)):
            for pps in ((8,) if quick else (8, 16)):
                eg = math.ceil(words_needed / mw)
                key = (bn, eg, math.ceil(words_needed / eg), warps, pps)  # same launch: run once
                if key in seen:
                    continue
                seen.add(key)
                yield "compare_lanes", dict(STRATEGY="compare_lanes", LANES_BLOCK_N=bn, LANES_MAX_WORDS=mw,
                                            LANES_WARPS=warps, PROGRAMS_PER_SM=pps)


def run_histogram(dev_name, copy_bw, writer, rows, budget, quick, reps):
    n = int(1e6 if quick else 1e7)
    cases = [(32, 10), (128, 10), (32, 32), (128, 32)] if not quick else [(32, 10), (32, 32)]
    for f, b in cases:
        g = torch.Generator(device="cuda").manual_seed(0)
        x = torch.randn(n, f, device="cuda", generator=g)
        q = torch.linspace(-2, 2, b - 1, device="cuda")
        edges = (q[None, :] + 0.01 * torch.arange(f, device="cuda")[:, None]).contiguous()
        nbytes = x.numel() * x.element_size()
        case = f"N={n:.0e} F={f} B={b} fp32"
        ref = None
        t_def = None
        for variant, consts in hist_variants(b - 1, quick):
            if budget.left() <= 0:
                print(f"hist {case} {variant}: skipped (budget)", flush=True)
                break
            cfg = " ".join(f"{k}={v}" for k, v in consts.items() if k != "STRATEGY") or "module defaults"
            old = _set(th, consts)
            try:
                out = th.bucketize_histogram_triton(x, edges)
                if ref is None:
                    ref = out
                check = "ok" if all(torch.equal(u, v) for u, v in zip(out, ref)) else "MISMATCH"
                t = time_cuda(lambda: th.bucketize_histogram_triton(x, edges), reps)
                t_def = t_def or t
                gbps = nbytes / t / 1e9
                row = dict(device=dev_name, op="histogram", case=case, variant=variant, config=cfg,
                           seconds=f"{t:.6g}", gbps=f"{gbps:.4g}", pct_of_copy=f"{100 * gbps / copy_bw:.3g}",
                           speedup_vs_default=f"{t_def / t:.3g}", check=check)
            except Exception as exc:  # noqa: BLE001 - record and go on
                row = dict(device=dev_name, op="histogram", case=case, variant=variant, config=cfg,
                           check="error", note=f"{type(exc).__name__}: {exc}"[:300])
            finally:
                _set(th, old)
            writer.writerow(row)
            rows.append(row)
            print("hist", case, variant, cfg, row.get("seconds", "-"), "s", row.get("pct_of_copy", "-"), "% copy",
                  row["check"], row.get("note", ""), flush=True)
        x = out = ref = None  # free the batch before the next case


# tiles configs: (BM, BN, BLOCK_K, num_warps, num_stages, GROUP, PC, persistent programs per SM)
TILES_P0 = [
    (128, 128, 64, 8, 3, 8, 64, 0), (128, 128, 64, 8, 4, 8, 64, 0), (128, 128, 128, 8, 3, 8, 64, 0),
    (128, 128, 64, 4, 3, 8, 64, 0), (128, 256, 64, 8, 3, 8, 64, 0), (128, 256, 64, 8, 4, 8, 64, 0),
    (256, 128, 64, 8, 3, 8, 64, 0), (128, 128, 64, 8, 3, 16, 64, 0), (128, 256, 64, 8, 3, 16, 64, 0),
    (128, 128, 64, 8, 3, 4, 64, 0), (128, 128, 64, 8, 3, 8, 64, 2), (128, 256, 64, 8, 3, 8, 64, 1),
]
TILES_PERM = [
    ("tf32", (128, 128, 64, 8, 3, 8, 64, 0)), ("fp16", (128, 128, 64, 8, 3, 8, 64, 0)),
    ("fp16", (128, 128, 64, 8, 3, 8, 32, 0)), ("fp16", (128, 128, 64, 8, 3, 8, 128, 0)),
    ("fp16", (128, 128, 64, 4, 3, 8, 64, 0)), ("fp16", (128, 256, 64, 8, 3, 8, 32, 0)),
    ("fp16", (64, 128, 64, 4, 3, 8, 64, 0)),
]


def mmd_variants(p: int, quick: bool):
    yield "default", {}
    if p == 0:
        yield "rowblock", dict(schedule="rowblock", even_k=True)
        yield "rowblock", dict(schedule="rowblock", block=128, block_k=128, num_warps=8, num_stages=3, even_k=True)
        tiles = TILES_P0[:3] if quick else TILES_P0
        for bm, bn, bk, w, s, gr, pc, per in tiles:
            yield "tiles", dict(schedule="tiles", block=bm, block_n=bn, block_k=bk, num_warps=w, num_stages=s,
                                group=gr, perm_chunk=pc, persistent=per)
    else:
        yield "rowblock", dict(schedule="rowblock", perm_dtype="fp16")
        yield "rowblock", dict(schedule="rowblock", perm_dtype="fp16", block=128, num_warps=8, even_k=True)
        for pdt, (bm, bn, bk, w, s, gr, pc, per) in (TILES_PERM[:2] if quick else TILES_PERM):
            yield "tiles", dict(schedule="tiles", perm_dtype=pdt, block=bm, block_n=bn, block_k=bk, num_warps=w,
                                num_stages=s, group=gr, perm_chunk=pc, persistent=per)


def run_mmd(dev_name, peak, writer, rows, budget, quick, reps):
    cases = [(20_000, 4096, 0), (20_000, 4096, 200)] if quick else \
        [(100_000, 4096, 0), (100_000, 4096, 200), (100_000, 768, 0), (100_000, 768, 200)]
    data = {}
    for n, d, p in cases:
        if (n, d) not in data:
            data.clear()
            torch.cuda.empty_cache()
            g = torch.Generator(device="cuda").manual_seed(0)
            x = torch.randn(n, d, device="cuda", generator=g).to(torch.bfloat16)
            y = (torch.randn(n, d, device="cuda", generator=g) * 1.05 + 0.05).to(torch.bfloat16)
            data[(n, d)] = (x, y, default_bandwidths(x, y))
        x, y, bws = data[(n, d)]
        a = permutation_indicators(n, n, p, 0, device="cuda")
        big_n = 2 * n
        flops = big_n * big_n * d + (big_n * big_n * (p + 1) if p else 0)
        case = f"n=m={n:.0e} d={d} P={p} bf16 NB={len(bws)}"
        ref = None
        t_def = None
        for variant, kw in mmd_variants(p, quick):
            if budget.left() <= 0:
                print(f"mmd {case} {variant}: skipped (budget)", flush=True)
                break
            cfg = " ".join(f"{k}={v}" for k, v in kw.items() if k != "schedule") or \
                f"module defaults ({tm.SCHEDULE}, {tm.PERM_DTYPE}, {tm.CUDA_CONFIG[p > 0]})"
            try:
                out = tm.mmd2_sums_triton(x, y, a, n, bws, **kw)
                s1, s2, tot, s1_all, s2_all, tot_all = (v.double().cpu() for v in out)
                t_obs = float(stats_from_sums(s1, s2, tot, n, n)[0].sum())
                t_perm = stats_from_sums(s1_all, s2_all, tot_all, n, n)[0] if p else None
                if ref is None:
                    ref = (t_obs, t_perm)
                check = f"dT={abs(t_obs - ref[0]):.2e}"
                if p:
                    check += f" max_dT_perm={float((t_perm - ref[1]).abs().max()):.2e}"
                t = time_cuda(lambda: tm.mmd2_sums_triton(x, y, a, n, bws, **kw), reps)
                t_def = t_def or t
                tf = flops / t / 1e12
                row = dict(device=dev_name, op="mmd2", case=case, variant=variant, config=cfg, seconds=f"{t:.6g}",
                           tflops=f"{tf:.4g}", pct_of_matmul=f"{100 * tf / peak:.3g}",
                           speedup_vs_default=f"{t_def / t:.3g}", check=check, note=f"T={t_obs:.6g}")
            except Exception as exc:  # noqa: BLE001
                row = dict(device=dev_name, op="mmd2", case=case, variant=variant, config=cfg, check="error",
                           note=f"{type(exc).__name__}: {exc}"[:300])
            writer.writerow(row)
            rows.append(row)
            print("mmd", case, variant, cfg, row.get("seconds", "-"), "s", row.get("tflops", "-"), "TFLOP/s",
                  row["check"], row.get("note", "")[:120], flush=True)


def summary(rows):
    print("\n=== all runs ===")
    for r in rows:
        fig = f"{r['pct_of_copy']}% copy" if r.get("pct_of_copy") else (f"{r.get('tflops', '-')} TFLOP/s "
                                                                          f"({r.get('pct_of_matmul', '-')}%)")
        print(f"{r['op']:9s} | {r['case']:34s} | {r['variant']:13s} | {r.get('seconds', '-'):>9s} s | {fig:22s} | "
              f"x{r.get('speedup_vs_default', '-'):>5s} | {r['check']} | {r['config']}")
    print("\n=== best per case (fastest run whose check passed) ===")
    for case in dict.fromkeys(r["case"] for r in rows):
        ok = [r for r in rows if r["case"] == case and r.get("seconds") and r["check"] != "MISMATCH"]
        if not ok:
            print(f"{case}: no successful run")
            continue
        best = min(ok, key=lambda r: float(r["seconds"]))
        default = next((r for r in ok if r["variant"] == "default"), None)
        gain = f", x{float(default['seconds']) / float(best['seconds']):.2f} vs default" if default else ""
        fig = f"{best['pct_of_copy']}% of copy" if best.get("pct_of_copy") else f"{best['tflops']} TFLOP/s"
        print(f"{case}: {best['variant']} [{best['config']}] {best['seconds']} s, {fig}{gain}; check {best['check']}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="CSV path (e.g. $OUT/kernels_tune_h100.csv)")
    ap.add_argument("--ops", default="histogram,mmd2")
    ap.add_argument("--quick", action="store_true", help="small sizes, few configs (smoke test)")
    ap.add_argument("--reps", type=int, default=0, help="timed calls per config (default: 10 hist, 2 mmd)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop starting runs after this many seconds")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("kernels_tune.py needs a CUDA GPU", file=sys.stderr)
        return 2
    budget = Budget(args.budget_s)
    dev_name = torch.cuda.get_device_name().replace(" ", "_")
    copy_bw = copy_bandwidth("cuda")
    peak = matmul_peak("cuda")
    print(f"device {dev_name}: copy {copy_bw:.1f} GB/s (read+write), bf16 matmul {peak:.1f} TFLOP/s; "
          f"torch {torch.__version__}", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    rows: list[dict] = []
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerow(dict(device=dev_name, op="copy_bandwidth", variant="torch copy_", gbps=f"{copy_bw:.4g}",
                        note="read + written bytes"))
        w.writerow(dict(device=dev_name, op="matmul_peak", variant="torch matmul bf16 8192^3", tflops=f"{peak:.4g}"))
        for op in args.ops.split(","):
            if op == "histogram":
                run_histogram(dev_name, copy_bw, w, rows, budget, args.quick, args.reps or 10)
            elif op == "mmd2":
                run_mmd(dev_name, peak, w, rows, budget, args.quick, args.reps or 2)
            else:
                raise SystemExit(f"unknown op {op!r}")
            fh.flush()
    summary(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
