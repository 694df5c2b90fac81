"""Baselines: immutable, versioned reference summaries built from reference data.

`build_baseline(schema, reference_batch, ...)` summarises the reference:

* numeric features and score outputs (`ColumnsBaseline`): quantile bin edges and bin counts (see
  `binning` for the B-bin / ties convention), NaN counts, mean / std / quartiles, Tukey far-out
  fences Q1 − 3·IQR, Q3 + 3·IQR (the outlier definition), out-of-range and outlier counts, a
  seeded bottom-k reservoir of ≤ `reservoir_size` rows (KS / W1), and for probability scores the
  positive count (score ≥ positive_threshold). The baseline reservoir is 4× the window
  reservoir (`baseline_reservoir_factor`): KS / W1 against a fixed reference sample inherit that
  sample's own noise in every window, and a bigger reference sample keeps it small;
* categorical features (`CategoricalBaseline`): counts per code 0..K−1 plus one "other" bin
  (K = number of named categories, or max code + 1 when the schema names none), missing counts;
* embedding blocks (`EmbeddingBaseline`): a seeded sample of ≤ `embedding_sample_size` rows, the
  exact centroid, and the RBF bandwidths σ²·{0.25, 0.5, 1, 2, 4}² from the median heuristic
  (σ² = median pairwise squared distance of the reference sample / 2). Windows are compared with
  the baseline's bandwidths, so MMD values are comparable across windows and with the thresholds;
* thresholds calibrated from the reference by shards (`thresholds` documents the scheme);
* metadata: model_id, data_hash (sha256 of the reference content, see `reference_hash`),
  git_commit, created_at (UTC ISO 8601), source, row_count, format version.

Serialisation (`to_bytes` / `from_bytes`): ``b"DRIFTDBL"`` + uint32 format version + uint64 JSON
header length + UTF-8 JSON header (everything scalar, plus an index ``{array name: dtype, shape,
offset, nbytes}``) + the raw little-endian array bytes. A Baseline is frozen and its arrays are
read-only: activating a new baseline never changes an old one.

>>> import numpy as np
>>> from driftd.server.domain.schema import Schema, NumericFeature
>>> from driftd.server.domain.batch import Batch
>>> rng = np.random.default_rng(0)
>>> s = Schema(numeric=(NumericFeature("x"),))
>>> b = build_baseline(s, Batch(numeric=rng.normal(size=(1000, 1))), model_id="m", config=BaselineConfig(calibration_rounds=20))
>>> b2 = Baseline.from_bytes(b.to_bytes())
>>> b2.metadata == b.metadata and np.array_equal(b2.numeric.edges, b.numeric.edges)
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np

from driftd.server.domain import binning, calibration
from driftd.server.domain.batch import Batch, as_numpy
from driftd.server.domain import blob as blob_format
from driftd.server.domain.errors import FailedPrecondition
from driftd.server.domain.reservoir import RowReservoir, row_keys
from driftd.server.domain.schema import (CategoricalFeature, EmbeddingBlock, NumericFeature, Schema, ScoreKind,
                                          ScoreOutput)
from driftd.server.domain.thresholds import Threshold, family_multipliers

MAGIC = b"DRIFTDBL"
FORMAT_VERSION = 1
MIN_REFERENCE_ROWS = 20


@dataclass(frozen=True)
class BaselineConfig:
    numeric_bins: int = 10
    reservoir_size: int = 2048
    baseline_reservoir_factor: int = 4  # the baseline keeps factor × reservoir_size reference rows for KS / W1
    embedding_sample_size: int = 1024
    mmd_bandwidth_multipliers: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    calibration_rounds: int = 200
    calibration_shards: int = 10
    calibration_max_rows: int = 200_000
    mmd_calibration_rounds: int = 40
    mmd_calibration_max_half: int = 512
    outlier_iqr_factor: float = 3.0
    seed: int = 0

    @classmethod
    def from_statistics(cls, stats: Any, **overrides) -> "BaselineConfig":
        """From a monitor's `StatisticsConfig` (bins, reservoir and sample sizes, bandwidths)."""
        return cls(numeric_bins=stats.numeric_bins, reservoir_size=stats.reservoir_size,
                   embedding_sample_size=stats.embedding_sample_size,
                   mmd_bandwidth_multipliers=tuple(stats.mmd_bandwidth_multipliers), **overrides)


