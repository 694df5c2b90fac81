"""`Batch`: the rows of one write, in the schema's wire layout, as the engine consumes them.

The transport decodes a protobuf `Batch` into this plain dataclass (numpy arrays or torch tensors,
no copies needed):

* ``numeric``      float ``[N, len(schema.numeric)]`` (fp16 / bf16 / fp32 / fp64; bf16 as a torch
  tensor — numpy has no bf16, so widen uint16 bit patterns before building a Batch);
* ``categorical``  integer ``[N, len(schema.categorical)]`` category codes (negative = missing);
* ``embeddings``   ``{block name: float [N, dim]}`` for every embedding block of the schema;
* ``scores``       float ``[N, len(schema.scores)]``;
* ``latency_ms``   float ``[N]`` (optional), ``status_codes`` integer ``[N]`` (optional, >= 500 is an
  error), ``request_ids`` N strings (optional; needed to join delayed labels);
* ``event_time``   unix seconds of the rows (optional; the engine uses its clock when absent).

A group the schema does not have may be None. `validate(schema)` names every problem as a
`FieldViolation` (``batch.numeric``, ``batch.embeddings["text"]`` ...) so the transport can answer
INVALID_ARGUMENT. NaN / inf values are data (counted as data-quality signals), never errors.

>>> import numpy as np
>>> from driftd.server.domain.schema import Schema, NumericFeature
>>> s = Schema(numeric=(NumericFeature("a"), NumericFeature("b")))
>>> b = Batch(numeric=np.zeros((3, 2), dtype=np.float32))
>>> b.validate(s); b.n_rows
3
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from driftd.server.domain.errors import FieldViolation, InvalidArgument
from driftd.server.domain.schema import Schema

_FLOAT_TORCH = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def as_numpy(a: Any) -> np.ndarray | None:
    """numpy view of an array / tensor (bf16 / fp16 tensors widen to fp32)."""
    if a is None:
        return None
    if isinstance(a, torch.Tensor):
        t = a.detach().cpu()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.to(torch.float32)
        return t.numpy()
    return np.asarray(a)


def to_tensor(a: Any) -> torch.Tensor:
    """torch view of an array (read-only numpy buffers from the codec are fine: nothing writes to them)."""
    if isinstance(a, torch.Tensor):
        return a
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.as_tensor(np.asarray(a))


def all_finite(a: np.ndarray) -> bool:
    """True when a float block has no NaN / ±inf: one cheap column-sum pass (a sum is NaN / inf when
    any element is; an overflowing sum of finite values just reports False, sending the caller to
    its exact slow path)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.isfinite(a.sum(0)).all())


