"""Triton tiled MMD²: kernel → launcher (public wrapper in driftd.kernels.mmd).

Flash-attention-shaped: program I owns row block I of the pooled, centred Z = X ∪ Y and walks the
column blocks J >= I (the kernel matrix is symmetric: off-diagonal tile pairs count twice), so
only the upper block triangle is computed and (n+m)² is never materialised. Per tile:
``S = Z_I Z_Jᵀ`` (tl.dot over d in BLOCK_K chunks, fp32 accumulation; bf16 / fp16 operands stay in
their dtype), ``d² = max(‖z_i‖² + ‖z_j‖² − 2S, 0)`` with the squared norms from the same rounded
operands, diagonal and out-of-range entries masked, then for every bandwidth
``K_b = exp2(d² · (−log2 e / 2σ_b²))`` reduced in the tile to the X·X, Y·Y, total sums (fp32 in the
tile, fp64 across tiles, atomically added at the end). Permutations: ``K_Σ = Σ_b K_b`` (fp32; tf32 dot for
bf16 / fp16 inputs, IEEE fp32 for fp32 inputs) ``@ A_J`` (A in fp32) accumulated over J in fp32 ([BLOCK, P+1] registers), plus the row sums for
the mirrored tiles; at the end ``1ᵀK A`` and ``diag(AᵀK A)`` contributions of block I go to global
fp64 buffers with atomics.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl


@triton.jit
def _mmd_kernel(z_ptr, sq_ptr, a_ptr, coef_ptr, obs_ptr, perm_ptr, N, n_x, D, stride_z, stride_a,
                NB: tl.constexpr, NBP: tl.constexpr, P1P: tl.constexpr, HAS_PERM: tl.constexpr,
                BLOCK: tl.constexpr, BLOCK_K: tl.constexpr, IEEE: tl.constexpr):
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


# (BLOCK, BLOCK_K, num_warps, num_stages) on CUDA, without / with permutations
CUDA_CONFIG = {False: (128, 64, 8, 3), True: (64, 64, 4, 3)}


def _config(z: torch.Tensor, p1: int):
    if z.device.type != "cuda":  # interpreter: small tiles
        return 16, 16, 4, 1
    block, block_k, warps, stages = CUDA_CONFIG[p1 > 1]
    return block, min(block_k, max(16, triton.next_power_of_2(z.shape[1]))), warps, stages


def mmd2_sums_triton(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, n: int, bandwidths: list[float],
                     *, block: int | None = None, block_k: int | None = None, num_warps: int | None = None,
                     num_stages: int | None = None):
    """Same sums as `reference.mmd.mmd2_sums_torch` (s1, s2, tot per bandwidth; s1_all, s2_all per
    column of A), from the Triton kernel. fp64 inputs are computed in fp32 here."""
    dt = torch.promote_types(x.dtype, y.dtype)
    if dt == torch.float64:
        dt = torch.float32
    from driftd.kernels.reference.mmd import pooled_centred

    z = pooled_centred(x, y, torch.float32).to(dt).contiguous()  # centred in fp32, rounded once to dt
    sq = z.to(torch.float32).pow(2).sum(1).contiguous()  # norms of the rounded operands
    big_n, d = z.shape
    p1 = a.shape[1]
    has_perm = p1 > 1
    p1p = max(16, triton.next_power_of_2(p1))
    ap = torch.zeros((big_n, p1p) if has_perm else (1, p1p), dtype=torch.float32, device=z.device)
    if has_perm:
        ap[:, :p1] = a
    nb = len(bandwidths)
    nbp = max(2, triton.next_power_of_2(nb))
    coef = torch.tensor([-math.log2(math.e) / (2.0 * b) for b in bandwidths], dtype=torch.float32, device=z.device)
    obs = torch.zeros(3 * nbp, dtype=torch.float64, device=z.device)
    perm = torch.zeros(2 * p1p, dtype=torch.float64, device=z.device)
    cb, ck, cw, cs = _config(z, p1)
    block = block or cb
    block_k = block_k or ck
    grid = (triton.cdiv(big_n, block),)
    _mmd_kernel[grid](z, sq, ap, coef, obs, perm, big_n, n, d, z.stride(0), ap.stride(0),
                      NB=nb, NBP=nbp, P1P=p1p, HAS_PERM=has_perm, BLOCK=block, BLOCK_K=block_k,
                      IEEE=dt == torch.float32, num_warps=num_warps or cw, num_stages=num_stages or cs)
    xx, yy, tot = obs[:nb], obs[nbp:nbp + nb], obs[2 * nbp:2 * nbp + nb]
    cross = tot - xx - yy
    s1 = xx + cross / 2
    s2 = xx
    if has_perm:
        s1_all, s2_all = perm[:p1], perm[p1p:p1p + p1]
    else:
        s1_all, s2_all = s1.sum()[None], s2.sum()[None]
    return s1, s2, tot, s1_all, s2_all
