"""Save and restore a `DriftEngine`'s state (windows, pending label joins, detectors) as bytes.

So a restart resumes windows with nothing lost or counted twice: the store keeps the blob
(`save_engine`), and `restore_engine(baseline, blob)` rebuilds an engine that evaluates exactly as
the saved one would. Layout as the baseline blob: ``b"DRIFTDST"`` + uint32 version + uint64 JSON
header length + JSON header + raw little-endian arrays. The blob names the baseline's data_hash;
restoring against another baseline is refused (FailedPrecondition): panes are counts on that
baseline's bins.

>>> import numpy as np
>>> from driftd.server.domain.schema import Schema, NumericFeature
>>> from driftd.server.domain.baseline import build_baseline, BaselineConfig
>>> from driftd.server.domain.batch import Batch
>>> from driftd.server.domain.engine import DriftEngine
>>> base = build_baseline(Schema(numeric=(NumericFeature("x"),)), Batch(numeric=np.arange(100.0)[:, None]),
...                       config=BaselineConfig(calibration_rounds=10))
>>> eng = DriftEngine(base)
>>> eng.update(Batch(numeric=np.arange(50.0)[:, None]), now=5.0)
50
>>> back = restore_engine(base, save_engine(eng))
>>> back.evaluate(now=6.0).to_dict() == eng.evaluate(now=6.0).to_dict()
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from driftd.server.domain import blob as blob_format
from driftd.server.domain.baseline import Baseline
from driftd.server.domain.errors import FailedPrecondition
from driftd.server.domain.labels import _Chunk
from driftd.server.domain.latency_sketch import LatencySketch
from driftd.server.domain.moments import Moments
from driftd.server.domain.pane import ColumnsPane, EmbeddingPane, Pane
from driftd.server.domain.reservoir import RowReservoir

MAGIC = b"DRIFTDST"
VERSION = 1


def _pack(header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    return blob_format.pack(MAGIC, VERSION, header, arrays)


def _unpack(blob: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    return blob_format.unpack(blob, MAGIC, VERSION, "engine state")


def _res_out(r: RowReservoir, p: str, arrays: dict) -> dict:
    arrays[f"{p}.keys"] = r.keys
    for k, v in r.columns.items():
        arrays[f"{p}.col.{k}"] = v
    return {"capacity": r.capacity, "rows_seen": r.rows_seen, "columns": list(r.columns)}


def _res_in(meta: dict, p: str, arrays: dict) -> RowReservoir:
    r = RowReservoir(meta["capacity"])
    r.keys = arrays[f"{p}.keys"]
    r.columns = {k: arrays[f"{p}.col.{k}"] for k in meta["columns"]}
    r.rows_seen = meta["rows_seen"]
    return r


_COLS = ("counts", "nan", "out_of_range", "outliers", "positives")
_MOM = ("count", "mean", "m2", "min", "max")


def _pane_out(pn: Pane, p: str, arrays: dict) -> dict:
    meta: dict[str, Any] = {k: getattr(pn, k) for k in ("index", "start", "end", "seed", "rows", "status_rows",
                                                         "error_rows", "labelled")}
    for group in ("numeric", "scores"):
        cp = getattr(pn, group)
        if cp is None:
            continue
        for k in _COLS:
            arrays[f"{p}.{group}.{k}"] = getattr(cp, k)
        for k in _MOM:
            arrays[f"{p}.{group}.moments.{k}"] = getattr(cp.moments, k)
    if pn.categorical is not None:
        arrays[f"{p}.categorical"] = pn.categorical
        arrays[f"{p}.categorical_missing"] = pn.categorical_missing
    meta["rows_sample"] = _res_out(pn.rows_sample, f"{p}.rows_sample", arrays)
    meta["embeddings"] = {}
    for name, ep in pn.embeddings.items():
        arrays[f"{p}.emb.{name}.total"] = ep.total
        meta["embeddings"][name] = {"count": ep.count, "nonfinite_rows": ep.nonfinite_rows,
                                    "reservoir": _res_out(ep.reservoir, f"{p}.emb.{name}.res", arrays)}
    lat = pn.latency
    arrays[f"{p}.latency.counts"] = lat.counts
    meta["latency"] = {"relative_error": lat.relative_error, "min_value": lat.min_value, "max_value": lat.max_value,
                       "zero_count": lat.zero_count, "invalid_count": lat.invalid_count}
    meta["labels"] = _res_out(pn.labels, f"{p}.labels", arrays)
    return meta


def _pane_in(meta: dict, p: str, arrays: dict, base: Baseline) -> Pane:
    pn = Pane(index=meta["index"], start=meta["start"], end=meta["end"], seed=meta["seed"], rows=meta["rows"],
              status_rows=meta["status_rows"], error_rows=meta["error_rows"], labelled=meta["labelled"], _base=base)
    for group in ("numeric", "scores"):
        if f"{p}.{group}.counts" not in arrays:
            continue
        m = Moments(0)
        for k in _MOM:
            setattr(m, k, arrays[f"{p}.{group}.moments.{k}"])
        setattr(pn, group, ColumnsPane(*(arrays[f"{p}.{group}.{k}"] for k in _COLS), m))
    if f"{p}.categorical" in arrays:
        pn.categorical = arrays[f"{p}.categorical"]
        pn.categorical_missing = arrays[f"{p}.categorical_missing"]
    pn.rows_sample = _res_in(meta["rows_sample"], f"{p}.rows_sample", arrays)
    for name, em in meta["embeddings"].items():
        pn.embeddings[name] = EmbeddingPane(em["count"], arrays[f"{p}.emb.{name}.total"], em["nonfinite_rows"],
                                            _res_in(em["reservoir"], f"{p}.emb.{name}.res", arrays))
    lm = meta["latency"]
    lat = LatencySketch(lm["relative_error"], lm["min_value"], lm["max_value"])
    lat.counts = arrays[f"{p}.latency.counts"]
    lat.zero_count, lat.invalid_count = lm["zero_count"], lm["invalid_count"]
    pn.latency = lat
    pn.labels = _res_in(meta["labels"], f"{p}.labels", arrays)
    return pn


def save_engine(engine) -> bytes:
    """The engine's complete mutable state as bytes (see module docstring)."""
    arrays: dict[str, np.ndarray] = {}
    w = engine.window
    panes = {str(i): _pane_out(p, f"pane{i}", arrays) for i, p in w.panes.items()}
    chunks = []
    for j, c in enumerate(engine.pending._chunks):
        ids = [str(x).encode() for x in c.ids]
        arrays[f"pending{j}.ids"] = np.frombuffer(b"".join(ids), dtype=np.uint8)
        arrays[f"pending{j}.offsets"] = np.cumsum([0] + [len(x) for x in ids]).astype(np.int64)
        arrays[f"pending{j}.scores"] = c.scores
        arrays[f"pending{j}.matched"] = c.matched
        chunks.append({"time": c.time})
    cu, ph = engine.cusum, engine.page_hinkley
    warm = np.concatenate(cu._warm) if cu._warm else np.empty(0)
    arrays["cusum.warm"] = warm
    header = {
        "baseline_data_hash": engine.baseline.metadata.data_hash,
        "engine": {"pane_seconds": w.pane_seconds, "pane_count": w.pane_count, "mmd_permutations": engine.mmd_permutations,
                   "min_samples": engine.min_samples, "seed": engine.seed, "rows_accepted": engine.rows_accepted,
                   "label_ttl_seconds": engine.pending.ttl_seconds, "label_max_rows": engine.pending.max_rows,
                   "pending_rows": engine.pending.rows, "pending_dropped": engine.pending.dropped},
        "panes": panes, "pending": chunks,
        "cusum": {"mu0": cu.mu0, "k": cu.k, "h": cu.h, "warmup": cu.warmup, "warm_n": cu._warm_n,
                  "statistic": cu.statistic, "count": cu.count},
        "page_hinkley": {"delta": ph.delta, "threshold": ph.threshold, "count": ph.count, "total": ph.total, "m": ph.m,
                         "m_min": ph.m_min},
    }
    return _pack(header, arrays)


