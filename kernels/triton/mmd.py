"""Triton tiled MMD²: kernels → launcher (public wrapper in driftd.kernels.mmd).

Two schedules over the upper block triangle of the (n+m)² kernel matrix of the pooled, centred
Z = X ∪ Y (K is symmetric; (n+m)² is never materialised), selected by the module constant
SCHEDULE or the launcher's ``schedule=`` keyword:

``"rowblock"`` (``_mmd_kernel``, the measured default): program I owns row block I and walks the
column blocks J >= I (off-diagonal tile pairs count twice). Per tile: ``S = Z_I Z_Jᵀ`` (tl.dot over
d in BLOCK_K chunks, fp32 accumulation; bf16 / fp16 operands stay in their dtype),
``d² = max(‖z_i‖² + ‖z_j‖² − 2S, 0)`` with the squared norms from the same rounded operands,
diagonal and out-of-range entries masked, then for every bandwidth
``K_b = exp2(d² · (−log2 e / 2σ_b²))`` reduced in the tile to the X·X, Y·Y, total sums (fp32 in the
tile, fp64 across tiles, atomically added at the end). Permutations: ``K_Σ = Σ_b K_b @ A_J``
accumulated over J in fp32 ([BLOCK, P+1] registers), plus the row sums for the mirrored tiles; at
the end ``1ᵀK A`` and ``diag(AᵀK A)`` contributions of block I go to global fp64 buffers.

``"tiles"`` (``_mmd_tile_kernel``): one program per [BM, BN] tile (or a persistent grid walking
them), tiles listed on the host in grouped order (GROUP row blocks at a time, column-major inside
the group) so that the tiles running at once share their Z row and column blocks in L2 (the
rowblock schedule re-reads both operand blocks of every tile from device memory once the
concurrent row blocks outgrow L2, e.g. n = m = 1e5 at d = 4096: 1 MB per operand block in bf16),
and all tiles do the same work (the rowblock programs range from 1 to n_blocks tiles). Tiles need
not be square: an entry (i, j) counts when i < j (weight 2; the diagonal is never computed), so
tiles crossing the diagonal are masked per entry. Sums are fp32 in the tile and fp64 across tiles
(atomics spread over SLOTS copies of the output, summed on the host, against same-address
contention). Permutations without a cross-tile accumulator: with K' the masked tile,
``M = K' @ A_J`` in chunks of PC columns, ``1ᵀK A += colsum(M) + rowsum(K')ᵀ A_I`` and
``diag(AᵀK A) += 2 · colsum(A_I ⊙ M)`` — one [BM, PC] fp32 accumulator at a time.

Permutation product dtype (PERM_DTYPE / ``perm_dtype=``), for bf16 / fp16 inputs (fp32 inputs
always use IEEE fp32 for both products): ``"tf32"`` — K_Σ and A in fp32, tf32 dot (the measured
default); ``"fp16"`` — A stored in fp16 (0/1 is exact) and K_Σ ∈ [0, NB] rounded to fp16 (the
same 2^-11 relative rounding as tf32's 10-bit mantissa, values below 2^-14 lose relative precision
as fp16 subnormals, i.e. an absolute error ≤ 2^-25 per entry), fp32 accumulation: the product runs
at the fp16 / bf16 tensor-core rate (twice tf32) and A_J moves half the bytes.

Consistent total: with permutations A gets one extra column of ones, so ``tot_all = 1ᵀK_Σ1`` goes
through the same rounded product as ``s1_all = 1ᵀK_Σ A`` and ``s2_all = diag(AᵀK_Σ A)``. The
permutation statistics use it: YY = tot − 2 s1 + s2 then cancels the rounding of K_Σ instead of
mixing an unrounded total with rounded s1 / s2 (with the unrounded total the error of T grows with
u · tot / (m(m−1)) instead of u · (XX/(n(n−1)) + YY/(m(m−1)) + 2 XY/(nm)), u = 2^-11).
"""

from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl


