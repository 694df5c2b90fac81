"""Monitor schema: the named inputs of one model lane, in a fixed column order.

Wire layout (see proto/driftd/v1/monitor.proto):

* numeric features   -> one float tensor ``[N, len(numeric)]`` (fp32/fp16/bf16/fp64), columns in schema order;
* categorical features -> one integer tensor ``[N, len(categorical)]`` of category *codes* (int32/int64);
  ``categories`` optionally names codes ``0..K-1``; a code the baseline never saw counts as unseen;
* embedding blocks   -> one float tensor ``[N, dim]`` per block;
* score outputs      -> one float tensor ``[N, len(scores)]``.

>>> s = Schema(numeric=(NumericFeature("age", valid_min=0, valid_max=130),))
>>> s.validate()
>>> s.column_names
('age',)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum

from driftd.server.domain.errors import FieldViolation, InvalidArgument

NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.\-]{0,127}$")
MAX_COLUMNS = 4096
MAX_EMBEDDING_DIM = 65536
MAX_CATEGORIES = 100_000


class ScoreKind(str, Enum):
    PROBABILITY = "probability"  # in [0, 1]; positive when >= positive_threshold
    REGRESSION = "regression"


@dataclass(frozen=True)
class NumericFeature:
    name: str
    valid_min: float | None = None  # inclusive; None = unbounded
    valid_max: float | None = None  # inclusive; None = unbounded


@dataclass(frozen=True)
class CategoricalFeature:
    name: str
    categories: tuple[str, ...] = ()  # display names of codes 0..K-1; empty = any non-negative code


@dataclass(frozen=True)
class EmbeddingBlock:
    name: str
    dim: int


@dataclass(frozen=True)
class ScoreOutput:
    name: str
    kind: ScoreKind = ScoreKind.PROBABILITY
    positive_threshold: float = 0.5


@dataclass(frozen=True)
class Schema:
    numeric: tuple[NumericFeature, ...] = ()
    categorical: tuple[CategoricalFeature, ...] = ()
    embeddings: tuple[EmbeddingBlock, ...] = ()
    scores: tuple[ScoreOutput, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for group in (self.numeric, self.categorical, self.embeddings, self.scores) for c in group)

    @property
    def is_empty(self) -> bool:
        return not self.column_names

    def violations(self, prefix: str = "schema") -> list[FieldViolation]:
        """Every problem with this schema, each naming its field path (empty list = valid)."""
        out: list[FieldViolation] = []
        if self.is_empty:
            out.append(FieldViolation(prefix, "schema has no columns: give at least one numeric, categorical, embedding or score column"))
            return out
        if len(self.column_names) > MAX_COLUMNS:
            out.append(FieldViolation(prefix, f"schema has {len(self.column_names)} columns; the limit is {MAX_COLUMNS}"))
        seen: dict[str, str] = {}
        groups = (("numeric", self.numeric), ("categorical", self.categorical), ("embeddings", self.embeddings), ("scores", self.scores))
        for group_name, group in groups:
            for i, col in enumerate(group):
                path = f"{prefix}.{group_name}[{i}]"
                if not NAME_RE.match(col.name or ""):
                    out.append(FieldViolation(f"{path}.name", f"invalid column name {col.name!r}: use 1-128 characters [A-Za-z0-9_.-], starting with a letter or '_'"))
                elif col.name in seen:
                    out.append(FieldViolation(f"{path}.name", f"duplicate column name {col.name!r} (also at {seen[col.name]})"))
                else:
                    seen[col.name] = path
                out.extend(_column_violations(col, path))
        return out

    def validate(self, prefix: str = "schema") -> None:
        problems = self.violations(prefix)
        if problems:
            raise InvalidArgument(problems)


def _finite_or_none(v: float | None) -> bool:
    return v is None or math.isfinite(v)


def _column_violations(col: object, path: str) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if isinstance(col, NumericFeature):
        if not _finite_or_none(col.valid_min):
            out.append(FieldViolation(f"{path}.valid_min", f"must be finite, got {col.valid_min}"))
        if not _finite_or_none(col.valid_max):
            out.append(FieldViolation(f"{path}.valid_max", f"must be finite, got {col.valid_max}"))
        if (col.valid_min is not None and col.valid_max is not None and _finite_or_none(col.valid_min)
                and _finite_or_none(col.valid_max) and col.valid_min > col.valid_max):
            out.append(FieldViolation(f"{path}.valid_max", f"valid_max {col.valid_max} is below valid_min {col.valid_min}"))
    elif isinstance(col, CategoricalFeature):
        if len(col.categories) > MAX_CATEGORIES:
            out.append(FieldViolation(f"{path}.categories", f"{len(col.categories)} categories; the limit is {MAX_CATEGORIES}"))
        dupes = sorted({c for c in col.categories if col.categories.count(c) > 1}) if len(col.categories) <= 10_000 else []
        if dupes:
            out.append(FieldViolation(f"{path}.categories", f"duplicate categories {dupes[:5]}"))
    elif isinstance(col, EmbeddingBlock):
        if not (1 <= col.dim <= MAX_EMBEDDING_DIM):
            out.append(FieldViolation(f"{path}.dim", f"dim must be in [1, {MAX_EMBEDDING_DIM}], got {col.dim}"))
    elif isinstance(col, ScoreOutput):
        if not isinstance(col.kind, ScoreKind):
            out.append(FieldViolation(f"{path}.kind", f"unknown score kind {col.kind!r}"))
        if not math.isfinite(col.positive_threshold):
            out.append(FieldViolation(f"{path}.positive_threshold", "must be finite"))
    return out
