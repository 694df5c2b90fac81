"""Block-size sweep for the Triton kernels on a GPU (prints a table; the chosen defaults live in
kernels/triton/*.py). Usage: python bench/kernels_tune.py"""

from __future__ import annotations

import itertools
import time

import torch

from driftd.kernels import mmd2
from driftd.kernels.reference.mmd import permutation_indicators
from driftd.kernels.triton import histogram as th
from driftd.kernels.triton import mmd as tm


def bench(fn, reps=10):
    fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps


def main():
    x = torch.randn(10_000_000, 32, device="cuda")
    for b in (10, 32, 256):
        edges = torch.linspace(-2, 2, b - 1, device="cuda")[None].repeat(32, 1).contiguous()
        for te, pps in itertools.product((2048, 4096, 8192), (4, 8, 16)):
            th.TILE_ELEMS, th.PROGRAMS_PER_SM = te, pps
            try:
                t = bench(lambda: th.bucketize_histogram_triton(x, edges))
                print(f"hist B={b} tile_elems={te} programs/SM={pps}: {t * 1e3:.3f} ms {x.numel() * 4 / t / 1e9:.0f} GB/s", flush=True)
            except Exception as exc:  # noqa: BLE001
                print(f"hist B={b} tile_elems={te} programs/SM={pps}: failed {type(exc).__name__}: {exc}"[:300], flush=True)
    del x
    n, d = 20_000, 4096
    xx = torch.randn(n, d, device="cuda", dtype=torch.bfloat16)
    yy = torch.randn(n, d, device="cuda", dtype=torch.bfloat16)
    bws = [float(v) for v in (1e3, 2e3, 4e3, 8e3, 16e3)]
    for p in (0, 200):
        a = permutation_indicators(n, n, p, 0, device="cuda")
        for blk, bk, nw, ns in itertools.product((64, 128), (64, 128), (4, 8), (3,)):
            try:
                t = bench(lambda: tm.mmd2_sums_triton(xx, yy, a, n, bws, block=blk, block_k=bk, num_warps=nw,
                                                      num_stages=ns), reps=3)
                fl = (2 * n) ** 2 * d
                print(f"mmd P={p} block={blk} block_k={bk} warps={nw} stages={ns}: {t * 1e3:.2f} ms {fl / t / 1e12:.0f} TFLOP/s", flush=True)
            except Exception as exc:  # noqa: BLE001
                print(f"mmd P={p} block={blk} block_k={bk} warps={nw} stages={ns}: failed {type(exc).__name__}: {exc}"[:300], flush=True)


if __name__ == "__main__":
    main()