@triton.jit
def _mmd_kernel(z_ptr, sq_ptr, a_ptr, coef_ptr, obs_ptr, perm_ptr, N, n_x, D, stride_z, stride_a,
                NB: tl.constexpr, NBP: tl.constexpr, P1P: tl.constexpr, HAS_PERM: tl.constexpr,
                BLOCK: tl.constexpr, BLOCK_K: tl.constexpr, IEEE: tl.constexpr,
                PERM_F16: tl.constexpr = False, EVEN_K: tl.constexpr = False):
    pid = tl.program_id(0)
    n_blocks = tl.cdiv(N, BLOCK)
    i_blk = pid
    offs_i = i_blk * BLOCK + tl.arange(0, BLOCK)
    ok_i = offs_i < N
    isx_i = (offs_i < n_x) & ok_i
    sq_i = tl.load(sq_ptr + offs_i, mask=ok_i, other=0.0)
    offs_k = tl.arange(0, BLOCK_K)
    bidx = tl.arange(0, NBP)
    acc_xx = tl.zeros((NBP,), dtype=tl.float64)
    acc_yy = tl.zeros((NBP,), dtype=tl.float64)
    acc_tot = tl.zeros((NBP,), dtype=tl.float64)
    offs_p = tl.arange(0, P1P)
    macc = tl.zeros((BLOCK, P1P), dtype=tl.float32)
    rmirror = tl.zeros((BLOCK,), dtype=tl.float32)
    diag_s2 = tl.zeros((P1P,), dtype=tl.float32)
    for j_blk in range(i_blk, n_blocks):
        offs_j = j_blk * BLOCK + tl.arange(0, BLOCK)
        ok_j = offs_j < N
        isx_j = (offs_j < n_x) & ok_j
        s = tl.zeros((BLOCK, BLOCK), dtype=tl.float32)
        for k0 in range(0, D, BLOCK_K):
            kk = k0 + offs_k
            if EVEN_K:
                zi = tl.load(z_ptr + offs_i[:, None].to(tl.int64) * stride_z + kk[None, :], mask=ok_i[:, None], other=0.0)
                zj = tl.load(z_ptr + offs_j[:, None].to(tl.int64) * stride_z + kk[None, :], mask=ok_j[:, None], other=0.0)
            else:
                zi = tl.load(z_ptr + offs_i[:, None].to(tl.int64) * stride_z + kk[None, :],
                             mask=ok_i[:, None] & (kk[None, :] < D), other=0.0)
                zj = tl.load(z_ptr + offs_j[:, None].to(tl.int64) * stride_z + kk[None, :],
                             mask=ok_j[:, None] & (kk[None, :] < D), other=0.0)
            if IEEE:
                s = tl.dot(zi, tl.trans(zj), s, input_precision="ieee")
            else:
                s = tl.dot(zi, tl.trans(zj), s)
        sq_j = tl.load(sq_ptr + offs_j, mask=ok_j, other=0.0)
        d2 = tl.maximum(sq_i[:, None] + sq_j[None, :] - 2.0 * s, 0.0)
        valid = ok_i[:, None] & ok_j[None, :] & (offs_i[:, None] != offs_j[None, :])
        w = tl.where(j_blk == i_blk, 1.0, 2.0).to(tl.float64)
        ksum = tl.zeros((BLOCK, BLOCK), dtype=tl.float32)
        for b in tl.static_range(NB):
            c = tl.load(coef_ptr + b)
            kb = tl.where(valid, tl.exp2(d2 * c), 0.0)
            ksum += kb
            rowx = tl.sum(tl.where(isx_j[None, :], kb, 0.0), axis=1)
            rowall = tl.sum(kb, axis=1)
            xx = tl.sum(tl.where(isx_i, rowx, 0.0))
            tot = tl.sum(rowall)
            xany = tl.sum(tl.where(isx_i, rowall, 0.0))
            yy = tot - xany - tl.sum(rowx) + xx
            acc_xx += tl.where(bidx == b, xx.to(tl.float64) * w, 0.0)
            acc_yy += tl.where(bidx == b, yy.to(tl.float64) * w, 0.0)
            acc_tot += tl.where(bidx == b, tot.to(tl.float64) * w, 0.0)
        if HAS_PERM:
            aj = tl.load(a_ptr + offs_j[:, None].to(tl.int64) * stride_a + offs_p[None, :],
                         mask=ok_j[:, None], other=0.0)
            if IEEE:
                mt = tl.dot(ksum, aj, input_precision="ieee")
            elif PERM_F16:
                mt = tl.dot(ksum.to(tl.float16), aj)  # A fp16 (exact 0/1), fp32 accumulation
            else:
                mt = tl.dot(ksum, aj, input_precision="tf32")
            macc += mt
            if j_blk == i_blk:
                ai0 = tl.load(a_ptr + offs_i[:, None].to(tl.int64) * stride_a + offs_p[None, :],
                              mask=ok_i[:, None], other=0.0).to(tl.float32)
                diag_s2 = tl.sum(ai0 * mt, axis=0)
            else:
                rmirror += tl.sum(ksum, axis=1)
    tl.atomic_add(obs_ptr + bidx, acc_xx, mask=bidx < NB)
    tl.atomic_add(obs_ptr + NBP + bidx, acc_yy, mask=bidx < NB)
    tl.atomic_add(obs_ptr + 2 * NBP + bidx, acc_tot, mask=bidx < NB)
    if HAS_PERM:
        ai = tl.load(a_ptr + offs_i[:, None].to(tl.int64) * stride_a + offs_p[None, :],
                     mask=ok_i[:, None], other=0.0).to(tl.float32)
        s1 = tl.sum(macc, axis=0) + tl.sum(rmirror[:, None] * ai, axis=0)
        s2 = 2.0 * tl.sum(ai * macc, axis=0) - diag_s2
        tl.atomic_add(perm_ptr + offs_p, s1.to(tl.float64))
        tl.atomic_add(perm_ptr + P1P + offs_p, s2.to(tl.float64))