@dataclass(frozen=True)
class BaselineMetadata:
    model_id: str
    data_hash: str
    git_commit: str
    created_at: str
    source: str
    row_count: int
    format_version: int = FORMAT_VERSION


@dataclass(frozen=True)
class ColumnsBaseline:
    """Reference summary of a float block (numeric features or score outputs), one entry per column."""

    names: tuple[str, ...]
    edges: np.ndarray  # [F, E] float64, +inf padded
    n_edges: np.ndarray  # [F]
    counts: np.ndarray  # [F, E+1] int64: under, interior..., over
    nan_count: np.ndarray  # [F]
    mean: np.ndarray
    std: np.ndarray
    q1: np.ndarray
    q3: np.ndarray
    valid_min: np.ndarray  # [F] (-inf = unbounded)
    valid_max: np.ndarray  # [F] (+inf = unbounded)
    fence_lo: np.ndarray  # outlier fences
    fence_hi: np.ndarray
    out_of_range_count: np.ndarray
    outlier_count: np.ndarray
    positive_threshold: np.ndarray  # [F] (NaN = not a probability output)
    positive_count: np.ndarray  # [F]
    sample: np.ndarray  # [k, F] float64 reservoir rows (NaN = missing)
    row_count: int

    @property
    def valid(self) -> np.ndarray:
        return binning.valid_bins(self.n_edges, self.edges.shape[1])

    @property
    def finite_count(self) -> np.ndarray:
        return self.counts.sum(1)


@dataclass(frozen=True)
class CategoricalBaseline:
    names: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    n_codes: np.ndarray  # [F] K per column
    counts: np.ndarray  # [F, Kmax+1]: codes 0..K-1, then "other" at position K (padding beyond)
    missing_count: np.ndarray  # [F] negative codes
    row_count: int

    @property
    def valid(self) -> np.ndarray:
        pos = np.arange(self.counts.shape[1])[None, :]
        return pos <= self.n_codes[:, None]


@dataclass(frozen=True)
class EmbeddingBaseline:
    name: str
    sample: np.ndarray  # [k, dim] float32
    centroid: np.ndarray  # [dim] float64
    bandwidths: tuple[float, ...]  # σ² values
    row_count: int


@dataclass(frozen=True)
class Baseline:
    schema: Schema
    config: BaselineConfig
    metadata: BaselineMetadata
    numeric: ColumnsBaseline | None
    categorical: CategoricalBaseline | None
    embeddings: dict[str, EmbeddingBaseline]
    scores: ColumnsBaseline | None
    thresholds: dict[str, Threshold] = field(default_factory=dict)

    def threshold(self, key: str) -> Threshold | None:
        """Calibrated threshold by key: ``numeric.psi``, ``scores.ks``, ``categorical.chi2``,
        ``embedding.<block>.mmd2`` ..."""
        return self.thresholds.get(key)

    # -- serialisation ----------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        header: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "metadata": _asdict(self.metadata),
            "config": _asdict(self.config),
            "schema": schema_to_dict(self.schema),
            "thresholds": {k: t.to_json() for k, t in self.thresholds.items()},
            "groups": {},
        }
        for group in ("numeric", "scores", "categorical"):
            g = getattr(self, group)
            if g is None:
                continue
            meta = {}
            for f in fields(g):
                v = getattr(g, f.name)
                if isinstance(v, np.ndarray):
                    arrays[f"{group}.{f.name}"] = v
                else:
                    meta[f.name] = v
            header["groups"][group] = meta
        header["embeddings"] = {}
        for name, e in self.embeddings.items():
            arrays[f"embedding.{name}.sample"] = e.sample
            arrays[f"embedding.{name}.centroid"] = e.centroid
            header["embeddings"][name] = {"bandwidths": list(e.bandwidths), "row_count": e.row_count}
        return blob_format.pack(MAGIC, FORMAT_VERSION, header, arrays, sort_keys=True, allow_nan=False)

    @classmethod
    def from_bytes(cls, blob: bytes) -> "Baseline":
        header, arrays = blob_format.unpack(blob, MAGIC, FORMAT_VERSION, "baseline")
        groups = {}
        for group, meta in header["groups"].items():
            klass = CategoricalBaseline if group == "categorical" else ColumnsBaseline
            kw = dict(meta)
            for f in fields(klass):
                if f"{group}.{f.name}" in arrays:
                    kw[f.name] = arrays[f"{group}.{f.name}"]
            kw["names"] = tuple(kw["names"])
            if "categories" in kw:
                kw["categories"] = tuple(tuple(c) for c in kw["categories"])
            groups[group] = klass(**kw)
        embs = {name: EmbeddingBaseline(name, arrays[f"embedding.{name}.sample"], arrays[f"embedding.{name}.centroid"],
                                        tuple(m["bandwidths"]), m["row_count"])
                for name, m in header["embeddings"].items()}
        cfg = header["config"]
        cfg["mmd_bandwidth_multipliers"] = tuple(cfg["mmd_bandwidth_multipliers"])
        return _freeze(cls(schema=schema_from_dict(header["schema"]), config=BaselineConfig(**cfg),
                           metadata=BaselineMetadata(**header["metadata"]), numeric=groups.get("numeric"),
                           categorical=groups.get("categorical"), embeddings=embs, scores=groups.get("scores"),
                           thresholds={k: Threshold.from_json(v) for k, v in header["thresholds"].items()}))


