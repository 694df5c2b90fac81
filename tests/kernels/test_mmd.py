"""mmd2 / centroid_cosine_distance: reference vs float64 numpy, Triton (interpreter / CUDA) vs
reference, permutation p-value vs a brute-force loop, median heuristic vs numpy, bounded memory."""

from __future__ import annotations

import os

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from driftd.kernels import centroid_cosine_distance, median_heuristic_sigma2, mmd2, permutation_indicators
from driftd.kernels.reference import mmd as ref

# Triton runs through the interpreter on CPU tensors (TRITON_INTERPRET=1, tests/conftest.py), compiled on CUDA
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
DEVICES = ["cpu"] if INTERPRET else (["cuda"] if torch.cuda.is_available() else [])
# (relative, absolute) tolerance of Triton vs the reference, per dtype
TOL = {torch.float32: (1e-4, 1e-6), torch.float16: (5e-3, 2e-4), torch.bfloat16: (3e-2, 2e-3)}
# permutation statistics: half inputs use a tf32 dot for K_Σ @ A on a GPU (2^-11 relative per entry,
# then cancellation in the MMD² difference): absolute tolerance (seen on an H100: up to 3e-3)
PERM_TOL = {torch.float32: (1e-3, 1e-5), torch.float16: (5e-2, 1e-2), torch.bfloat16: (5e-2, 2e-2)}


def numpy_mmd(x: np.ndarray, y: np.ndarray, sigma2s):
    """Textbook float64 formulas on full matrices: (unbiased, biased) summed over σ²."""
    z = np.concatenate([x, y])
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    n, m = len(x), len(y)
    unb = bia = 0.0
    for s2 in sigma2s:
        k = np.exp(-d2 / (2 * s2))
        kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
        unb += (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
        bia += kxx.mean() + kyy.mean() - 2 * kxy.mean()
    return unb, bia


def samples(n, m, d, seed=0, shift=0.3, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) + 3.0  # off-centre: exercises the centring
    y = torch.randn(m, d, generator=g, dtype=torch.float64) * 1.1 + 3.0 + shift
    return x.to(dtype), y.to(dtype)


@pytest.mark.parametrize("n,m,d", [(2, 2, 1), (5, 9, 3), (120, 77, 16), (1500, 700, 4)])
def test_reference_matches_float64_numpy(n, m, d):
    x, y = samples(n, m, d, seed=n)
    bws = [0.5, 2.0, 7.0]
    r = mmd2(x, y, bandwidths=bws, backend="torch")
    if n + m <= 300:
        unb, bia = numpy_mmd(x.numpy(), y.numpy(), bws)
        assert r.mmd2_unbiased == pytest.approx(unb, rel=1e-10, abs=1e-13)
        assert r.mmd2_biased == pytest.approx(bia, rel=1e-10, abs=1e-13)
        assert sum(r.per_bandwidth_unbiased) == pytest.approx(unb, rel=1e-10, abs=1e-13)
    else:  # too big for the dense numpy oracle here: small tiles vs one tile (tile bookkeeping)
        z = ref.pooled_centred(x, y, torch.float64)
        a = permutation_indicators(n, m, 0)
        one = ref.mmd2_sums_torch(z, a, n, bws, tile=4096)
        many = ref.mmd2_sums_torch(z, a, n, bws, tile=301)
        for u, v in zip(one, many):
            torch.testing.assert_close(u, v, rtol=1e-11, atol=0)
    assert r.p_value is None and r.bandwidths == bws


def test_median_heuristic_matches_numpy():
    x, y = samples(300, 200, 5, seed=1)
    z = np.concatenate([x.numpy(), y.numpy()])
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)[np.triu_indices(len(z), 1)]
    assert median_heuristic_sigma2(x, y) == pytest.approx(np.median(d2) / 2, rel=1e-12)
    r = mmd2(x, y, backend="torch")
    s2 = np.median(d2) / 2
    np.testing.assert_allclose(r.bandwidths, [s2 * c * c for c in (0.25, 0.5, 1, 2, 4)], rtol=1e-12)
    # beyond 1000 pooled rows: the documented seeded subsample
    x2, y2 = samples(900, 400, 3, seed=2)
    idx = torch.randperm(1300, generator=torch.Generator().manual_seed(5))[:1000].sort().values.numpy()
    zz = np.concatenate([x2.numpy(), y2.numpy()])[idx]
    d2 = ((zz[:, None] - zz[None]) ** 2).sum(-1)[np.triu_indices(1000, 1)]
    assert median_heuristic_sigma2(x2, y2, seed=5) == pytest.approx(np.median(d2) / 2, rel=1e-12)


