"""Triton fused bucketize-histogram: kernel → launcher (public wrapper in driftd.kernels.histogram).

Strategies (module constants STRATEGY / COMPARE_MAX_EDGES; the first three measured on an H100, see
bench/README.md): up to 40 edges, ``"compare"``: compare-and-sum ``ge[f, j] = #(x >= e_j)`` per
program in registers (no gathers), flushed once with atomics — but reduced across the tile's rows
once per tile and edge; more edges, ``"search_atomic"``: the branchless binary search below with one
relaxed global atomic per element; ``"histogram"``, the per-program ``tl.histogram`` kernel
described here (correct, but ``tl.histogram`` is slow for hundreds of bins on an H100).
``"compare_lanes"`` (unmeasured on GPU, selectable): compare-and-sum into packed 8-bit per-lane
counters, reduced across rows once per 255 tiles (`_ge_lanes_kernel`).

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
def _pack4(xv, ebase, F, f_off, f_ok):
    """Packed 8-bit counters: byte s of the result is (x >= edge s of the 4 at ebase)."""
    inc = (xv >= tl.load(ebase + f_off, mask=f_ok, other=float("inf"))[None, :]).to(tl.int32)
    inc += (xv >= tl.load(ebase + F + f_off, mask=f_ok, other=float("inf"))[None, :]).to(tl.int32) << 8
    inc += (xv >= tl.load(ebase + 2 * F + f_off, mask=f_ok, other=float("inf"))[None, :]).to(tl.int32) << 16
    inc += (xv >= tl.load(ebase + 3 * F + f_off, mask=f_ok, other=float("inf"))[None, :]).to(tl.int32) << 24
    return inc


@triton.jit
def _flush4(w, ge_ptr, j0, f_off, f_ok, EPT: tl.constexpr):
    """Unpack 4 byte counters per lane, reduce across rows once, add to ge[f, j0 .. j0 + 3]."""
    for s in tl.static_range(4):
        c = tl.sum((w >> (8 * s)) & 255, axis=0)
        tl.atomic_add(ge_ptr + f_off * EPT + j0 + s, c, mask=f_ok, sem="relaxed")


@triton.jit
def _ge_lanes_kernel(x_ptr, tab_ptr, ge_ptr, N, F, stride_x, tiles_per_prog,
                     EG: tl.constexpr, WORDS: tl.constexpr, EPT: tl.constexpr, BLOCK_N: tl.constexpr,
                     BLOCK_F: tl.constexpr, COMPUTE_F64: tl.constexpr, FLUSH: tl.constexpr = 255):
    """Compare-and-sum with per-lane counters: ``ge[f, j] = #(x >= t_j)`` over the edge table
    t = [−inf, e_0, …, e_{E−1}, +inf…] (so ge[f, 0] counts the non-NaN values), stored transposed
    [EPT, F]. Program (pid % EG, pid // EG, pid_f) handles 4·WORDS edges of edge group pid % EG
    (the groups of one row range run side by side, so x comes from L2 after the first), keeps one
    packed 8-bit counter per edge and tile position (4 per int32) and reduces across rows only once
    per FLUSH <= 255 tiles (before a byte could overflow), instead of once per tile and edge."""
    pid0 = tl.program_id(0)
    pid_f = tl.program_id(1)
    eg = pid0 % EG
    pid_r = pid0 // EG
    n_prog = tl.num_programs(0) // EG
    f_off = pid_f * BLOCK_F + tl.arange(0, BLOCK_F)
    f_ok = f_off < F
    j0 = eg * (4 * WORDS)
    tb = tab_ptr + j0 * F
    for c0 in range(0, tiles_per_prog, FLUSH):
        w0 = tl.zeros((BLOCK_N, BLOCK_F), dtype=tl.int32)
        w1 = tl.zeros((BLOCK_N, BLOCK_F), dtype=tl.int32)
        w2 = tl.zeros((BLOCK_N, BLOCK_F), dtype=tl.int32)
        w3 = tl.zeros((BLOCK_N, BLOCK_F), dtype=tl.int32)
        w4 = tl.zeros((BLOCK_N, BLOCK_F), dtype=tl.int32)
        w5 = tl.zeros((BLOCK_N, BLOCK_F), dtype=tl.int32)
        w6 = tl.zeros((BLOCK_N, BLOCK_F), dtype=tl.int32)
        w7 = tl.zeros((BLOCK_N, BLOCK_F), dtype=tl.int32)
        for t in range(c0, tl.minimum(c0 + FLUSH, tiles_per_prog)):
            rows = (pid_r + t * n_prog) * BLOCK_N + tl.arange(0, BLOCK_N)
            m = (rows < N)[:, None] & f_ok[None, :]
            xv = tl.load(x_ptr + rows[:, None].to(tl.int64) * stride_x + f_off[None, :], mask=m,
                         other=float("nan"))
            if COMPUTE_F64:
                xv = xv.to(tl.float64)
            else:
                xv = xv.to(tl.float32)
            w0 += _pack4(xv, tb, F, f_off, f_ok)
            if WORDS > 1:
                w1 += _pack4(xv, tb + 4 * F, F, f_off, f_ok)
            if WORDS > 2:
                w2 += _pack4(xv, tb + 8 * F, F, f_off, f_ok)
            if WORDS > 3:
                w3 += _pack4(xv, tb + 12 * F, F, f_off, f_ok)
            if WORDS > 4:
                w4 += _pack4(xv, tb + 16 * F, F, f_off, f_ok)
            if WORDS > 5:
                w5 += _pack4(xv, tb + 20 * F, F, f_off, f_ok)
            if WORDS > 6:
                w6 += _pack4(xv, tb + 24 * F, F, f_off, f_ok)
            if WORDS > 7:
                w7 += _pack4(xv, tb + 28 * F, F, f_off, f_ok)
        _flush4(w0, ge_ptr, j0, f_off, f_ok, EPT)
        if WORDS > 1:
            _flush4(w1, ge_ptr, j0 + 4, f_off, f_ok, EPT)
        if WORDS > 2:
            _flush4(w2, ge_ptr, j0 + 8, f_off, f_ok, EPT)
        if WORDS > 3:
            _flush4(w3, ge_ptr, j0 + 12, f_off, f_ok, EPT)
        if WORDS > 4:
            _flush4(w4, ge_ptr, j0 + 16, f_off, f_ok, EPT)
        if WORDS > 5:
            _flush4(w5, ge_ptr, j0 + 20, f_off, f_ok, EPT)
        if WORDS > 6:
            _flush4(w6, ge_ptr, j0 + 24, f_off, f_ok, EPT)
        if WORDS > 7:
            _flush4(w7, ge_ptr, j0 + 28, f_off, f_ok, EPT)


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
# "histogram" (per-program tl.histogram) is kept for comparison (slow for many bins on an H100);
# "compare_lanes" (per-lane packed counters, one cross-row reduction per 255 tiles) is unmeasured on
# GPU: bench/kernels_tune.py compares it with "compare" before "auto" may pick it
COMPARE_MAX_EDGES = 40
STRATEGY = "auto"
STRATEGIES = ("auto", "compare", "compare_lanes", "search_atomic", "histogram")
# compare_lanes on CUDA: rows per tile, features per program, most packed words (4 edges each) per
# program (more edges are split over edge groups), num_warps; programs per SM from PROGRAMS_PER_SM
LANES_BLOCK_N = 32
LANES_BLOCK_F = 32
LANES_MAX_WORDS = 4
LANES_WARPS = 4
LANES_FLUSH_TILES = 255  # tiles between cross-row reductions (8-bit counters: at most 255)


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


def _lanes(x: torch.Tensor, edges: torch.Tensor, cdt: torch.dtype, n: int, f: int, n_edges: int):
    """compare_lanes launch: (ge [F, E] int32 of #(x >= e_j), nan [F] int32)."""
    block_n, block_f, max_words, warps = LANES_BLOCK_N, LANES_BLOCK_F, LANES_MAX_WORDS, LANES_WARPS
    block_f = min(triton.next_power_of_2(f), block_f)
    block_n = max(1, min(triton.next_power_of_2(max(n, 1)), block_n))
    if x.device.type != "cuda":  # interpreter: small tiles, several edge groups
        block_n, max_words, warps = min(block_n, 16), 2, 4
    words_needed = triton.cdiv(n_edges + 1, 4)  # + the −inf edge that counts the non-NaN values
    eg = triton.cdiv(words_needed, max_words)
    words = triton.cdiv(words_needed, eg)
    if not 1 <= LANES_FLUSH_TILES <= 255:
        raise ValueError("LANES_FLUSH_TILES must be in 1..255 (8-bit counters)")
    ept = eg * 4 * words
    tab = torch.full((ept, f), float("inf"), dtype=cdt, device=x.device)
    tab[0] = float("-inf")
    tab[1:n_edges + 1] = edges.to(cdt).t()
    f_groups = triton.cdiv(f, block_f)
    n_tiles = triton.cdiv(max(n, 1), block_n)
    if x.device.type == "cuda":
        grid_r = max(1, min(n_tiles, (_sms(x.device) * PROGRAMS_PER_SM) // (f_groups * eg)))
    else:
        grid_r = max(1, min(n_tiles, 3))
    ge = torch.zeros((f, ept), dtype=torch.int32, device=x.device)
    _ge_lanes_kernel[(grid_r * eg, f_groups)](x, tab, ge, n, f, x.stride(0), triton.cdiv(n_tiles, grid_r),
                                               EG=eg, WORDS=words, EPT=ept, BLOCK_N=block_n, BLOCK_F=block_f,
                                               COMPUTE_F64=cdt == torch.float64, FLUSH=LANES_FLUSH_TILES,
                                               num_warps=warps)
    return ge[:, 1:n_edges + 1], n - ge[:, 0]


def bucketize_histogram_triton(x: torch.Tensor, edges: torch.Tensor, *, strategy: str | None = None):
    """(counts [F, E-1], nan [F], under [F], over [F]) int64, inputs validated by the caller.
    `strategy` overrides the module's STRATEGY (one of STRATEGIES)."""
    n, f = x.shape
    n_edges = edges.shape[1]
    if n >= 2**31 - 1:
        raise ValueError("bucketize_histogram (triton) counts in int32: split batches of 2^31 rows or more")
    cdt = torch.float64 if torch.float64 in (x.dtype, edges.dtype) else torch.float32
    x = x if x.stride(1) == 1 else x.contiguous()
    kf = (edges < float("inf")).sum(1).clamp_min(1).to(torch.int32)
    strategy = strategy or STRATEGY
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy == "auto":
        strategy = "compare" if n_edges <= COMPARE_MAX_EDGES else "search_atomic"
    if strategy == "compare_lanes":
        from driftd.kernels.reference.histogram import counts_from_ge

        ge, nan = _lanes(x, edges, cdt, n, f, n_edges)
        return counts_from_ge(ge.to(torch.int64), nan.to(torch.int64), n, kf.to(torch.int64))
    ep, block_f, block_n, grid_r, f_groups, tiles_per_prog = _config(n, f, n_edges, x.device)
    table = torch.full((f, ep), float("inf"), dtype=cdt, device=x.device)
    table[:, :n_edges] = edges.to(cdt)
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