def _asdict(obj) -> dict:
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def _freeze(b: Baseline) -> Baseline:
    for g in (b.numeric, b.scores, b.categorical, *b.embeddings.values()):
        if g is None:
            continue
        for f in fields(g):
            v = getattr(g, f.name)
            if isinstance(v, np.ndarray):
                v.setflags(write=False)
    for t in b.thresholds.values():
        t.warning.setflags(write=False)
        t.critical.setflags(write=False)
    return b


def schema_to_dict(s: Schema) -> dict:
    return {"numeric": [{"name": c.name, "valid_min": c.valid_min, "valid_max": c.valid_max} for c in s.numeric],
            "categorical": [{"name": c.name, "categories": list(c.categories)} for c in s.categorical],
            "embeddings": [{"name": c.name, "dim": c.dim} for c in s.embeddings],
            "scores": [{"name": c.name, "kind": c.kind.value, "positive_threshold": c.positive_threshold} for c in s.scores]}


def schema_from_dict(d: dict) -> Schema:
    return Schema(numeric=tuple(NumericFeature(c["name"], c.get("valid_min"), c.get("valid_max")) for c in d.get("numeric", ())),
                  categorical=tuple(CategoricalFeature(c["name"], tuple(c.get("categories", ()))) for c in d.get("categorical", ())),
                  embeddings=tuple(EmbeddingBlock(c["name"], int(c["dim"])) for c in d.get("embeddings", ())),
                  scores=tuple(ScoreOutput(c["name"], ScoreKind(c.get("kind", "probability")), float(c.get("positive_threshold", 0.5)))
                               for c in d.get("scores", ())))


# -- building -------------------------------------------------------------------------------------