def restore_engine(baseline: Baseline, blob: bytes):
    """A DriftEngine with the saved state, against `baseline` (must be the one it was saved with)."""
    from driftd.server.domain.engine import DriftEngine

    header, arrays = _unpack(blob)
    if header["baseline_data_hash"] != baseline.metadata.data_hash:
        raise FailedPrecondition("engine state was saved against a different baseline "
                                 f"(data_hash {header['baseline_data_hash'][:12]}…, active {baseline.metadata.data_hash[:12]}…)")
    e = header["engine"]
    eng = DriftEngine(baseline, pane_seconds=e["pane_seconds"], pane_count=e["pane_count"],
                      mmd_permutations=e["mmd_permutations"], label_ttl_seconds=e["label_ttl_seconds"],
                      min_samples=e["min_samples"], seed=e["seed"])
    eng.rows_accepted = e["rows_accepted"]
    eng.pending.max_rows = e["label_max_rows"]
    eng.pending.rows, eng.pending.dropped = e["pending_rows"], e["pending_dropped"]
    eng.window.panes = {int(i): _pane_in(m, f"pane{i}", arrays, baseline) for i, m in header["panes"].items()}
    for j, c in enumerate(header["pending"]):
        raw, off = arrays[f"pending{j}.ids"].tobytes(), arrays[f"pending{j}.offsets"]
        ids = [raw[off[i]:off[i + 1]].decode() for i in range(len(off) - 1)]
        eng.pending._chunks.append(_Chunk(pd.Index(np.asarray(ids, dtype=object)), arrays[f"pending{j}.scores"], c["time"],
                                          arrays[f"pending{j}.matched"]))
    cu = header["cusum"]
    eng.cusum.mu0, eng.cusum.k, eng.cusum.h, eng.cusum.warmup = cu["mu0"], cu["k"], cu["h"], cu["warmup"]
    eng.cusum._warm = [arrays["cusum.warm"]] if len(arrays["cusum.warm"]) else []
    eng.cusum._warm_n, eng.cusum.statistic, eng.cusum.count = cu["warm_n"], cu["statistic"], cu["count"]
    ph = header["page_hinkley"]
    for k in ("delta", "threshold", "count", "total", "m", "m_min"):
        setattr(eng.page_hinkley, k, ph[k])
    return eng
