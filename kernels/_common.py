"""Result types, input validation and backend dispatch shared by the kernels (no driftd imports).

Backend choice (`backend=` argument of every public function, or the ``DRIFTD_KERNELS`` environment
variable, which overrides ``"auto"`` only):

* ``"auto"``  — the Triton kernel when the tensors are on CUDA and Triton imports, else the torch reference;
* ``"triton"`` — the Triton kernel (on CPU tensors this needs ``TRITON_INTERPRET=1`` set before
  ``driftd.kernels`` is imported; the tests do that);
* ``"torch"`` — the torch reference (CPU or CUDA).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import torch

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
BACKENDS = ("auto", "triton", "torch")


@dataclass(frozen=True)
class HistogramResult:
    """Per-feature counts (all int64, on the input's device).

    counts [F, E-1]: interior bins, bin i = ``e_i <= x < e_{i+1}``; nan [F]; under [F]: ``x < e_0``;
    over [F]: ``x >= last finite edge``. Full PSI bin vector of a feature: ``[under, counts..., over]``.
    """

    counts: torch.Tensor
    nan: torch.Tensor
    under: torch.Tensor
    over: torch.Tensor

    def full(self) -> torch.Tensor:
        """[F, E+1] bin vector ``[under, counts..., over]`` (padded interior bins are 0)."""
        return torch.cat([self.under[:, None], self.counts, self.over[:, None]], dim=1)


@dataclass(frozen=True)
class MMDResult:
    """MMD² summed over bandwidths (floats), per-bandwidth values, σ² used, permutation p-value.

    ``bandwidths`` are the σ² values of ``exp(-‖x−y‖² / (2σ²))``. ``p_value`` is
    ``(1 + #{T_perm >= T_obs}) / (P + 1)`` on the summed unbiased statistic, ``None`` when P = 0.
    """

    mmd2_unbiased: float
    mmd2_biased: float
    bandwidths: list[float]
    p_value: float | None
    per_bandwidth_unbiased: list[float] = field(default_factory=list)
    per_bandwidth_biased: list[float] = field(default_factory=list)
    n_permutations: int = 0
    permutation_stats: torch.Tensor | None = None  # [P] float64 summed unbiased MMD² of each permutation


@functools.cache
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # pragma: no cover - depends on the installation
        return False
    return True


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def resolve_backend(backend: str, device: torch.device) -> str:
    """'triton' or 'torch' for a call on `device` (see module docstring)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        env = os.environ.get("DRIFTD_KERNELS", "auto").strip().lower() or "auto"
        if env not in BACKENDS:
            raise ValueError(f"DRIFTD_KERNELS must be one of {BACKENDS}, got {env!r}")
        backend = env
    if backend == "auto":
        return "triton" if device.type == "cuda" and triton_available() else "torch"
    if backend == "triton":
        if not triton_available():
            raise RuntimeError("backend='triton' but triton does not import")
        if device.type != "cuda" and not interpreting():
            raise RuntimeError("backend='triton' on CPU tensors needs TRITON_INTERPRET=1 set before import")
    return backend


def check_float(name: str, t, ndim: int) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32/float16/bfloat16/float64, got {t.dtype}")
    if t.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}")
