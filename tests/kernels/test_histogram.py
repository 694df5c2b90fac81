"""bucketize_histogram: Triton kernel (interpreter on CPU, compiled on CUDA) vs the torch reference,
the reference vs numpy searchsorted(side='right'), edge cases, bad inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from driftd.kernels import HistogramResult, bucketize_histogram

INF = float("inf")
# Triton runs through the interpreter on CPU tensors (TRITON_INTERPRET=1, tests/conftest.py), compiled on CUDA
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
DEVICES = ["cpu"] if INTERPRET else (["cuda"] if torch.cuda.is_available() else [])


def numpy_histogram(x: np.ndarray, edges: np.ndarray):
    """Oracle: per feature, searchsorted(finite edges, x, side='right') -> [under, bins..., over]."""
    n_feat, n_edges = edges.shape
    counts = np.zeros((n_feat, n_edges - 1), np.int64)
    nan = np.zeros(n_feat, np.int64)
    under = np.zeros(n_feat, np.int64)
    over = np.zeros(n_feat, np.int64)
    for f in range(n_feat):
        e = edges[f][edges[f] < np.inf]
        if len(e) == 0:
            e = edges[f][:1]
        v = x[:, f]
        nan[f] = np.isnan(v).sum()
        idx = np.searchsorted(e, v[~np.isnan(v)], side="right")
        c = np.bincount(idx, minlength=len(e) + 1)
        under[f], over[f] = c[0], c[len(e)]
        counts[f, : len(e) - 1] = c[1: len(e)]
    return counts, nan, under, over


def make_case(n, f, e, seed=0, specials=True, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g) * 1.5
    edges = torch.sort(torch.randn(f, e, generator=g), 1).values
    if f > 1 and e > 2:  # different finite-edge counts per feature (+inf padding)
        edges[1, e // 2:] = INF
    if f > 2 and e > 1:
        edges[2, 1:] = INF  # a single finite edge
    if specials and n >= 8:
        x[0, 0] = float("nan")
        x[1, -1] = INF
        x[2, 0] = -INF
        x[3, :] = edges[:, 0].clamp(-1e30, 1e30)  # ties on the first edge go up
        x[4, 0] = edges[0, -1]  # tie on the last edge: over
        x[5, -1] = float("nan")
    x = x.to(dtype)
    # edges representable in the data dtype so ties stay ties after the cast
    edges = edges.to(dtype).to(torch.float32)
    return x, edges


def assert_same(a: HistogramResult, b: HistogramResult):
    for name in ("counts", "nan", "under", "over"):
        ta, tb = getattr(a, name).cpu(), getattr(b, name).cpu()
        assert ta.dtype == torch.int64 and tb.dtype == torch.int64
        assert torch.equal(ta, tb), (name, ta, tb)


def test_docstring_convention():
    x = torch.tensor([[-INF], [0.0], [1.0], [1.5], [2.0], [INF], [float("nan")]])
    r = bucketize_histogram(x, torch.tensor([[1.0, 2.0, INF, INF]]), backend="torch")
    assert (r.under.item(), r.counts.tolist(), r.over.item(), r.nan.item()) == (2, [[2, 0, 0]], 2, 1)
    assert r.full().tolist() == [[2, 2, 0, 0, 2]]


@pytest.mark.parametrize("n,f,e", [(1, 1, 1), (1, 3, 4), (8, 1, 2), (257, 5, 9), (3000, 7, 11), (999, 3, 33), (200, 2, 257)])
def test_reference_matches_numpy_searchsorted(n, f, e):
    x, edges = make_case(n, f, e, seed=n + f + e, dtype=torch.float64)
    edges = edges.to(torch.float64)
    r = bucketize_histogram(x, edges, backend="torch")
    want = numpy_histogram(x.numpy(), edges.numpy())
    for got, w in zip((r.counts, r.nan, r.under, r.over), want):
        np.testing.assert_array_equal(got.numpy(), w)
    assert int(r.full().sum() + r.nan.sum()) == n * f


def test_reference_compiled_equals_eager(monkeypatch):
    # the default (compiled) CPU path and the eager fallback, both formulations of the eager one
    for e in (9, 40):
        x, edges = make_case(5000, 6, e, seed=e)
        a = bucketize_histogram(x, edges, backend="torch")
        monkeypatch.setenv("DRIFTD_KERNELS_COMPILE", "0")
        b = bucketize_histogram(x, edges, backend="torch")
        monkeypatch.delenv("DRIFTD_KERNELS_COMPILE")
        assert_same(a, b)
        want = numpy_histogram(x.double().numpy(), edges.double().numpy())
        np.testing.assert_array_equal(a.counts.numpy(), want[0])


# Triton strategies the shared cases below run with (kernels/triton/histogram.py STRATEGY): the
# measured default choice ("auto": compare up to 40 edges, else search + atomics) and the per-lane
# packed-counter compare kernel; test_every_triton_strategy forces each one on two cases
CASE_STRATEGIES = ["auto", "compare_lanes"]


@pytest.fixture
def strategy(request, monkeypatch):
    import driftd.kernels.triton.histogram as th

    monkeypatch.setattr(th, "STRATEGY", request.param)
    return request.param


@pytest.mark.parametrize("strategy", CASE_STRATEGIES, indirect=True)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("n,f,e", [(1, 1, 1), (1, 3, 2), (17, 1, 5), (300, 5, 9), (1100, 3, 33), (70, 2, 257), (64, 130, 3)])
def test_triton_matches_reference(device, dtype, n, f, e, strategy):
    x, edges = make_case(n, f, e, seed=7 * n + f, dtype=dtype)
    x, edges = x.to(device), edges.to(device)
    assert_same(bucketize_histogram(x, edges, backend="triton"), bucketize_histogram(x, edges, backend="torch"))


@pytest.mark.parametrize("strategy", CASE_STRATEGIES, indirect=True)
@pytest.mark.parametrize("device", DEVICES)
def test_triton_strided_rows_and_fp64(device, strategy):
    base, edges = make_case(400, 8, 6, seed=3)
    x = base.to(device)[::3]  # row stride 24, still unit column stride
    edges = edges.to(device)
    assert_same(bucketize_histogram(x, edges, backend="triton"), bucketize_histogram(x, edges, backend="torch"))
    x64 = x.double()
    assert_same(bucketize_histogram(x64, edges.double(), backend="triton"),
                bucketize_histogram(x64, edges.double(), backend="torch"))


@pytest.mark.parametrize("strategy", CASE_STRATEGIES, indirect=True)
def test_all_edges_padding_and_empty_batch(strategy):
    x = torch.tensor([[1.0, -INF], [INF, 0.0]])
    edges = torch.tensor([[INF, INF], [-INF, 0.0]])
    r = bucketize_histogram(x, edges, backend="torch")
    # feature 0 has no finite edge: its first +inf edge is the edge (x < inf under, x >= inf over)
    assert r.under.tolist() == [1, 0] and r.over.tolist() == [1, 1] and r.counts.tolist() == [[0], [1]]
    if INTERPRET:
        assert_same(bucketize_histogram(x, edges, backend="triton"), r)
    empty = bucketize_histogram(torch.zeros(0, 2), edges, backend="torch")
    assert empty.counts.shape == (2, 1) and int(empty.full().sum()) == 0


@pytest.mark.parametrize("bad,exc,msg", [
    (lambda: bucketize_histogram(torch.zeros(4, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0]])), ValueError, "sorted"),
    (lambda: bucketize_histogram(torch.zeros(4), torch.zeros(1, 2)), ValueError, "2-D"),
    (lambda: bucketize_histogram(torch.zeros(4, 3), torch.zeros(2, 2)), ValueError, "features"),
    (lambda: bucketize_histogram(torch.zeros(4, 2, dtype=torch.int64), torch.zeros(2, 2)), TypeError, "float"),
    (lambda: bucketize_histogram(torch.zeros(4, 2), torch.tensor([[0.0, float("nan")]] * 2)), ValueError, "NaN"),
    (lambda: bucketize_histogram([[1.0]], torch.zeros(1, 1)), TypeError, "Tensor"),
    (lambda: bucketize_histogram(torch.zeros(4, 1), torch.zeros(1, 1), backend="cuda"), ValueError, "backend"),
])
def test_bad_inputs(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        bad()


@pytest.mark.skipif(not INTERPRET, reason="runs Triton on CPU tensors (interpreter)")
def test_env_override(monkeypatch):
    import driftd.kernels.triton.histogram as th

    calls = []
    real = th.bucketize_histogram_triton
    monkeypatch.setattr(th, "bucketize_histogram_triton", lambda *a: calls.append(1) or real(*a))
    x, edges = make_case(50, 3, 4)
    bucketize_histogram(x, edges)  # auto on CPU: torch
    assert calls == []
    monkeypatch.setenv("DRIFTD_KERNELS", "triton")
    bucketize_histogram(x, edges)
    assert calls == [1]
    monkeypatch.setenv("DRIFTD_KERNELS", "torch")
    bucketize_histogram(x, edges, backend="triton")  # an explicit backend wins over the env
    assert calls == [1, 1]
    monkeypatch.setenv("DRIFTD_KERNELS", "gpu")
    with pytest.raises(ValueError, match="DRIFTD_KERNELS"):
        bucketize_histogram(x, edges)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("strategy", ["compare", "compare_lanes", "search_atomic", "histogram"])
def test_every_triton_strategy(device, strategy, monkeypatch):
    import driftd.kernels.triton.histogram as th

    monkeypatch.setattr(th, "STRATEGY", strategy)
    monkeypatch.setattr(th, "LANES_FLUSH_TILES", 2)  # compare_lanes: several flushes per program
    for n, f, e in ((300, 5, 9), (90, 3, 50)):
        x, edges = make_case(n, f, e, seed=n + e)
        x, edges = x.to(device), edges.to(device)
        assert_same(bucketize_histogram(x, edges, backend="triton"), bucketize_histogram(x, edges, backend="torch"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("n,f,e", [(4096, 1, 1), (5000, 3, 9), (4097, 7, 16), (9000, 2, 5)])
def test_eager_per_edge_counts_equal_the_blocked_compare(monkeypatch, dtype, n, f, e):
    """From PER_EDGE_MIN_ROWS rows the eager ge counts one edge at a time; same integers as the
    blocked [rows, F, E] compare (NaN, ±inf, ties on edges, +inf-padded edges, 1 column, 1 edge)."""
    from driftd.kernels.reference import histogram as ref

    x, edges = make_case(n, f, e, seed=n + e, dtype=dtype)
    x = x.float() if dtype in (torch.float16, torch.bfloat16) else x  # eager ge compares in fp32 / fp64
    edges = edges.to(x.dtype)
    per_edge = ref._ge_eager(x, edges)
    monkeypatch.setattr(ref, "PER_EDGE_MIN_ROWS", 2**40)  # the blocked compare
    blocked = ref._ge_eager(x, edges)
    for a, b in zip(per_edge, blocked):
        assert a.dtype == b.dtype == torch.int64 and torch.equal(a, b)