def reference_hash(schema: Schema, batch: Batch) -> str:
    """sha256 over the schema (canonical JSON) and every reference block in schema order
    (name, dtype, shape, little-endian bytes)."""
    h = hashlib.sha256(json.dumps(schema_to_dict(schema), sort_keys=True).encode())
    blocks = [("numeric", batch.numeric), ("categorical", batch.categorical), ("scores", batch.scores)]
    blocks += [(f"embedding.{b.name}", batch.embeddings.get(b.name)) for b in schema.embeddings]
    for name, a in blocks:
        if a is None:
            continue
        a = np.ascontiguousarray(as_numpy(a))
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        h.update(f"{name}|{a.dtype.str}|{list(a.shape)}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def build_baseline(schema: Schema, reference: Batch, *, model_id: str = "", git_commit: str = "", source: str = "",
                   config: BaselineConfig | None = None, created_at: datetime | None = None, threads: int = 1) -> Baseline:
    """Summarise `reference` (a Batch in `schema`'s layout) into a frozen, calibrated Baseline.
    `threads`: for the calibration's per-shard KS / W1 (the result does not depend on it)."""
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    config = config or BaselineConfig()
    schema.validate()
    reference.validate(schema, "reference")
    n = reference.n_rows
    if n < MIN_REFERENCE_ROWS:
        raise FailedPrecondition(f"the reference has {n} rows; at least {MIN_REFERENCE_ROWS} are needed to calibrate thresholds")
    rng = np.random.default_rng(config.seed)
    keys = row_keys(config.seed, stream=0xBA5E, start=0, n=n)
    shards = max(2, min(config.calibration_shards, n // 2))
    calib_rows = np.sort(rng.permutation(n)[: config.calibration_max_rows]) if n > config.calibration_max_rows else None
    plan = calibration.shard_plan(n if calib_rows is None else len(calib_rows), shards, config.calibration_rounds, rng)
    thresholds: dict[str, Threshold] = {}
    psi_nulls: list[tuple[np.ndarray, Threshold]] = []  # per group: scaled PSI null values [R, F], PSI thresholds

    def columns(group: str, x: np.ndarray, vmin, vmax, pos_thr) -> ColumnsBaseline:
        # float32 data stays float32 (no float64 copy of the whole reference: 512 MB at 2M x 32);
        # every comparison below widens it exactly, and the calibration subset is widened on its own
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        sorted_cols = binning.sorted_columns(x)
        edges, n_edges = binning.quantile_edges(x, config.numeric_bins, sorted_cols=sorted_cols)
        counts, nan = binning.counts_from_sorted(sorted_cols, x, edges, n_edges)
        q1, q3 = binning.column_quantiles(sorted_cols, [0.25, 0.75]).T
        mean, std = binning.column_mean_std(sorted_cols)
        del sorted_cols  # an [F, N] copy of the reference
        iqr = q3 - q1
        lo, hi = q1 - config.outlier_iqr_factor * iqr, q3 + config.outlier_iqr_factor * iqr
        # rounded to float32-representable values: fp32 and fp64 data compare against them identically
        lo, hi = lo.astype(np.float32).astype(np.float64), hi.astype(np.float32).astype(np.float64)
        oor = (((x < vmin) | (x > vmax)) | np.isinf(x)).sum(0)
        outl = ((x < lo) | (x > hi)).sum(0)
        with np.errstate(invalid="ignore"):
            pos = np.where(np.isnan(pos_thr), 0, (x >= pos_thr).sum(0))
        res = RowReservoir(config.reservoir_size * config.baseline_reservoir_factor)
        res.update({"x": x}, keys)
        sample = res.get()["x"].astype(np.float64)
        sample = np.where(np.isfinite(sample), sample, np.nan)
        cx = np.asarray(x if calib_rows is None else x[calib_rows], dtype=np.float64)
        positions = binning.bin_positions(cx, edges, n_edges)
        found, psi_null = calibration.calibrate_columns(
            cx, positions, binning.valid_bins(n_edges, edges.shape[1]), k=config.reservoir_size,
            k_baseline=config.reservoir_size * config.baseline_reservoir_factor, plan=plan, threads=int(threads))
        for stat, t in found.items():
            thresholds[f"{group}.{stat}"] = t
        psi_nulls.append((psi_null, found["psi"]))
        return ColumnsBaseline(names=(), edges=edges, n_edges=n_edges, counts=counts, nan_count=nan, mean=mean, std=std,
                               q1=q1, q3=q3, valid_min=vmin, valid_max=vmax, fence_lo=lo, fence_hi=hi,
                               out_of_range_count=oor, outlier_count=outl, positive_threshold=pos_thr,
                               positive_count=pos.astype(np.int64), sample=sample, row_count=n)

    numeric = scores = categorical = None
    if schema.numeric:
        vmin = np.array([-np.inf if c.valid_min is None else c.valid_min for c in schema.numeric], dtype=np.float64)
        vmax = np.array([np.inf if c.valid_max is None else c.valid_max for c in schema.numeric], dtype=np.float64)
        numeric = replace(columns("numeric", as_numpy(reference.numeric), vmin, vmax, np.full(len(vmin), np.nan)),
                          names=tuple(c.name for c in schema.numeric))
    if schema.scores:
        prob = [c.kind == ScoreKind.PROBABILITY for c in schema.scores]
        vmin = np.array([0.0 if p else -np.inf for p in prob])
        vmax = np.array([1.0 if p else np.inf for p in prob])
        pthr = np.array([c.positive_threshold if p else np.nan for c, p in zip(schema.scores, prob)])
        scores = replace(columns("scores", as_numpy(reference.scores), vmin, vmax, pthr),
                         names=tuple(c.name for c in schema.scores))
    if schema.categorical:
        codes = np.asarray(as_numpy(reference.categorical), dtype=np.int64)
        k = np.array([len(c.categories) if c.categories else max(int(codes[:, f].max(initial=-1)) + 1, 1)
                      for f, c in enumerate(schema.categorical)], dtype=np.int64)
        pos = category_positions(codes, k)
        width = int(k.max()) + 1
        flat = pos + np.arange(codes.shape[1])[None, :] * width
        counts = np.bincount(flat[pos >= 0], minlength=codes.shape[1] * width).reshape(codes.shape[1], width)
        cat = CategoricalBaseline(names=tuple(c.name for c in schema.categorical),
                                  categories=tuple(tuple(c.categories) for c in schema.categorical), n_codes=k,
                                  counts=counts, missing_count=(codes < 0).sum(0), row_count=n)
        cpos = pos if calib_rows is None else pos[calib_rows]
        found, psi_null = calibration.calibrate_categorical(cpos, cat.valid, plan=plan)
        for stat, t in found.items():
            thresholds[f"categorical.{stat}"] = t
        psi_nulls.append((psi_null, found["psi"]))
        categorical = cat
    if psi_nulls:  # family-wise PSI multipliers over every numeric, score and categorical column at once
        joint = Threshold(np.concatenate([t.warning for _, t in psi_nulls]), np.concatenate([t.critical for _, t in psi_nulls]),
                          "inv_n")
        thresholds["family.psi"] = family_multipliers(np.concatenate([v for v, _ in psi_nulls], axis=1), joint)
    embeddings = {}
    for block in schema.embeddings:
        e = as_numpy(reference.embeddings[block.name])
        res = RowReservoir(config.embedding_sample_size)
        res.update({"e": e}, keys)
        sample = np.ascontiguousarray(res.get()["e"], dtype=np.float32)
        finite = np.isfinite(e).all(1)
        centroid = np.asarray(e[finite], dtype=np.float64).mean(0) if finite.any() else np.full(block.dim, np.nan)
        sample = sample[np.isfinite(sample).all(1)]
        bws = median_heuristic_bandwidths(sample, config.mmd_bandwidth_multipliers)
        embeddings[block.name] = EmbeddingBaseline(block.name, sample, centroid, bws, n)
        # calibration pool: reference rows *not* in the stored sample (the next keys after it), so
        # windows are simulated against the very sample they will be compared with
        k_e = config.embedding_sample_size
        pool = RowReservoir(min(n, k_e + 4 * config.mmd_calibration_max_half))
        pool.update({"e": e}, keys)
        pool_x = pool.get()["e"][k_e:]
        pool_x = pool_x[np.isfinite(pool_x).all(1)]
        for stat, t in calibration.calibrate_mmd(pool_x, sample, list(bws), rounds=config.mmd_calibration_rounds,
                                                 max_window=min(k_e, config.mmd_calibration_max_half), rng=rng).items():
            thresholds[f"embedding.{block.name}.{stat}"] = t
    meta = BaselineMetadata(model_id=model_id, data_hash=reference_hash(schema, reference), git_commit=git_commit,
                            created_at=(created_at or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(),
                            source=source, row_count=n)
    return _freeze(Baseline(schema=schema, config=config, metadata=meta, numeric=numeric, categorical=categorical,
                            embeddings=embeddings, scores=scores, thresholds=thresholds))


def category_positions(codes: np.ndarray, n_codes: np.ndarray) -> np.ndarray:
    """Bin position per value: the code for 0..K−1, K ("other") for codes ≥ K, −1 for missing (< 0)."""
    codes = np.asarray(codes, dtype=np.int64)
    k = np.asarray(n_codes)[None, :]
    return np.where(codes < 0, -1, np.minimum(codes, k))


def median_heuristic_bandwidths(sample: np.ndarray, multipliers) -> tuple[float, ...]:
    """σ²·m² for each multiplier m, σ² = median pairwise squared distance / 2 (≤ 2048 rows used)."""
    x = np.asarray(sample[:2048], dtype=np.float64)
    if len(x) < 2:
        return tuple(float(m) ** 2 for m in multipliers)
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    s2 = float(np.median(d2[np.triu_indices(len(x), 1)])) / 2.0
    if not s2 > 0:
        s2 = 1.0
    return tuple(s2 * float(m) ** 2 for m in multipliers)
