"""Torch reference of the fused bucketize-histogram: the CPU fallback and the test oracle.

Convention (design §2), per feature f with edges ``e_0 <= ... <= e_{E-1}`` padded on the right with
``+inf`` (k_f = number of edges below +inf, at least 1):

* ``under[f]``     = #(x < e_0)                      (includes -inf values)
* ``counts[f, i]`` = #(e_i <= x < e_{i+1}) for i < k_f - 1, and 0 for the padded bins i >= k_f - 1
* ``over[f]``      = #(x >= e_{k_f - 1})             (includes +inf values)
* ``nan[f]``       = #NaN (in no other count)

i.e. ``bin = searchsorted(edges[:k_f], x, side='right')`` with bin 0 = under and bin k_f = over.
Comparisons run in the promoted dtype of x and edges (fp16 / bf16 against fp32 edges compare in
fp32, exactly).

CPU formulation (the fastest measured on the 2-core dev machine, see bench/README.md "Kernels"):
compare-and-sum ``ge[f, j] = #(x[:, f] >= e[f, j])`` over blocks of 2048 rows, compiled once by
``torch.compile`` (inductor C++; dynamic shapes, so one compile serves every N / F / E); bins are
differences of ``ge``. Rows that do not fill a block are padded with NaN (uncounted by ``ge``;
`padded_blocks`). When no
compiler works (or ``DRIFTD_KERNELS_COMPILE=0``), an eager version runs: blocked compare-and-sum for
few edges, batched ``torch.searchsorted`` + ``bincount`` otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Iterator

import torch

log = logging.getLogger(__name__)

BLOCK_ROWS = 2048
MAX_CALL_ROWS = 32_768  # rows per compiled call: ~6 ms of GIL on the 2-core dev machine (see padded_blocks)
_compiled = None
_compile_failed = False
_lock = threading.Lock()


_eager_scopes = 0  # > 0 while an `eager_kernels()` block runs


def compile_enabled() -> bool:
    return _eager_scopes == 0 and os.environ.get("DRIFTD_KERNELS_COMPILE", "1") != "0" and not _compile_failed


@contextlib.contextmanager
def eager_kernels() -> Iterator[None]:
    """Run the CPU kernels eagerly (no torch.compile) inside the block, in every thread.

    For one-off jobs: compiling the CPU histogram and column summary costs ~8-13 s on the 2-core
    dev machine (more with a cold inductor cache), the eager kernels ~1 s more per 1M rows x 32
    columns than the compiled ones, so a short job finishes sooner without compiling (see
    `driftd check`). Results are identical (the eager kernels are the tests' oracle)."""
    global _eager_scopes
    with _lock:
        _eager_scopes += 1
    try:
        yield
    finally:
        with _lock:
            _eager_scopes -= 1


def padded_blocks(x: torch.Tensor, block_rows: int, *, copy_rows: int = 8192,
                  max_rows: int = MAX_CALL_ROWS) -> list[tuple[torch.Tensor, int]]:
    """Contiguous x [N, F] as pieces of whole `block_rows` blocks, each with the number of NaN rows
    appended to fill its last block, at most `max_rows` rows a piece (a multiple of `block_rows`).
    A block-aligned N is views only (no copy); a short N (< `copy_rows`) is copied once into one
    padded piece (one kernel call instead of two); a long N is views of its whole blocks plus one
    padded block for the rest.

    The compiled kernel holds the GIL while it runs (inductor's Python binding does not release
    it), so `max_rows` bounds how long one call stalls the server's event loop.

    >>> [(tuple(p.shape), pad) for p, pad in padded_blocks(torch.zeros(600, 3), 256)]
    [((768, 3), 168)]
    >>> [(tuple(p.shape), pad) for p, pad in padded_blocks(torch.zeros(9000, 3), 256, max_rows=4096)]
    [((4096, 3), 0), ((4096, 3), 0), ((768, 3), 0), ((256, 3), 216)]
    """
    n, f = x.shape
    main = (n // block_rows) * block_rows
    step = max(block_rows, max_rows // block_rows * block_rows)
    start = main if main == n or n >= min(copy_rows, step) else 0
    pieces = [(x[a:min(a + step, start)], 0) for a in range(0, start, step)]
    if start < n:
        padded = torch.full((-(-(n - start) // block_rows) * block_rows, f), float("nan"), dtype=x.dtype)
        padded[: n - start] = x[start:]
        pieces.append((padded, len(padded) - (n - start)))
    return pieces


def _ge_blocks(x: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [C*BLOCK_ROWS, F], e [F, E] (same dtype) -> (ge [F, E] int64, nan [F] int64).
    Edges laid out [F, E] here (the compare loop vectorises along one feature's edges): against
    [E, F], as the column summary has it, measured 1.2x faster at 1M x 32 with 9 edges but ~10 %
    slower at 100k x 128 with 255 edges, so the histogram keeps this layout."""
    xr = x.view(-1, BLOCK_ROWS, x.shape[1])
    ge = (xr[:, :, :, None] >= e[None, None]).sum(1, dtype=torch.int32).sum(0, dtype=torch.int64)
    return ge, torch.isnan(x).sum(0)


def _get_compiled():
    global _compiled
    if _compiled is None:
        with _lock:
            if _compiled is None:
                _compiled = torch.compile(_ge_blocks, dynamic=True)
    return _compiled


def _ge_compiled(x: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    global _compile_failed
    fn = _get_compiled()
    try:
        ge = torch.zeros(e.shape, dtype=torch.int64)
        nan = torch.zeros(x.shape[1], dtype=torch.int64)
        for piece, pad in padded_blocks(x, BLOCK_ROWS):
            g, c = fn(piece, e)
            ge += g
            nan += c - pad
        return ge, nan
    except Exception as exc:  # no working compiler: remember, log once, go eager
        _compile_failed = True
        log.warning("driftd.kernels: torch.compile of the CPU histogram failed (%s); using eager torch", exc)
        return _ge_eager(x, e)


PER_EDGE_MIN_ROWS = 4096  # eager ge: from this many rows, one pass per edge (see _ge_eager)


def count_columns(mask: torch.Tensor) -> torch.Tensor:
    """Per-column count of a bool [N, F] mask as int64. Summed as int32 first: a bool sum straight
    to int64 converts the whole mask to int64 first (2.4 vs 0.5 ms per 65,536 x 32 on one core)."""
    if mask.shape[0] < 2**31:
        return mask.sum(0, dtype=torch.int32).to(torch.int64)
    return mask.sum(0)


def _ge_eager(x: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n, f = x.shape
    n_e = e.shape[1]
    nan = count_columns(torch.isnan(x))
    if 0 < n_e <= 16 and PER_EDGE_MIN_ROWS <= n < 2**31:
        # one compare and one int32 count per edge over the whole block: no [rows, F, E] mask
        # (27 vs 38 ms per 65,536 x 32 block with 9 edges, one thread); E calls per block, so only
        # for blocks long enough that the per-call cost does not matter
        et = e.t().contiguous()
        return torch.stack([(x >= et[j]).sum(0, dtype=torch.int32) for j in range(n_e)], 1).to(torch.int64), nan
    if n_e <= 16:
        ge = torch.zeros((f, n_e), dtype=torch.int64, device=x.device)
        step = max(1, (1 << 22) // max(1, f * n_e))
        for s in range(0, n, step):
            # int32 partial sums (a block is < 2^31 rows): the bool -> int64 reduction was 1.8x slower
            ge += (x[s:s + step, :, None] >= e[None]).sum(0, dtype=torch.int32)
        return ge, nan
    # searchsorted(side='right') gives #(e <= x) = #(x >= e); NaN sorts past every edge, drop it
    idx = torch.searchsorted(e, x.t().contiguous(), right=True)
    idx = torch.where(torch.isnan(x.t()), 0, idx)
    off = torch.arange(f, device=x.device)[:, None] * (n_e + 1)
    cnt = torch.bincount((idx + off).reshape(-1), minlength=f * (n_e + 1)).view(f, n_e + 1)
    cnt[:, 0] -= nan  # NaN were put in slot 0
    # ge[j] = #(idx >= j + 1) = reverse cumulative sum of slots j+1..E
    ge = cnt.flip(1).cumsum(1).flip(1)[:, 1:]
    return ge, nan


def counts_from_ge(ge: torch.Tensor, nan: torch.Tensor, n: int, n_finite: torch.Tensor | None = None, *,
                   layout: tuple[torch.Tensor, torch.Tensor] | None = None):
    """(counts [F, E-1], nan, under, over) from ge[f, j] = #(x >= e_j) and the finite-edge counts
    (or their `bin_layout`, which callers with fixed edges compute once: the whole conversion is a
    handful of small-tensor ops, ~35 µs instead of ~90 µs on the 2-core dev machine)."""
    last, keep = bin_layout(n_finite, ge.shape[1]) if layout is None else layout
    ge, nan = ge.to(torch.int64), nan.to(torch.int64)
    over = ge.gather(1, last)[:, 0]
    under = (n - nan) - ge[:, 0]
    counts = (ge[:, :-1] - ge[:, 1:]) * keep  # padded bins (past the last finite edge) are 0
    return counts, nan, under, over


def bin_layout(n_finite: torch.Tensor, n_e: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(index of the last finite edge [F, 1], mask of the real interior bins [F, E-1]) for `counts_from_ge`."""
    last = (n_finite.to(torch.int64) - 1).clamp_min(0)[:, None]
    return last, torch.arange(n_e - 1, device=n_finite.device)[None, :] < last


def finite_edge_counts(edges: torch.Tensor) -> torch.Tensor:
    """k_f = number of edges below +inf (at least 1) per feature."""
    return (edges < float("inf")).sum(1).clamp_min(1)


def bucketize_histogram_torch(x: torch.Tensor, edges: torch.Tensor):
    """Reference histogram (inputs already validated). Returns (counts, nan, under, over)."""
    cdt = torch.promote_types(x.dtype, edges.dtype)
    if cdt in (torch.float16, torch.bfloat16):
        cdt = torch.float32
    xc = x.to(cdt).contiguous()
    e = edges.to(device=x.device, dtype=cdt).contiguous()
    n = x.shape[0]
    if x.device.type == "cpu" and compile_enabled() and n > 0:
        ge, nan = _ge_compiled(xc, e)
    else:
        ge, nan = _ge_eager(xc, e)
    return counts_from_ge(ge, nan, n, finite_edge_counts(e))
