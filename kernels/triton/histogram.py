"""Triton fused bucketize-histogram: kernel → launcher (public wrapper in driftd.kernels.histogram).

Three strategies (module constants STRATEGY / COMPARE_MAX_EDGES; measured on an H100, see
bench/README.md): up to 40 edges, compare-and-sum ``ge[f, j] = #(x >= e_j)`` per program in
registers (no gathers), flushed once with atomics; more edges, the branchless binary search below
with one relaxed global atomic per element; ``"histogram"``, the per-program ``tl.histogram`` kernel
described here (correct, but ``tl.histogram`` is slow for hundreds of bins on an H100).

One launch for all features. Program (pid_r, pid_f) walks row tiles pid_r, pid_r + G, ... of the
row-major batch for its feature group (all F at once unless the bins of all features would not
fit in registers), does a branchless binary search of every element over its feature's edges
padded to EP = next_pow2(E + 3) with +inf, and keeps one histogram per feature in registers
(``tl.histogram`` over ids ``f_local * EP + slot``). Slots: ``min(#(edges <= x), k_f)`` for numbers
(0 = under, 1..k_f−1 interior, k_f = over), EP−1 for NaN, EP−2 for rows past the end. The
histogram is flushed once per program with atomics into an int32 [F_pad, EP] buffer, which the
launcher turns into (counts, nan, under, over) — no intermediate index tensor, no per-feature launch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_BINS_PER_PROGRAM = 8192  # BLOCK_F * EP cap (registers)
TILE_ELEMS = 4096  # BLOCK_N * BLOCK_F target
PROGRAMS_PER_SM = 8


@triton.jit
def _hist_kernel(x_ptr, edges_ptr, kf_ptr, out_ptr, N, F, stride_x, tiles_per_prog,
                 EP: tl.constexpr, LOG_EP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr,
                 COMPUTE_F64: tl.constexpr):
    pid_r = tl.program_id(0)
    pid_f = tl.program_id(1)
    n_prog = tl.num_programs(0)
    f_off = pid_f * BLOCK_F + tl.arange(0, BLOCK_F)
    f_ok = f_off < F
    kf = tl.load(kf_ptr + f_off, mask=f_ok, other=1)
    ebase = edges_ptr + f_off * EP  # [BLOCK_F] row starts of the padded edge table
    acc = tl.zeros((BLOCK_F * EP,), dtype=tl.int32)
    f_loc = tl.arange(0, BLOCK_F)[None, :] * EP
    for t in range(0, tiles_per_prog):
        rows = (pid_r + t * n_prog) * BLOCK_N + tl.arange(0, BLOCK_N)
        r_ok = rows < N
        m = r_ok[:, None] & f_ok[None, :]
        xv = tl.load(x_ptr + rows[:, None].to(tl.int64) * stride_x + f_off[None, :], mask=m, other=0.0)
        if COMPUTE_F64:
            xv = xv.to(tl.float64)
        else:
            xv = xv.to(tl.float32)
        pos = tl.zeros((BLOCK_N, BLOCK_F), dtype=tl.int32)
        step = EP // 2
        for _ in tl.static_range(LOG_EP):  # branchless lifting: pos = #(edges[:EP-1] <= x)
            e = tl.load(ebase[None, :] + pos + (step - 1))
            pos = tl.where(e <= xv, pos + step, pos)
            step = step // 2
        e = tl.load(ebase[None, :] + pos)
        pos = tl.where(e <= xv, pos + 1, pos)
        pos = tl.minimum(pos, kf[None, :])
        pos = tl.where(xv != xv, EP - 1, pos)
        pos = tl.where(r_ok[:, None], pos, EP - 2)
        acc += tl.histogram(tl.reshape(f_loc + pos, (BLOCK_N * BLOCK_F,)), BLOCK_F * EP)
    out_off = pid_f * BLOCK_F * EP + tl.arange(0, BLOCK_F * EP)
    tl.atomic_add(out_ptr + out_off, acc, mask=acc != 0)


@triton.jit
def _ge_kernel(x_ptr, edges_ptr, ge_ptr, nan_ptr, N, F, stride_x, tiles_per_prog,
               E: tl.constexpr, EP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr,
               COMPUTE_F64: tl.constexpr):
    """Few edges: compare-and-sum ``ge[f, j] = #(x >= e_j)`` (E compares per element, no gathers),
    accumulated per program in registers and flushed once with atomics."""
    pid_r = tl.program_id(0)
    pid_f = tl.program_id(1)
    n_prog = tl.num_programs(0)
    f_off = pid_f * BLOCK_F + tl.arange(0, BLOCK_F)
    f_ok = f_off < F
    cols = tl.arange(0, EP)
    ge = tl.zeros((BLOCK_F, EP), dtype=tl.int32)
    nan = tl.zeros((BLOCK_F,), dtype=tl.int32)
    for t in range(0, tiles_per_prog):
        rows = (pid_r + t * n_prog) * BLOCK_N + tl.arange(0, BLOCK_N)
        r_ok = rows < N
        m = r_ok[:, None] & f_ok[None, :]
        xv = tl.load(x_ptr + rows[:, None].to(tl.int64) * stride_x + f_off[None, :], mask=m, other=float("nan"))
        if COMPUTE_F64:
            xv = xv.to(tl.float64)
        else:
            xv = xv.to(tl.float32)
        nan += tl.sum((xv != xv) & m, axis=0).to(tl.int32)
        for j in tl.static_range(E):
            e = tl.load(edges_ptr + f_off * EP + j, mask=f_ok, other=float("inf"))
            c = tl.sum((xv >= e[None, :]).to(tl.int32), axis=0)
            ge += tl.where(cols[None, :] == j, c[:, None], 0)
    tl.atomic_add(ge_ptr + f_off[:, None] * EP + cols[None, :], ge, mask=f_ok[:, None] & (cols[None, :] < E))
    tl.atomic_add(nan_ptr + f_off, nan, mask=f_ok)


@triton.jit
def _search_atomic_kernel(x_ptr, edges_ptr, kf_ptr, out_ptr, N, F, stride_x, tiles_per_prog,
                          EP: tl.constexpr, LOG_EP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr,
                          COMPUTE_F64: tl.constexpr):
    """Many edges: branchless binary search, then one global atomic per element (spread over
    F * EP counters, so contention stays low where the bins are many)."""
    pid_r = tl.program_id(0)
    pid_f = tl.program_id(1)
    n_prog = tl.num_programs(0)
    f_off = pid_f * BLOCK_F + tl.arange(0, BLOCK_F)
    f_ok = f_off < F
    kf = tl.load(kf_ptr + f_off, mask=f_ok, other=1)
    ebase = edges_ptr + f_off * EP
    for t in range(0, tiles_per_prog):
        rows = (pid_r + t * n_prog) * BLOCK_N + tl.arange(0, BLOCK_N)
        r_ok = rows < N
        m = r_ok[:, None] & f_ok[None, :]
        xv = tl.load(x_ptr + rows[:, None].to(tl.int64) * stride_x + f_off[None, :], mask=m, other=0.0)
        if COMPUTE_F64:
            xv = xv.to(tl.float64)
        else:
            xv = xv.to(tl.float32)
        pos = tl.zeros((BLOCK_N, BLOCK_F), dtype=tl.int32)
        step = EP // 2
        for _ in tl.static_range(LOG_EP):
            e = tl.load(ebase[None, :] + pos + (step - 1))
            pos = tl.where(e <= xv, pos + step, pos)
            step = step // 2
        e = tl.load(ebase[None, :] + pos)
        pos = tl.where(e <= xv, pos + 1, pos)
        pos = tl.minimum(pos, kf[None, :])
        pos = tl.where(xv != xv, EP - 1, pos)
        tl.atomic_add(out_ptr + f_off[None, :] * EP + pos, 1, mask=m, sem="relaxed")


# strategy by number of edges E: compare-and-sum up to COMPARE_MAX_EDGES, else search + atomics;
# "histogram" (per-program tl.histogram) is kept for comparison (slow for many bins on an H100)
COMPARE_MAX_EDGES = 40
STRATEGY = "auto"


def _config(n: int, f: int, n_edges: int, device: torch.device):
    ep = triton.next_power_of_2(n_edges + 3)
    block_f = min(triton.next_power_of_2(f), max(1, MAX_BINS_PER_PROGRAM // ep))
    block_n = max(1, min(triton.next_power_of_2(max(n, 1)), TILE_ELEMS // block_f, 1024))
    n_tiles = triton.cdiv(max(n, 1), block_n)
    f_groups = triton.cdiv(f, block_f)
    if device.type == "cuda":
        sms = _sms(device)
        grid_r = max(1, min(n_tiles, (sms * PROGRAMS_PER_SM) // f_groups))
    else:  # interpreter: few programs, each walking several tiles (exercises the loop)
        grid_r = max(1, min(n_tiles, 3))
    return ep, block_f, block_n, grid_r, f_groups, triton.cdiv(n_tiles, grid_r)


def _sms(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def bucketize_histogram_triton(x: torch.Tensor, edges: torch.Tensor):
    """(counts [F, E-1], nan [F], under [F], over [F]) int64, inputs validated by the caller."""
    n, f = x.shape
    n_edges = edges.shape[1]
    if n >= 2**31 - 1:
        raise ValueError("bucketize_histogram (triton) counts in int32: split batches of 2^31 rows or more")
    cdt = torch.float64 if torch.float64 in (x.dtype, edges.dtype) else torch.float32
    x = x if x.stride(1) == 1 else x.contiguous()
    ep, block_f, block_n, grid_r, f_groups, tiles_per_prog = _config(n, f, n_edges, x.device)
    table = torch.full((f, ep), float("inf"), dtype=cdt, device=x.device)
    table[:, :n_edges] = edges.to(cdt)
    kf = (edges < float("inf")).sum(1).clamp_min(1).to(torch.int32)
    strategy = STRATEGY if STRATEGY != "auto" else ("compare" if n_edges <= COMPARE_MAX_EDGES else "search_atomic")
    if strategy == "compare":
        from driftd.kernels.reference.histogram import counts_from_ge

        block_f = min(triton.next_power_of_2(f), 32)
        f_groups = triton.cdiv(f, block_f)
        block_n = max(16, min(triton.next_power_of_2(max(n, 1)), 4096 // block_f))
        n_tiles = triton.cdiv(max(n, 1), block_n)
        grid_r = max(1, min(n_tiles, (_sms(x.device) * PROGRAMS_PER_SM) // f_groups if x.device.type == "cuda" else 3))
        ge = torch.zeros((f, ep), dtype=torch.int32, device=x.device)
        nan = torch.zeros(f, dtype=torch.int32, device=x.device)
        _ge_kernel[(grid_r, f_groups)](x, table, ge, nan, n, f, x.stride(0), triton.cdiv(n_tiles, grid_r),
                                       E=n_edges, EP=ep, BLOCK_N=block_n, BLOCK_F=block_f,
                                       COMPUTE_F64=cdt == torch.float64)
        return counts_from_ge(ge[:, :n_edges].to(torch.int64), nan.to(torch.int64), n, kf.to(torch.int64))
    out = torch.zeros((f_groups * block_f, ep), dtype=torch.int32, device=x.device)
    kern = _hist_kernel if strategy == "histogram" else _search_atomic_kernel
    kern[(grid_r, f_groups)](
        x, table, kf, out, n, f, x.stride(0), tiles_per_prog,
        EP=ep, LOG_EP=ep.bit_length() - 2, BLOCK_N=block_n, BLOCK_F=block_f,
        COMPUTE_F64=cdt == torch.float64,
    )
    out = out[:f].to(torch.int64)
    nan = out[:, ep - 1]
    under = out[:, 0]
    kf64 = kf.to(torch.int64)
    over = out.gather(1, kf64[:, None])[:, 0]
    counts = out[:, 1:n_edges]
    keep = torch.arange(n_edges - 1, device=x.device)[None, :] < (kf64 - 1)[:, None]
    counts = torch.where(keep, counts, torch.zeros((), dtype=torch.int64, device=x.device))
    return counts.contiguous(), nan.contiguous(), under.contiguous(), over.contiguous()