def test_permutation_p_value_matches_brute_force_loop():
    n, m, d, p = 30, 22, 4, 60
    x, y = samples(n, m, d, seed=3, shift=0.25)
    bws = [1.0, 4.0]
    r = mmd2(x, y, bandwidths=bws, n_permutations=p, seed=11, backend="torch")
    a = permutation_indicators(n, m, p, seed=11)
    assert a.shape == (n + m, p + 1) and torch.all(a.sum(0) == n)
    z = torch.cat([x, y])
    brute = []
    for col in range(1, p + 1):
        sel = a[:, col].bool()
        brute.append(mmd2(z[sel], z[~sel], bandwidths=bws, backend="torch").mmd2_unbiased)
    brute = torch.tensor(brute, dtype=torch.float64)
    torch.testing.assert_close(r.permutation_stats, brute, rtol=1e-10, atol=1e-13)
    want = (1 + int((brute >= r.mmd2_unbiased).sum())) / (p + 1)
    assert r.p_value == pytest.approx(want) and 0 < r.p_value <= 1
    # same seed, same permutations, same p-value; strong shift -> smallest p-value
    assert mmd2(x, y, bandwidths=bws, n_permutations=p, seed=11, backend="torch").p_value == r.p_value
    strong = mmd2(x, y + 3, bandwidths=bws, n_permutations=p, seed=11, backend="torch")
    assert strong.p_value == pytest.approx(1 / (p + 1))


# Triton variants (kernels/triton/mmd.py module constants SCHEDULE, PERM_DTYPE): the measured
# default first, then the grouped-tile schedule and the fp16 permutation product
VARIANTS = [("rowblock", "tf32"), ("tiles", "tf32"), ("rowblock", "fp16"), ("tiles", "fp16")]


@pytest.fixture
def variant(request, monkeypatch):
    import driftd.kernels.triton.mmd as tm

    schedule, perm_dtype = request.param
    monkeypatch.setattr(tm, "SCHEDULE", schedule)
    monkeypatch.setattr(tm, "PERM_DTYPE", perm_dtype)
    return request.param


@pytest.mark.parametrize("variant", VARIANTS, indirect=True, ids="-".join)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("n,m,d,p", [(2, 3, 1, 0), (19, 14, 5, 0), (40, 27, 33, 25), (70, 45, 8, 3)])
def test_triton_matches_reference(device, dtype, n, m, d, p, variant):
    if p == 0 and variant[1] != "tf32":
        pytest.skip("PERM_DTYPE only matters with permutations")
    x, y = samples(n, m, d, seed=n + d, dtype=dtype)
    x, y = x.to(device), y.to(device)
    a = mmd2(x, y, n_permutations=p, seed=2, backend="triton")
    b = mmd2(x, y, n_permutations=p, seed=2, backend="torch")
    rtol, atol = TOL[dtype]
    assert a.bandwidths == b.bandwidths
    assert a.mmd2_unbiased == pytest.approx(b.mmd2_unbiased, rel=rtol, abs=atol)
    assert a.mmd2_biased == pytest.approx(b.mmd2_biased, rel=rtol, abs=atol)
    np.testing.assert_allclose(a.per_bandwidth_unbiased, b.per_bandwidth_unbiased, rtol=rtol, atol=atol)
    if p:
        prt, pat = PERM_TOL[dtype]
        torch.testing.assert_close(a.permutation_stats, b.permutation_stats, rtol=prt, atol=pat)
        # p-values agree up to permutations whose statistic ties T_obs within the tolerance
        close = ((b.permutation_stats - b.mmd2_unbiased).abs() <= 2 * (pat + prt * abs(b.mmd2_unbiased))).sum()
        assert abs(a.p_value - b.p_value) * (p + 1) <= int(close) + 1e-9