def _is_float(a: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return a.dtype in _FLOAT_TORCH
    return np.asarray(a).dtype.kind == "f"


def _is_int(a: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return not a.is_floating_point() and not a.is_complex() and a.dtype != torch.bool
    return np.asarray(a).dtype.kind in "iu"


@dataclass
class Batch:
    numeric: Any = None
    categorical: Any = None
    embeddings: Mapping[str, Any] = field(default_factory=dict)
    scores: Any = None
    latency_ms: Any = None
    status_codes: Any = None
    request_ids: Sequence[str] | None = None
    event_time: float | None = None

    @property
    def n_rows(self) -> int:
        # a batch is never mutated once built, and this is asked several times per batch on the
        # ingest path: computed once (by hand: functools.cached_property takes a lock on 3.11)
        n = self.__dict__.get("_n_rows")
        if n is None:
            n = self.__dict__["_n_rows"] = self._count_rows()
        return n

    def _count_rows(self) -> int:
        for a in (self.numeric, self.categorical, *self.embeddings.values(), self.scores, self.latency_ms, self.status_codes):
            if a is not None:
                return int(a.shape[0])
        return len(self.request_ids) if self.request_ids is not None else 0

    def violations(self, schema: Schema, prefix: str = "batch") -> list[FieldViolation]:
        out: list[FieldViolation] = []
        n = self.n_rows

        def check_2d(value, name: str, width: int, want_float: bool) -> None:
            path = f"{prefix}.{name}"
            if width == 0:
                if value is not None and int(value.shape[0]) and int(np.prod(value.shape[1:])) != 0:
                    out.append(FieldViolation(path, f"the schema has no {name} columns; leave it empty"))
                return
            if value is None:
                out.append(FieldViolation(path, f"missing: the schema has {width} {name} column(s)"))
                return
            if len(value.shape) != 2 or int(value.shape[1]) != width:
                out.append(FieldViolation(f"{path}.shape", f"expected [N, {width}], got {list(value.shape)}"))
            elif int(value.shape[0]) != n:
                out.append(FieldViolation(f"{path}.shape", f"has {value.shape[0]} rows, the batch has {n}"))
            if want_float and not _is_float(value):
                out.append(FieldViolation(f"{path}.dtype", f"expected a float dtype, got {value.dtype}"))
            if not want_float and not _is_int(value):
                out.append(FieldViolation(f"{path}.dtype", f"expected an integer dtype (category codes), got {value.dtype}"))

        check_2d(self.numeric, "numeric", len(schema.numeric), True)
        check_2d(self.categorical, "categorical", len(schema.categorical), False)
        check_2d(self.scores, "scores", len(schema.scores), True)
        blocks = {b.name: b for b in schema.embeddings}
        for name in self.embeddings:
            if name not in blocks:
                out.append(FieldViolation(f'{prefix}.embeddings["{name}"]', f"unknown embedding block; the schema has {sorted(blocks)}"))
        for name, block in blocks.items():
            path = f'{prefix}.embeddings["{name}"]'
            value = self.embeddings.get(name)
            if value is None:
                out.append(FieldViolation(path, f"missing embedding block (dim {block.dim})"))
                continue
            if len(value.shape) != 2 or int(value.shape[1]) != block.dim or int(value.shape[0]) != n:
                out.append(FieldViolation(f"{path}.shape", f"expected [{n}, {block.dim}], got {list(value.shape)}"))
            if not _is_float(value):
                out.append(FieldViolation(f"{path}.dtype", f"expected a float dtype, got {value.dtype}"))
        for name, want_float in (("latency_ms", True), ("status_codes", False)):
            value = getattr(self, name)
            if value is None:
                continue
            if tuple(value.shape) != (n,):
                out.append(FieldViolation(f"{prefix}.{name}.shape", f"expected [{n}], got {list(value.shape)}"))
            if (want_float and not (_is_float(value) or _is_int(value))) or (not want_float and not _is_int(value)):
                out.append(FieldViolation(f"{prefix}.{name}.dtype", f"unexpected dtype {value.dtype}"))
        if self.request_ids is not None and len(self.request_ids) != n:
            out.append(FieldViolation(f"{prefix}.request_ids", f"has {len(self.request_ids)} ids, the batch has {n} rows"))
        return out

    def validate(self, schema: Schema, prefix: str = "batch") -> None:
        problems = self.violations(schema, prefix)
        if problems:
            raise InvalidArgument(problems)

    def slice(self, start: int, stop: int) -> "Batch":
        """Rows [start, stop) (views where possible)."""
        def s(a):
            return None if a is None else a[start:stop]
        return Batch(numeric=s(self.numeric), categorical=s(self.categorical),
                     embeddings={k: v[start:stop] for k, v in self.embeddings.items()}, scores=s(self.scores),
                     latency_ms=s(self.latency_ms), status_codes=s(self.status_codes),
                     request_ids=None if self.request_ids is None else list(self.request_ids[start:stop]),
                     event_time=self.event_time)


def concat_batches(batches: Sequence[Batch]) -> Batch:
    """One batch of all rows, in order (all batches must carry the same groups)."""
    first = batches[0]

    def cat(name):
        vals = [getattr(b, name) for b in batches]
        if vals[0] is None:
            return None
        return np.concatenate([as_numpy(v) for v in vals])

    ids = None if first.request_ids is None else [r for b in batches for r in b.request_ids]
    return Batch(numeric=cat("numeric"), categorical=cat("categorical"),
                 embeddings={k: np.concatenate([as_numpy(b.embeddings[k]) for b in batches]) for k in first.embeddings},
                 scores=cat("scores"), latency_ms=cat("latency_ms"), status_codes=cat("status_codes"), request_ids=ids,
                 event_time=first.event_time)
