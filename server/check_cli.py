"""`driftd check`: batch post-check of a file of model inputs / outputs against a reference file.

    driftd check --reference REF --current CUR [--schema S] [--json] [--fail-on warning|critical]

Files: CSV (``.csv``, ``.csv.gz``), Parquet (``.parquet``, ``.pq``) or NumPy ``.npz`` (1-D arrays are
columns, integer → categorical; 2-D float arrays are embedding blocks named by their key).
The reference becomes a baseline (quantile bins, reservoirs, shard-calibrated thresholds; see
`driftd.server.domain.baseline`), the current file is fed through one window, and the snapshot is
printed as a table (rich) or, with ``--json``, as one JSON document (format: docs/check.md).

Exit codes: 0 = no drift at or above the ``--fail-on`` level (or no ``--fail-on``); 1 = drift at or
above it; 2 = usage or input error (one line on stderr, no traceback).

Without ``--schema`` the columns are inferred from the reference: float → numeric, except float
columns whose name contains ``score``, ``prob`` or ``pred`` → score outputs (probability when all
reference values lie in [0, 1], else regression); integer, boolean and text → categorical; 2-D
``.npz`` arrays → embedding blocks. Text categories are coded by the schema's ``categories`` list,
or by the sorted distinct values of the reference; values the reference never had count as unseen.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

SCORE_NAME = re.compile(r"score|prob|pred", re.IGNORECASE)
CHUNK_ROWS = 100_000
# Below this many values (rows of both files x numeric and score columns) the check runs the CPU
# kernels eagerly: compiling them costs ~8-13 s, the eager ones ~1 s more per 3.2e7 values, so
# compiling pays only past ~2.5e8 (measured on the 2-core dev machine, bench/README.md "driftd
# check"). DRIFTD_KERNELS_COMPILE=1 / 0 forces either way.
COMPILE_MIN_VALUES = 250_000_000

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


class InputError(Exception):
    """A problem with the user's input: reported as one line, exit code 2."""


@dataclass
class Table:
    """Columns of one input file: 1-D arrays by name (numeric / integer / object) and 2-D blocks."""

    columns: dict[str, np.ndarray]
    blocks: dict[str, np.ndarray]
    rows: int


def default_threads() -> int:
    """`--threads` by default: the CPUs this process may use, at most 4. (The server's builds use its
    `calibration_threads` setting, default 1: its engine threads already share the cores.)"""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cpus))


# -- reading files ------------------------------------------------------------------------------