def _unbiased_from_sums(s1, s2, tot, n, m):
    return ref.stats_from_sums(s1, s2, tot, n, m)[0]


@pytest.mark.parametrize("schedule", ["rowblock", "tiles"])
@pytest.mark.parametrize("device", DEVICES)
def test_fp16_permutations_within_rounding_bound_and_same_p_value(device, schedule, monkeypatch):
    """PERM_DTYPE="fp16": K_Σ is rounded to fp16 before the product with A (A's 0/1 are exact): a
    relative error of at most u = 2^-11 per entry (round to nearest, 10 mantissa bits), or an absolute
    one of at most 2^-25 for entries below fp16's normal range (2^-14). s1, s2 and the total all go
    through that same rounded K_Σ (the ones column of A), so the unbiased statistic
    T = Σ_{i≠j} c_ij K_ij (c = 1/(n(n−1)) on X·X pairs, 1/(m(m−1)) on Y·Y, −1/(nm) on X·Y) moves by
    at most u · T_abs, T_abs = XX/(n(n−1)) + YY/(m(m−1)) + 2 XY/(nm) (K >= 0). The check allows
    1.5 · u · T_abs (fp32 rounding of K, exp2 and the fp32 tile sums on top) plus 1e-6 absolute
    (subnormal entries: ≤ 2^-25 each, ≤ 4 · 2^-25 after the normalisations). The oracle is the float64
    brute-force loop over the permutations on the same fp16-rounded centred operands the kernel uses;
    on this seeded data no permutation statistic lies within twice the bound of the observed one
    (asserted), so the p-values must be equal."""
    import driftd.kernels.triton.mmd as tm

    monkeypatch.setattr(tm, "SCHEDULE", schedule)
    monkeypatch.setattr(tm, "PERM_DTYPE", "fp16")
    n, m, d, p = 30, 22, 4, 19
    x, y = samples(n, m, d, seed=7, shift=0.25, dtype=torch.float16)
    bws = [1.0, 4.0]
    r = mmd2(x.to(device), y.to(device), bandwidths=bws, n_permutations=p, seed=11, backend="triton")
    zr = ref.pooled_centred(x, y, torch.float32).to(torch.float16).to(torch.float64)  # the kernel's operands
    a = permutation_indicators(n, m, p, seed=11)
    s1, s2, tot, s1_all, s2_all = ref.mmd2_sums_torch(zr, a, n, bws)
    brute = torch.tensor([mmd2(zr[a[:, c].bool()], zr[~a[:, c].bool()], bandwidths=bws, backend="torch").mmd2_unbiased
                          for c in range(p + 1)], dtype=torch.float64)
    torch.testing.assert_close(ref.stats_from_sums(s1_all, s2_all, tot.sum(), n, m)[0], brute, rtol=1e-10, atol=1e-13)
    xx, xy, yy = s2_all, s1_all - s2_all, tot.sum() - 2 * s1_all + s2_all
    bound = 1.5 * 2.0**-11 * (xx / (n * (n - 1)) + yy / (m * (m - 1)) + 2 * xy / (n * m)) + 1e-6
    err = (r.permutation_stats.cpu() - brute[1:]).abs()
    assert torch.all(err <= bound[1:]), (err / bound[1:]).max()
    assert torch.all((brute[1:] - brute[0]).abs() > 2 * (bound[1:] + bound[0])), "seeded data too close to a tie"
    want = (1 + int((brute[1:] >= brute[0]).sum())) / (p + 1)
    assert 1 / (p + 1) < want < 1  # a p-value that depends on the ordering, not an extreme
    assert r.p_value == want
    assert r.mmd2_unbiased == pytest.approx(float(brute[0]), rel=1e-4, abs=1e-6)  # no fp16 in the observed path


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bm,bn,group,persistent", [(16, 32, 2, 0), (32, 16, 1, 0), (16, 16, 3, 1)])
def test_tile_schedule_shapes(device, bm, bn, group, persistent):
    """Tiles schedule with non-square and square tiles: every pair i < j counted once (fp32, IEEE),
    against the float64 reference sums on the same operands."""
    import driftd.kernels.triton.mmd as tm

    n, m, d, p = 37, 29, 6, 5
    x, y = samples(n, m, d, seed=9, dtype=torch.float32)
    a = permutation_indicators(n, m, p, seed=4)
    bws = [0.7, 3.0]
    got = tm.mmd2_sums_triton(x.to(device), y.to(device), a.to(device), n, bws, schedule="tiles", block=bm,
                              block_n=bn, group=group, persistent=persistent)
    z = ref.pooled_centred(x, y, torch.float32).to(torch.float64)
    want = ref.mmd2_sums_torch(z, a.to(torch.float64), n, bws)
    for g, w in zip(got, (*want, want[2].sum())):  # + tot_all, through the permutation product
        torch.testing.assert_close(g.cpu(), w, rtol=2e-6, atol=1e-9)
    tiles = tm.tile_list(n + m, bm, bn, group, "cpu").long()
    cover = torch.zeros(n + m, n + m, dtype=torch.int64)
    for i_b, j_b in tiles.tolist():
        cover[i_b * bm:(i_b + 1) * bm, j_b * bn:(j_b + 1) * bn] += 1
    iu = torch.triu(torch.ones(n + m, n + m, dtype=torch.bool), 1)
    assert torch.all(cover[iu] == 1)  # each i < j in exactly one tile


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 tl.dot needs a GPU (broken in the interpreter)")
@pytest.mark.parametrize("variant", VARIANTS, indirect=True, ids="-".join)
def test_triton_bf16_on_gpu(variant):
    x, y = samples(3000, 2500, 64, seed=4, dtype=torch.bfloat16)
    a = mmd2(x.cuda(), y.cuda(), n_permutations=50, backend="triton")
    b = mmd2(x.cuda(), y.cuda(), n_permutations=50, backend="torch")
    rtol, atol = TOL[torch.bfloat16]
    assert a.mmd2_unbiased == pytest.approx(b.mmd2_unbiased, rel=rtol, abs=atol)
    assert a.mmd2_biased == pytest.approx(b.mmd2_biased, rel=rtol, abs=atol)