@triton.jit
def _mmd_tile_kernel(z_ptr, sq_ptr, a_ptr, coef_ptr, tiles_ptr, obs_ptr, perm_ptr, N, n_x, D, stride_z,
                     stride_a, n_tiles,
                     NB: tl.constexpr, NBP: tl.constexpr, P1P: tl.constexpr, PC: tl.constexpr,
                     HAS_PERM: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BLOCK_K: tl.constexpr,
                     IEEE: tl.constexpr, PERM_F16: tl.constexpr, EVEN_K: tl.constexpr, SLOTS: tl.constexpr):
    """One [BM, BN] tile of the upper triangle per loop step (grid = #tiles, or persistent)."""
    pid = tl.program_id(0)
    n_prog = tl.num_programs(0)
    offs_k = tl.arange(0, BLOCK_K)
    bidx = tl.arange(0, NBP)
    for t in range(pid, n_tiles, n_prog):
        i_blk = tl.load(tiles_ptr + 2 * t)
        j_blk = tl.load(tiles_ptr + 2 * t + 1)
        offs_i = i_blk * BM + tl.arange(0, BM)
        offs_j = j_blk * BN + tl.arange(0, BN)
        ok_i = offs_i < N
        ok_j = offs_j < N
        isx_i = (offs_i < n_x) & ok_i
        isx_j = (offs_j < n_x) & ok_j
        zi_ptrs = z_ptr + offs_i[:, None].to(tl.int64) * stride_z + offs_k[None, :]
        zj_ptrs = z_ptr + offs_j[:, None].to(tl.int64) * stride_z + offs_k[None, :]
        s = tl.zeros((BM, BN), dtype=tl.float32)
        for k0 in range(0, D, BLOCK_K):
            if EVEN_K:
                zi = tl.load(zi_ptrs + k0, mask=ok_i[:, None], other=0.0)
                zj = tl.load(zj_ptrs + k0, mask=ok_j[:, None], other=0.0)
            else:
                kok = (k0 + offs_k) < D
                zi = tl.load(zi_ptrs + k0, mask=ok_i[:, None] & kok[None, :], other=0.0)
                zj = tl.load(zj_ptrs + k0, mask=ok_j[:, None] & kok[None, :], other=0.0)
            if IEEE:
                s = tl.dot(zi, tl.trans(zj), s, input_precision="ieee")
            else:
                s = tl.dot(zi, tl.trans(zj), s)
        sq_i = tl.load(sq_ptr + offs_i, mask=ok_i, other=0.0)
        sq_j = tl.load(sq_ptr + offs_j, mask=ok_j, other=0.0)
        d2 = tl.maximum(sq_i[:, None] + sq_j[None, :] - 2.0 * s, 0.0)
        valid = ok_j[None, :] & (offs_i[:, None] < offs_j[None, :])  # i < j (so i < N too)
        slot = t % SLOTS
        t_xx = tl.zeros((NBP,), dtype=tl.float32)
        t_yy = tl.zeros((NBP,), dtype=tl.float32)
        t_tot = tl.zeros((NBP,), dtype=tl.float32)
        ksum = tl.zeros((BM, BN), dtype=tl.float32)
        for b in tl.static_range(NB):
            c = tl.load(coef_ptr + b)
            kb = tl.where(valid, tl.exp2(d2 * c), 0.0)
            if HAS_PERM:
                ksum += kb
            rowx = tl.sum(tl.where(isx_j[None, :], kb, 0.0), axis=1)
            rowall = tl.sum(kb, axis=1)
            xx = tl.sum(tl.where(isx_i, rowx, 0.0))
            tot = tl.sum(rowall)
            xany = tl.sum(tl.where(isx_i, rowall, 0.0))
            yy = tot - xany - tl.sum(rowx) + xx
            t_xx += tl.where(bidx == b, xx, 0.0)
            t_yy += tl.where(bidx == b, yy, 0.0)
            t_tot += tl.where(bidx == b, tot, 0.0)
        obase = obs_ptr + slot * (3 * NBP)
        bok = bidx < NB
        tl.atomic_add(obase + bidx, 2.0 * t_xx.to(tl.float64), mask=bok, sem="relaxed")
        tl.atomic_add(obase + NBP + bidx, 2.0 * t_yy.to(tl.float64), mask=bok, sem="relaxed")
        tl.atomic_add(obase + 2 * NBP + bidx, 2.0 * t_tot.to(tl.float64), mask=bok, sem="relaxed")
        if HAS_PERM:
            rsum = tl.sum(ksum, axis=1)  # [BM]: the mirrored tile's 1ᵀK_JI A_I weights
            if PERM_F16:
                kop = ksum.to(tl.float16)
            else:
                kop = ksum
            pbase = perm_ptr + slot * (2 * P1P)
            for pc in tl.static_range(P1P // PC):
                offs_p = pc * PC + tl.arange(0, PC)
                aj = tl.load(a_ptr + offs_j[:, None].to(tl.int64) * stride_a + offs_p[None, :],
                             mask=ok_j[:, None], other=0.0)
                ai = tl.load(a_ptr + offs_i[:, None].to(tl.int64) * stride_a + offs_p[None, :],
                             mask=ok_i[:, None], other=0.0).to(tl.float32)
                if IEEE:
                    mt = tl.dot(kop, aj, input_precision="ieee")
                elif PERM_F16:
                    mt = tl.dot(kop, aj)
                else:
                    mt = tl.dot(kop, aj, input_precision="tf32")
                s1 = tl.sum(mt, axis=0) + tl.sum(rsum[:, None] * ai, axis=0)
                s2 = 2.0 * tl.sum(ai * mt, axis=0)
                tl.atomic_add(pbase + offs_p, s1.to(tl.float64), sem="relaxed")
                tl.atomic_add(pbase + P1P + offs_p, s2.to(tl.float64), sem="relaxed")


# Defaults on CUDA (measured on an H100 for the rowblock schedule, see bench/README.md "Kernels";
# the tiles schedule and fp16 permutations are unmeasured on GPU: bench/kernels_tune.py compares them)
SCHEDULE = "rowblock"  # "rowblock" | "tiles"
PERM_DTYPE = "tf32"  # "tf32" | "fp16" (bf16 / fp16 inputs only; fp32 inputs use IEEE fp32)
# rowblock: (BLOCK, BLOCK_K, num_warps, num_stages) without / with permutations
CUDA_CONFIG = {False: (128, 64, 8, 3), True: (64, 64, 4, 3)}
# tiles: (BM, BN, BLOCK_K, num_warps, num_stages, GROUP, PC) without / with permutations
TILE_CONFIG = {False: (128, 128, 64, 8, 3, 8, 64), True: (128, 128, 64, 8, 3, 8, 64)}
PERSISTENT_PROGRAMS_PER_SM = 0  # tiles: 0 = one program per tile, k > 0 = persistent grid of k·SMs
SLOTS = 64  # tiles: copies of the fp64 outputs the atomics are spread over


def _config(z: torch.Tensor, p1: int):
    if z.device.type != "cuda":  # interpreter: small tiles
        return 16, 16, 4, 1
    block, block_k, warps, stages = CUDA_CONFIG[p1 > 1]
    return block, min(block_k, max(16, triton.next_power_of_2(z.shape[1]))), warps, stages


def _tile_config(z: torch.Tensor, p1: int):
    if z.device.type != "cuda":  # interpreter: small, non-square tiles (exercises the masks)
        return 16, 32, 16, 4, 1, 2, 16
    bm, bn, bk, warps, stages, group, pc = TILE_CONFIG[p1 > 1]
    return bm, bn, min(bk, max(16, triton.next_power_of_2(z.shape[1]))), warps, stages, group, pc


@functools.lru_cache(maxsize=16)
def tile_list(big_n: int, bm: int, bn: int, group: int, device: str) -> torch.Tensor:
    """int32 [T, 2] (row block, column block) of every [bm, bn] tile holding an entry i < j < big_n,
    in grouped order: `group` row blocks at a time, column-major inside the group."""
    nbm, nbn = triton.cdiv(big_n, bm), triton.cdiv(big_n, bn)
    ib = torch.arange(nbm, device=device)[:, None]
    jb = torch.arange(nbn, device=device)[None, :]
    need = (jb + 1) * bn - 1 > ib * bm  # some column of block J is right of some row of block I
    ij = need.nonzero()
    key = ((ij[:, 0] // group) * nbn + ij[:, 1]) * group + ij[:, 0] % group
    return ij[key.argsort()].to(torch.int32).contiguous()


def mmd2_sums_triton(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, n: int, bandwidths: list[float],
                     *, block: int | None = None, block_k: int | None = None, num_warps: int | None = None,
                     num_stages: int | None = None, schedule: str | None = None, perm_dtype: str | None = None,
                     block_n: int | None = None, group: int | None = None, perm_chunk: int | None = None,
                     persistent: int | None = None, even_k: bool | None = None):
    """Same sums as `reference.mmd.mmd2_sums_torch` (s1, s2, tot per bandwidth; s1_all, s2_all per
    column of A), from the Triton kernel, plus ``tot_all`` = 1ᵀK_Σ1 (fp64 scalar) computed through the
    permutation product like s1_all / s2_all (= tot.sum() up to that product's rounding; use it with
    s1_all / s2_all). fp64 inputs are computed in fp32 here.

    Keywords override the module defaults (for bench/kernels_tune.py): `schedule` ("rowblock" /
    "tiles"), `perm_dtype` ("tf32" / "fp16"), `block` (rowblock: BLOCK; tiles: BM), `block_n`
    (tiles: BN), `block_k`, `num_warps`, `num_stages`, `group`, `perm_chunk` (PC), `persistent`
    (programs per SM, 0 = one per tile), `even_k` (drop the d mask; default: tiles when d % block_k == 0, rowblock never)."""
    schedule = schedule or SCHEDULE
    perm_dtype = perm_dtype or PERM_DTYPE
    if schedule not in ("rowblock", "tiles"):
        raise ValueError(f"schedule must be 'rowblock' or 'tiles', got {schedule!r}")
    if perm_dtype not in ("tf32", "fp16"):
        raise ValueError(f"perm_dtype must be 'tf32' or 'fp16', got {perm_dtype!r}")
    dt = torch.promote_types(x.dtype, y.dtype)
    if dt == torch.float64:
        dt = torch.float32
    from driftd.kernels.reference.mmd import pooled_centred

    z = pooled_centred(x, y, torch.float32).to(dt).contiguous()  # centred in fp32, rounded once to dt
    sq = z.to(torch.float32).pow(2).sum(1).contiguous()  # norms of the rounded operands
    big_n, d = z.shape
    p1 = a.shape[1]
    has_perm = p1 > 1
    # with permutations, one more column of ones: tot_all = 1ᵀK_Σ1 through the same (rounded) product
    # as s1_all / s2_all, so that YY = tot − 2 s1 + s2 cancels consistently (see the module docstring)
    p1e = p1 + 1 if has_perm else p1
    ieee = dt == torch.float32
    perm_f16 = has_perm and not ieee and perm_dtype == "fp16"
    nb = len(bandwidths)
    nbp = max(2, triton.next_power_of_2(nb))
    coef = torch.tensor([-math.log2(math.e) / (2.0 * b) for b in bandwidths], dtype=torch.float32, device=z.device)
    if schedule == "tiles":
        bm, bn, bk, cw, cs, cg, pc = _tile_config(z, p1)
        bm, bn, bk = block or bm, block_n or bn, block_k or bk
        group, pc = group or cg, perm_chunk or pc
        pc = min(pc, max(16, triton.next_power_of_2(p1e)))
        p1p = triton.cdiv(p1e, pc) * pc
    else:
        cb, ck, cw, cs = _config(z, p1)
        bm, bk = block or cb, block_k or ck
        p1p = max(16, triton.next_power_of_2(p1e))
    if even_k is None:  # rowblock keeps its measured codegen (d mask) unless asked
        even_k = schedule == "tiles" and d % bk == 0
    even = bool(even_k)
    if even and d % bk:
        raise ValueError(f"even_k needs d % block_k == 0 (d={d}, block_k={bk})")
    a_dt = torch.float16 if perm_f16 else torch.float32
    ap = torch.zeros((big_n, p1p) if has_perm else (1, p1p), dtype=a_dt, device=z.device)
    if has_perm:
        ap[:, :p1] = a
        ap[:, p1] = 1
    if schedule == "tiles":
        tiles = tile_list(big_n, bm, bn, group, str(z.device))
        n_tiles = tiles.shape[0]
        per_sm = PERSISTENT_PROGRAMS_PER_SM if persistent is None else persistent
        if per_sm and z.device.type == "cuda":
            grid = (min(n_tiles, per_sm * torch.cuda.get_device_properties(z.device).multi_processor_count),)
        elif z.device.type != "cuda":  # interpreter: fewer programs than tiles (exercises the loop)
            grid = (max(1, min(n_tiles, 5)),)
        else:
            grid = (n_tiles,)
        obs = torch.zeros((SLOTS, 3 * nbp), dtype=torch.float64, device=z.device)
        perm = torch.zeros((SLOTS, 2 * p1p), dtype=torch.float64, device=z.device)
        _mmd_tile_kernel[grid](z, sq, ap, coef, tiles, obs, perm, big_n, n, d, z.stride(0), ap.stride(0), n_tiles,
                               NB=nb, NBP=nbp, P1P=p1p, PC=pc, HAS_PERM=has_perm, BM=bm, BN=bn, BLOCK_K=bk,
                               IEEE=ieee, PERM_F16=perm_f16, EVEN_K=even, SLOTS=SLOTS,
                               num_warps=num_warps or cw, num_stages=num_stages or cs)
        obs, perm = obs.sum(0), perm.sum(0)
    else:
        obs = torch.zeros(3 * nbp, dtype=torch.float64, device=z.device)
        perm = torch.zeros(2 * p1p, dtype=torch.float64, device=z.device)
        _mmd_kernel[(triton.cdiv(big_n, bm),)](
            z, sq, ap, coef, obs, perm, big_n, n, d, z.stride(0), ap.stride(0),
            NB=nb, NBP=nbp, P1P=p1p, HAS_PERM=has_perm, BLOCK=bm, BLOCK_K=bk, IEEE=ieee,
            PERM_F16=perm_f16, EVEN_K=even, num_warps=num_warps or cw, num_stages=num_stages or cs)
    xx, yy, tot = obs[:nb], obs[nbp:nbp + nb], obs[2 * nbp:2 * nbp + nb]
    cross = tot - xx - yy
    s1 = xx + cross / 2
    s2 = xx
    if has_perm:
        s1_all, s2_all, tot_all = perm[:p1], perm[p1p:p1p + p1], perm[p1]
    else:
        s1_all, s2_all, tot_all = s1.sum()[None], s2.sum()[None], tot.sum()
    return s1, s2, tot, s1_all, s2_all, tot_all
