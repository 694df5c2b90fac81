"""Kernel benchmarks: fused bucketize-histogram and tiled MMD vs the torch reference and the naive
torch formulation. Writes one CSV row per sweep point.

    python bench/bench_kernels.py --device cuda --out bench/results/kernels_h100.csv
    python bench/bench_kernels.py --device cpu  --out bench/results/kernels_cpu.csv

Columns: device (name), op, dtype, shape (N / F / B or n / d / P), impl, seconds (median of the
timed repeats), GB/s or TFLOP/s, pct_of_peak (histogram: bytes read / s over the device-to-device
copy bandwidth measured in the same run, counting read + written bytes; MMD: executed FLOP/s over
a bf16 8192³ matmul measured in the same run (GPU) or an fp32 matmul (CPU)), speedups of the
kernel vs the reference and vs the naive formulation, note (skips are rows with a note).

Histogram: B = number of bins including the two outer ones, i.e. B − 1 finite edges per feature
(deciles: B = 10). Naive: per feature ``torch.bucketize(right=True)`` + ``scatter_add_``.
MMD: n = m, five median-heuristic bandwidths, P permutations. Naive: ``torch.cdist`` of row
chunks against the pooled sample (squared, exp per bandwidth, masked sums), P = 0 only (a naive
permutation test is P full passes). On CUDA the kernel is Triton and the reference is the torch
tiled path; on CPU the kernel column is the torch reference (the CPU path) and the comparisons are
its eager variant and the naive formulation.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time

import torch

from driftd.kernels import bucketize_histogram, mmd2
from driftd.kernels.reference import histogram as ref_hist

FIELDS = ["device", "op", "dtype", "N_or_n", "F_or_d", "B_or_P", "impl", "seconds", "gbps", "tflops",
          "pct_of_peak", "speedup_vs_reference", "speedup_vs_naive", "note"]


def sync(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def timeit(fn, dev, repeat=5, warmup=1, budget_s=20.0):
    for _ in range(warmup):
        fn()
    sync(dev)
    ts = []
    t_start = time.perf_counter()
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        ts.append(time.perf_counter() - t0)
        if time.perf_counter() - t_start > budget_s:
            break
    return statistics.median(ts)


def copy_bandwidth(dev) -> float:
    """GB/s of a 1 GiB (GPU) / 256 MiB (CPU) tensor copy, counting bytes read + written."""
    nbytes = (1 << 30) if dev == "cuda" else (1 << 28)
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=dev).fill_(1.0)
    dst = torch.empty_like(src)
    t = timeit(lambda: dst.copy_(src), dev, repeat=10, warmup=2)
    return 2 * nbytes / t / 1e9


def matmul_peak(dev) -> float:
    n = 8192 if dev == "cuda" else 1024
    dt = torch.bfloat16 if dev == "cuda" else torch.float32
    a = torch.randn(n, n, device=dev, dtype=dt)
    b = torch.randn(n, n, device=dev, dtype=dt)
    t = timeit(lambda: a @ b, dev, repeat=10, warmup=3)
    return 2 * n**3 / t / 1e12


def naive_histogram(x, edges):
    """Per feature: torch.bucketize(right=True) on the finite edges + scatter_add_ into bins."""
    n, f = x.shape
    out = torch.zeros((f, edges.shape[1] + 2), dtype=torch.int64, device=x.device)
    ones = torch.ones(n, dtype=torch.int64, device=x.device)
    for j in range(f):
        col = x[:, j]
        idx = torch.bucketize(col, edges[j], right=True)
        idx = torch.where(torch.isnan(col), edges.shape[1] + 1, idx)
        out[j].scatter_add_(0, idx, ones)
    return out


def naive_mmd(x, y, bandwidths, chunk_elems=1 << 28):
    """Chunked torch.cdist: rows of Z against all of Z, exp per bandwidth, masked sums (fp32)."""
    z = torch.cat([x, y]).float()
    big_n, n, m = len(z), len(x), len(y)
    rows = max(1, chunk_elems // big_n)
    isx = torch.arange(big_n, device=z.device) < n
    xx = yy = xy = 0.0
    for i0 in range(0, big_n, rows):
        d2 = torch.cdist(z[i0:i0 + rows], z).pow_(2)
        idx = torch.arange(i0, min(i0 + rows, big_n), device=z.device)
        d2[idx - i0, idx] = float("inf")
        k = sum(torch.exp(d2 / (-2 * b)) for b in bandwidths)
        ri = isx[i0:i0 + rows]
        kx = k[:, isx].sum(1, dtype=torch.float64)
        ky = k[:, ~isx].sum(1, dtype=torch.float64)
        xx += float(kx[ri].sum())
        xy += float(ky[ri].sum())
        yy += float(ky[~ri].sum())
    return xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2 * xy / (n * m)


def hist_rows(dev, dev_name, copy_bw, sizes, dtypes, writer, eager_max=1e7):
    for dtype in dtypes:
        for n in sizes["N"]:
            for f in sizes["F"]:
                for b in sizes["B"]:
                    base = dict(device=dev_name, op="histogram", dtype=str(dtype).split(".")[1], N_or_n=int(n),
                                F_or_d=f, B_or_P=b)
                    if n * f * 4 > sizes.get("max_bytes", 1 << 40):
                        writer.writerow({**base, "impl": "skipped", "note": sizes.get("skip_note", "too big here")})
                        continue
                    try:
                        g = torch.Generator(device=dev).manual_seed(0)
                        x = torch.randn(int(n), f, device=dev, generator=g).to(dtype)
                        q = torch.linspace(-2, 2, b - 1, device=dev)
                        edges = (q[None, :] + 0.01 * torch.arange(f, device=dev)[:, None]).contiguous()
                        nbytes = x.numel() * x.element_size()
                        if dev == "cuda":
                            t_k = timeit(lambda: bucketize_histogram(x, edges, backend="triton"), dev, repeat=20, warmup=2)
                            t_r = timeit(lambda: bucketize_histogram(x, edges, backend="torch"), dev, repeat=3)
                            t_n = timeit(lambda: naive_histogram(x, edges), dev, repeat=3)
                            rows = [("triton", t_k, ""), ("torch_reference", t_r, ""), ("naive_bucketize_scatter_add", t_n, "")]
                        else:
                            t_k = timeit(lambda: bucketize_histogram(x, edges, backend="torch"), dev, repeat=5, warmup=1)
                            os.environ["DRIFTD_KERNELS_COMPILE"] = "0"
                            t_r = timeit(lambda: bucketize_histogram(x, edges, backend="torch"), dev, repeat=3)
                            os.environ.pop("DRIFTD_KERNELS_COMPILE")
                            t_n = timeit(lambda: naive_histogram(x, edges), dev, repeat=3)
                            rows = [("torch_reference_compiled", t_k, "the CPU path"),
                                    ("torch_reference_eager", t_r, "DRIFTD_KERNELS_COMPILE=0"),
                                    ("naive_bucketize_scatter_add", t_n, "")]
                        for impl, t, note in rows:
                            gbps = nbytes / t / 1e9
                            writer.writerow({**base, "impl": impl, "seconds": f"{t:.6g}", "gbps": f"{gbps:.4g}",
                                             "pct_of_peak": f"{100 * gbps / copy_bw:.3g}",
                                             "speedup_vs_reference": f"{t_r / t:.3g}", "speedup_vs_naive": f"{t_n / t:.3g}",
                                             "note": note})
                        print(base, {r[0]: round(r[1], 5) for r in rows}, flush=True)
                        del x
                    except Exception as exc:  # noqa: BLE001 - keep the sweep going, record the failure
                        writer.writerow({**base, "impl": "error", "note": f"{type(exc).__name__}: {exc}"[:300]})
                        print(base, "error", exc, flush=True)


def mmd_rows(dev, dev_name, peak, sizes, writer):
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    for n in sizes["n"]:
        for d in sizes["d"]:
            t0_kernel = None
            for p in sizes["P"]:
                base = dict(device=dev_name, op="mmd2", dtype=str(dtype).split(".")[1], N_or_n=int(n), F_or_d=d, B_or_P=p)
                if (n, d) in sizes.get("skip", set()) or n > sizes.get("max_n", 1e9):
                    writer.writerow({**base, "impl": "skipped", "note": sizes.get("skip_note", "too slow here")})
                    continue
                try:
                    g = torch.Generator(device=dev).manual_seed(0)
                    x = torch.randn(int(n), d, device=dev, generator=g).to(dtype)
                    y = (torch.randn(int(n), d, device=dev, generator=g) * 1.05 + 0.05).to(dtype)
                    big_n = 2 * int(n)
                    flops = big_n * big_n * d * 1.0 + (big_n * big_n * (p + 1) if p else 0)  # upper block triangle
                    kern_backend = "triton" if dev == "cuda" else "torch"
                    res = mmd2(x, y, n_permutations=p, backend=kern_backend)  # warm-up (+ compile)
                    bws = res.bandwidths
                    reps = 3 if n <= 1e4 else 2
                    t_k = timeit(lambda: mmd2(x, y, bandwidths=bws, n_permutations=p, backend=kern_backend), dev,
                                 repeat=reps, warmup=0)
                    rows = [(kern_backend if dev == "cuda" else "torch_reference", t_k, f"mmd2_unbiased={res.mmd2_unbiased:.6g}")]
                    t_r = t_n = None
                    if dev == "cuda" and (p == 0 or n <= 1e4):
                        t_r = timeit(lambda: mmd2(x, y, bandwidths=bws, n_permutations=p, backend="torch"), dev, repeat=1, warmup=0)
                        rows.append(("torch_reference", t_r, "torch tiles 1024x1024 (upper triangle), fp32"))
                    if p == 0:
                        t_n = timeit(lambda: naive_mmd(x, y, bws), dev, repeat=1, warmup=0)
                        rows.append(("naive_cdist_chunked", t_n, "fp32 cdist"))
                    if p == 0:
                        t0_kernel = t_k
                    elif t0_kernel:
                        rows[0] = (rows[0][0], t_k, rows[0][2] + f"; permutation overhead vs P=0: {100 * (t_k / t0_kernel - 1):.1f}%")
                    for impl, t, note in rows:
                        tf = flops / t / 1e12
                        writer.writerow({**base, "impl": impl, "seconds": f"{t:.6g}", "tflops": f"{tf:.4g}",
                                         "pct_of_peak": f"{100 * tf / peak:.3g}",
                                         "speedup_vs_reference": f"{t_r / t:.3g}" if t_r else "",
                                         "speedup_vs_naive": f"{t_n / t:.3g}" if t_n else "", "note": note})
                    print(base, {r[0]: round(r[1], 4) for r in rows}, flush=True)
                    del x, y
                except Exception as exc:  # noqa: BLE001
                    writer.writerow({**base, "impl": "error", "note": f"{type(exc).__name__}: {exc}"[:300]})
                    print(base, "error", exc, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ops", default="mmd2,histogram")
    ap.add_argument("--threads", type=int, default=1, help="CPU torch threads (the engine runs one per thread)")
    ap.add_argument("--quick", action="store_true", help="small sweep (smoke test)")
    args = ap.parse_args(argv)
    dev = args.device
    if dev == "cpu":
        torch.set_num_threads(args.threads)
        dev_name = f"cpu-{os.cpu_count()}core-{args.threads}thread"
    else:
        dev_name = torch.cuda.get_device_name().replace(" ", "_")
    copy_bw = copy_bandwidth(dev)
    peak = matmul_peak(dev)
    print(f"device {dev_name}: copy {copy_bw:.1f} GB/s (read+write), matmul {peak:.1f} TFLOP/s", flush=True)
    if dev == "cuda":
        hs = dict(N=[1e5, 1e6, 1e7], F=[8, 32, 128], B=[10, 32, 256])
        ms = dict(n=[1e3, 1e4, 1e5], d=[128, 768, 4096], P=[0, 200])
        hdt = [torch.float32, torch.bfloat16]
    else:
        hs = dict(N=[1e5, 1e6, 1e7], F=[8, 32, 128], B=[10, 32, 256], max_bytes=4e8,
                  skip_note="skipped on the 2-core CPU: N*F*4 bytes > 400 MB (time budget)")
        ms = dict(n=[1e3, 1e4, 1e5], d=[128, 768, 4096], P=[0, 200], max_n=1e3,
                  skip_note="skipped on the 2-core CPU: (2n)^2 kernel entries x 5 bandwidths take minutes")
        hdt = [torch.float32]
    if args.quick:
        hs.update(N=[1e5], F=[8, 32], B=[10, 256])
        ms.update(n=[1e3], d=[128], P=[0, 200])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerow(dict(device=dev_name, op="copy_bandwidth", impl="torch copy_", gbps=f"{copy_bw:.4g}",
                        note="read + written bytes"))
        w.writerow(dict(device=dev_name, op="matmul_peak", dtype="bfloat16" if dev == "cuda" else "float32",
                        impl="torch matmul", tflops=f"{peak:.4g}"))
        for op in args.ops.split(","):
            if op == "histogram":
                hist_rows(dev, dev_name, copy_bw, hs, hdt, w)
            elif op == "mmd2":
                mmd_rows(dev, dev_name, peak, ms, w)
            fh.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