def _release_reader_memory() -> None:
    """pyarrow's allocator keeps what it freed (~450 MB after reading a 256 MB float32 parquet
    file): give it back to the OS before the baseline build, whose peak would come on top of it
    (bench/README.md "`driftd check`"). Nothing to do when no parquet file was read."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()


def read_table(path: Path, role: str) -> Table:
    if not path.exists():
        raise InputError(f"{role} file '{path}' not found")
    if path.is_dir():
        raise InputError(f"{role} path '{path}' is a directory, not a file")
    name = path.name.lower()
    try:
        if name.endswith(".npz"):
            return _read_npz(path, role)
        import pandas as pd

        if name.endswith((".parquet", ".pq")):
            df = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz", ".tsv")):
            df = pd.read_csv(path, sep="\t" if name.endswith(".tsv") else ",")
        else:
            raise InputError(f"{role} file '{path}': unsupported format; use .csv, .parquet or .npz")
    except InputError:
        raise
    except Exception as exc:  # pandas / pyarrow raise many types for unreadable files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{role} file '{path}' could not be read: {first}") from None
    _release_reader_memory()
    if df.shape[1] == 0 or len(df) == 0:
        raise InputError(f"{role} file '{path}' is empty (no rows or no columns)")
    cols: dict[str, np.ndarray] = {}
    for c in df.columns:
        s = df[c]
        if s.dtype.kind in "fiub":
            cols[str(c)] = s.to_numpy()
        elif s.dtype.kind == "O" or str(s.dtype) in ("string", "str", "category") or s.dtype.name.startswith("string"):
            cols[str(c)] = s.astype(object).where(s.notna(), None).to_numpy()
        else:
            raise InputError(f"{role} file '{path}': column '{c}' has unsupported type {s.dtype}")
    return Table(cols, {}, len(df))


def _read_npz(path: Path, role: str) -> Table:
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"{role} file '{path}' is not a readable .npz archive: {exc}") from None
    cols, blocks, rows = {}, {}, None
    with z:
        for key in z.files:
            a = z[key]
            if a.ndim == 1:
                cols[key] = a
            elif a.ndim == 2 and a.dtype.kind == "f":
                blocks[key] = a
            else:
                raise InputError(f"{role} file '{path}': array '{key}' has shape {list(a.shape)} and dtype {a.dtype}; "
                                 "use 1-D columns or 2-D float embedding blocks")
            if rows is not None and a.shape[0] != rows:
                raise InputError(f"{role} file '{path}': array '{key}' has {a.shape[0]} rows, others have {rows}")
            rows = a.shape[0]
    if not rows:
        raise InputError(f"{role} file '{path}' is empty (no arrays or no rows)")
    return Table(cols, blocks, rows)


# -- schema ---------------------------------------------------------------------------------------

def load_schema(path: Path):
    from driftd.server.domain.baseline import schema_from_dict

    if not path.exists():
        raise InputError(f"schema file '{path}' not found")
    try:
        d = json.loads(path.read_text())
        schema = schema_from_dict(d)
    except json.JSONDecodeError as exc:
        raise InputError(f"schema file '{path}' is not valid JSON: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"schema file '{path}' is malformed: {exc!r}; see docs/check.md") from None
    return schema


def infer_schema(ref: Table):
    from driftd.server.domain.schema import (CategoricalFeature, EmbeddingBlock, NumericFeature, Schema, ScoreKind,
                                              ScoreOutput)

    numeric, categorical, scores = [], [], []
    for name, a in ref.columns.items():
        if a.dtype.kind == "f":
            if SCORE_NAME.search(name):
                fin = a[np.isfinite(a)]
                prob = len(fin) > 0 and fin.min() >= 0 and fin.max() <= 1
                scores.append(ScoreOutput(name, ScoreKind.PROBABILITY if prob else ScoreKind.REGRESSION))
            else:
                numeric.append(NumericFeature(name))
        else:
            categorical.append(CategoricalFeature(name))
    blocks = [EmbeddingBlock(k, int(v.shape[1])) for k, v in ref.blocks.items()]
    return Schema(numeric=tuple(numeric), categorical=tuple(categorical), embeddings=tuple(blocks), scores=tuple(scores))


def _float_column(t: Table, name: str, role: str) -> np.ndarray:
    a = t.columns[name]
    if a.dtype in (np.float32, np.float64):
        return a  # float32 stays float32: what the server sees on the wire, and half the memory
    if a.dtype.kind in "fiub":
        return a.astype(np.float64)
    try:
        return np.array([np.nan if v is None else float(v) for v in a], dtype=np.float64)
    except (TypeError, ValueError):
        bad = next(v for v in a if v is not None and not _is_number(v))
        raise InputError(f"{role} column '{name}' must be numeric, found value {bad!r}") from None


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def _category_codes(t: Table, name: str, categories: list, role: str) -> np.ndarray:
    a = t.columns[name]
    if a.dtype.kind in "iub":
        return a.astype(np.int64)
    if a.dtype.kind == "f":
        fin = a[np.isfinite(a)]
        if len(fin) and not np.all(fin == np.round(fin)):
            raise InputError(f"{role} column '{name}' is categorical but holds fractional values (e.g. {fin[fin != np.round(fin)][0]})")
        return np.where(np.isfinite(a), a, -1).astype(np.int64)
    lookup = {c: i for i, c in enumerate(categories)}
    unseen = len(categories)
    return np.array([-1 if v is None else lookup.get(str(v), unseen) for v in a], dtype=np.int64)


def _stack_columns(cols: list[np.ndarray]) -> np.ndarray:
    """[N, len(cols)] C-contiguous, in the columns' common dtype. Stacked as [F, N] (contiguous
    copies) and transposed by torch's blocked copy: np.stack(axis=1) of 32 columns of 2M rows took
    3.1 s as float64, this 0.1 s as float32 (bench/README.md "driftd check")."""
    import torch

    return torch.from_numpy(np.stack(cols, 0)).t().contiguous().numpy()


def to_batch(t: Table, schema, categories: dict[str, list], role: str):
    from driftd.server.domain.batch import Batch

    names = set(t.columns) | set(t.blocks)
    missing = [c for c in schema.column_names if c not in names]
    if missing:
        raise InputError(f"{role} file lacks column(s) {missing} required by the schema")
    num = _stack_columns([_float_column(t, c.name, role) for c in schema.numeric]) if schema.numeric else None
    cat = (_stack_columns([_category_codes(t, c.name, categories[c.name], role) for c in schema.categorical])
           if schema.categorical else None)
    sc = _stack_columns([_float_column(t, c.name, role) for c in schema.scores]) if schema.scores else None
    emb = {}
    for b in schema.embeddings:
        if b.name not in t.blocks:
            raise InputError(f"{role} file: '{b.name}' must be a 2-D float array (embedding block)")
        block = t.blocks[b.name]
        if block.shape[1] != b.dim:
            raise InputError(f"{role} embedding block '{b.name}' has dim {block.shape[1]}, expected {b.dim}")
        emb[b.name] = block
    return Batch(numeric=num, categorical=cat, embeddings=emb, scores=sc)


def category_lists(ref: Table, schema) -> dict[str, list]:
    out = {}
    for c in schema.categorical:
        if c.categories:
            out[c.name] = list(c.categories)
            continue
        a = ref.columns.get(c.name)
        if a is not None and a.dtype.kind == "O":
            out[c.name] = sorted({str(v) for v in a if v is not None})
        else:
            out[c.name] = []
    return out


# -- running ---------------------------------------------------------------------------------------

def run_check(reference: Path, current: Path, schema_path: Path | None, *, progress: bool, seed: int = 0,
              permutations: int = 200, threads: int = 1) -> dict[str, Any]:
    """Build the baseline from `reference`, evaluate `current` against it; the JSON report (dict)."""
    from dataclasses import replace

    # the files first: a wrong path or an unreadable file is reported before the ~3 s of torch /
    # scipy imports below
    ref = read_table(reference, "reference")
    cur = read_table(current, "current")

    from driftd.server.domain.baseline import BaselineConfig, build_baseline
    from driftd.server.domain.engine import DriftEngine
    from driftd.kernels import eager_kernels
    from driftd.server.domain.errors import DriftdError

    if schema_path is not None:
        schema = load_schema(schema_path)
    else:
        schema = infer_schema(ref)
        ref_cols, cur_cols = set(ref.columns) | set(ref.blocks), set(cur.columns) | set(cur.blocks)
        if ref_cols != cur_cols:
            raise InputError(f"columns differ: current lacks {sorted(ref_cols - cur_cols)}, "
                             f"has unexpected {sorted(cur_cols - ref_cols)} (pass --schema to check a subset)")
    try:
        schema.validate()
    except DriftdError as exc:
        raise InputError(f"schema: {exc.message}") from None
    cats = category_lists(ref, schema)
    if any(cats[c.name] and not c.categories for c in schema.categorical):
        schema = replace(schema, categorical=tuple(replace(c, categories=tuple(cats[c.name]) or c.categories)
                                                   for c in schema.categorical))
    ref_batch = to_batch(ref, schema, cats, "reference")
    cur_batch = to_batch(cur, schema, cats, "current")
    ref_rows, cur_rows = ref.rows, cur.rows
    del ref, cur  # the files' columns: the batches hold copies, and the baseline build peaks next
    _release_reader_memory()
    values = (ref_rows + cur_rows) * (len(schema.numeric) + len(schema.scores))
    forced = os.environ.get("DRIFTD_KERNELS_COMPILE")
    try:
        with (eager_kernels() if forced is None and values < COMPILE_MIN_VALUES else contextlib.nullcontext()), \
                _progress(progress) as bar:
            task = bar.add_task("building baseline", total=None)
            baseline = build_baseline(schema, ref_batch, source=str(reference), config=BaselineConfig(seed=seed),
                                      threads=threads)
            bar.update(task, total=1, completed=1)
            engine = DriftEngine(baseline, pane_seconds=1e9, pane_count=1, mmd_permutations=permutations, seed=seed)
            task = bar.add_task("checking current", total=cur_rows)
            for start in range(0, cur_rows, CHUNK_ROWS):
                stop = min(start + CHUNK_ROWS, cur_rows)
                engine.update(cur_batch.slice(start, stop), now=1.0)
                bar.update(task, completed=stop)
            snap = engine.evaluate(now=1.0)
    except DriftdError as exc:
        raise InputError(exc.message) from None
    return report(snap, baseline, ref_rows, cur_rows)


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        pass


def _progress(enabled: bool):
    if not enabled:
        return _NoBar()
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


def _v(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _thr(s) -> dict:
    return {"warning": _v(s.warning_threshold), "critical": _v(s.critical_threshold), "verdict": s.verdict.value}


def report(snap, baseline, ref_rows: int, cur_rows: int) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for f in snap.numeric_features:
        features[f.feature] = {
            "kind": "numeric", "psi": _v(f.psi.value), "kl": _v(f.kl.value), "js": _v(f.js.value),
            "ks_stat": _v(f.ks.value), "ks_pvalue": _v(f.ks.p_value), "w1": _v(f.w1.value),
            "w1_relative": _v(f.w1_relative), "nan_rate": _v(f.nan_rate.value),
            "out_of_range_rate": _v(f.out_of_range_rate.value), "outlier_rate": _v(f.outlier_rate.value),
            "chi2": None, "chi2_pvalue": None, "sample_size": f.sample_count, "baseline_sample_size": f.baseline_sample_count,
            "thresholds": {k: _thr(getattr(f, k)) for k in ("psi", "kl", "js", "ks", "w1", "nan_rate", "out_of_range_rate",
                                                             "outlier_rate")},
            "verdict": f.verdict.value, "reasons": f.reasons,
        }
    for f in snap.categorical_features:
        features[f.feature] = {
            "kind": "categorical", "psi": _v(f.psi.value), "kl": _v(f.kl.value), "js": _v(f.js.value),
            "ks_stat": None, "ks_pvalue": None, "w1": None, "nan_rate": _v(f.missing_rate.value),
            "out_of_range_rate": _v(f.unseen_rate.value), "unseen_rate": _v(f.unseen_rate.value),
            "chi2": _v(f.chi2.value), "chi2_pvalue": _v(f.chi2.p_value), "sample_size": f.sample_count,
            "baseline_sample_size": f.baseline_sample_count,
            "thresholds": {k: _thr(getattr(f, k)) for k in ("psi", "kl", "js", "chi2", "unseen_rate", "missing_rate")},
            "verdict": f.verdict.value, "reasons": f.reasons,
        }
    embeddings = {e.block: {"mmd2_unbiased": _v(e.mmd2_unbiased.value), "mmd2_biased": _v(e.mmd2_biased),
                            "p_value": _v(e.mmd2_unbiased.p_value), "permutations": e.permutations,
                            "bandwidths": [_v(b) for b in e.bandwidths],
                            "centroid_cosine": _v(e.centroid_cosine_distance.value), "sample_size": e.sample_count,
                            "baseline_sample_size": e.baseline_sample_count,
                            "thresholds": {"mmd2_unbiased": _thr(e.mmd2_unbiased),
                                           "centroid_cosine": _thr(e.centroid_cosine_distance)},
                            "verdict": e.verdict.value, "reasons": e.reasons} for e in snap.embedding_blocks}
    scores = {s.output: {"psi": _v(s.psi.value), "js": _v(s.js.value), "ks_stat": _v(s.ks.value), "ks_pvalue": _v(s.ks.p_value),
                         "positive_rate": _v(s.positive_rate), "baseline_positive_rate": _v(s.baseline_positive_rate),
                         "mean": _v(s.mean), "baseline_mean": _v(s.baseline_mean),
                         "thresholds": {k: _thr(getattr(s, k)) for k in ("psi", "js", "ks", "positive_rate_delta")},
                         "verdict": s.verdict.value, "reasons": s.reasons} for s in snap.score_outputs}
    return {"features": features, "embeddings": embeddings, "scores": scores, "drifted_features": snap.drifted_features,
            "verdict": snap.verdict.value, "verdict_reasons": snap.verdict_reasons,
            "rows": {"reference": ref_rows, "current": cur_rows},
            "baseline": {"data_hash": baseline.metadata.data_hash, "created_at": baseline.metadata.created_at}}


# -- output ------------------------------------------------------------------------------------------

_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red", "insufficient_data": "dim"}


def _fmt(x, spec=".4g") -> str:
    return "–" if x is None else format(x, spec)


def print_table(rep: dict) -> None:
    from rich.console import Console
    from rich.table import Table as RTable

    con = Console(width=None if sys.stdout.isatty() else 160)
    if rep["features"]:
        t = RTable(title="features", title_justify="left")
        for h in ("feature", "kind", "PSI", "JS", "KS (p)", "W1", "χ² (p)", "NaN %", "out of range %", "verdict"):
            t.add_column(h, justify="left" if h in ("feature", "kind", "verdict") else "right")
        for name, f in rep["features"].items():
            ks = "–" if f["ks_stat"] is None else f"{_fmt(f['ks_stat'], '.3f')} ({_fmt(f['ks_pvalue'], '.2g')})"
            chi = "–" if f["chi2"] is None else f"{_fmt(f['chi2'], '.3g')} ({_fmt(f['chi2_pvalue'], '.2g')})"
            pct = lambda x: "–" if x is None else f"{100 * x:.2f}"  # noqa: E731
            t.add_row(name, f["kind"], _fmt(f["psi"]), _fmt(f["js"]), ks, _fmt(f["w1"]), chi, pct(f["nan_rate"]),
                      pct(f["out_of_range_rate"]), f"[{_STYLE[f['verdict']]}]{f['verdict']}")
        con.print(t)
    if rep["embeddings"]:
        t = RTable(title="embeddings", title_justify="left")
        for h in ("block", "MMD² unbiased", "MMD² biased", "p-value", "centroid cosine", "verdict"):
            t.add_column(h)
        for name, e in rep["embeddings"].items():
            t.add_row(name, _fmt(e["mmd2_unbiased"]), _fmt(e["mmd2_biased"]), _fmt(e["p_value"], ".3g"),
                      _fmt(e["centroid_cosine"]), f"[{_STYLE[e['verdict']]}]{e['verdict']}")
        con.print(t)
    if rep["scores"]:
        t = RTable(title="scores", title_justify="left")
        for h in ("output", "PSI", "JS", "KS (p)", "positive rate (baseline)", "verdict"):
            t.add_column(h)
        for name, s in rep["scores"].items():
            pr = "–" if s["positive_rate"] is None else f"{s['positive_rate']:.3f} ({s['baseline_positive_rate']:.3f})"
            t.add_row(name, _fmt(s["psi"]), _fmt(s["js"]), f"{_fmt(s['ks_stat'], '.3f')} ({_fmt(s['ks_pvalue'], '.2g')})",
                      pr, f"[{_STYLE[s['verdict']]}]{s['verdict']}")
        con.print(t)
    con.print(f"rows: reference {rep['rows']['reference']}, current {rep['rows']['current']}; "
              f"drifted features: {rep['drifted_features']}; verdict: [{_STYLE[rep['verdict']]}]{rep['verdict']}")
    for r in rep["verdict_reasons"][:20]:
        con.print(f"  - {r}", markup=False)


def check(
    reference: Path = typer.Option(..., "--reference", help="Reference data (.csv, .parquet, .npz)."),
    current: Path = typer.Option(..., "--current", help="Data to check (same format and columns)."),
    schema: Optional[Path] = typer.Option(None, "--schema", help="Schema JSON (numeric / categorical / embeddings / scores)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document instead of tables."),
    fail_on: Optional[str] = typer.Option(None, "--fail-on", help="Exit 1 when the verdict is at or above warning|critical."),
    seed: int = typer.Option(0, "--seed", help="Seed of reservoirs, calibration shards and permutations."),
    permutations: int = typer.Option(200, "--permutations", help="MMD permutation-test permutations (0 = none)."),
    threads: Optional[str] = typer.Option(
        None, "--threads", envvar="DRIFTD_CALIBRATION_THREADS", show_default="the CPUs available, at most 4",
        metavar="<int>", help="Threads for the baseline's KS / W1 calibration (the report does not depend on it)."),
) -> None:
    """Check a batch of model inputs / outputs against reference data; non-zero exit on drift (CI gates)."""
    levels = {"warning": ("warning", "critical"), "critical": ("critical",)}
    if fail_on is not None and fail_on not in levels:
        typer.echo(f"driftd check: error: --fail-on must be 'warning' or 'critical', got {fail_on!r}", err=True)
        raise typer.Exit(2)
    if not 0 <= permutations <= 10_000:
        typer.echo("driftd check: error: --permutations must be in [0, 10000]", err=True)
        raise typer.Exit(2)
    # parsed here, not by typer: one-line errors, also for a bad DRIFTD_CALIBRATION_THREADS
    if threads is None or not threads.strip():
        n_threads = default_threads()
    elif threads.strip().isdigit() and 1 <= int(threads) <= 64:
        n_threads = int(threads)
    else:
        typer.echo(f"driftd check: error: --threads (or DRIFTD_CALIBRATION_THREADS) must be an integer in [1, 64], "
                   f"got {threads!r}", err=True)
        raise typer.Exit(2)
    try:
        rep = run_check(reference, current, schema, progress=(not json_output) and sys.stderr.isatty(), seed=seed,
                        permutations=permutations, threads=n_threads)
    except InputError as exc:
        typer.echo(f"driftd check: error: {exc}", err=True)
        raise typer.Exit(2) from None
    except MemoryError:
        typer.echo("driftd check: error: out of memory reading the input files", err=True)
        raise typer.Exit(2) from None
    if json_output:
        typer.echo(json.dumps(rep, allow_nan=False))
    else:
        print_table(rep)
    if fail_on is not None and rep["verdict"] in levels[fail_on]:
        raise typer.Exit(1)


app.command("check")(check)

if __name__ == "__main__":  # pragma: no cover
    app()