def test_centroid_cosine_distance():
    x, y = samples(50, 70, 6, seed=5)
    a, b = x.numpy().mean(0), y.numpy().mean(0)
    want = 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    assert centroid_cosine_distance(x, y) == pytest.approx(want, rel=1e-12)
    assert centroid_cosine_distance(x.float(), y.float()) == pytest.approx(want, rel=1e-4)
    assert np.isnan(centroid_cosine_distance(torch.zeros(3, 2), y[:, :2]))


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(x=torch.zeros(5, 3), y=torch.zeros(5, 4)), ValueError, "dimension"),
    (dict(x=torch.zeros(1, 3), y=torch.zeros(5, 3)), ValueError, "at least 2"),
    (dict(x=torch.zeros(5), y=torch.zeros(5, 3)), ValueError, "2-D"),
    (dict(x=torch.zeros(5, 3, dtype=torch.int32), y=torch.zeros(5, 3)), TypeError, "float"),
    (dict(x=torch.zeros(5, 3), y=torch.zeros(5, 3), bandwidths=[1.0, -1.0]), ValueError, "positive"),
    (dict(x=torch.zeros(5, 3), y=torch.zeros(5, 3), n_permutations=-1), ValueError, "n_permutations"),
])
def test_bad_inputs(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        mmd2(**kwargs)


def test_cpu_memory_is_bounded_by_the_tiles():
    """n = m = 4000: one dense fp32 (n+m)² matrix is 256 MB (x5 bandwidths 1.28 GB); the tiled
    reference must stay far below that (bound: tiles [5, 1024, 1024] fp32 = 21 MB, a few of them, + operands)."""
    code = r"""
import json, resource, torch
torch.set_num_threads(1)
from driftd.kernels import mmd2
x = torch.randn(4000, 16); y = torch.randn(4000, 16) + 0.1
mmd2(x[:50], y[:50], backend="torch")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = mmd2(x, y, n_permutations=8, backend="torch")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"delta_mb": (after - before) / 1024, "mmd": r.mmd2_unbiased}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    n_total = 8000
    dense_mb = n_total * n_total * 4 / 2**20
    tile_mb = (2 * 5 + 4) * ref.TILE * ref.TILE * 4 / 2**20
    assert res["delta_mb"] < tile_mb + 40 < dense_mb / 2, res
