"""The one place the service layer calls the drift engine: open a window for a monitor, build a
baseline from reference batches, and turn a snapshot into the metric series alarm rules read."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftd.server.domain.alarms import MetricFrame, MetricSample
from driftd.server.domain.baseline import Baseline, BaselineConfig, build_baseline as _build
from driftd.server.domain.batch import Batch
from driftd.server.domain.engine import DriftEngine
from driftd.server.domain.engine_state import restore_engine, save_engine
from driftd.server.domain.monitor import MonitorSpec


class WindowAdapter:
    """`WindowEngine` (service/runtime.py) over a `DriftEngine`: numbers in, JSON-safe dicts out."""

    def __init__(self, engine: DriftEngine) -> None:
        self.engine = engine

    def update(self, batch: Batch, now: float) -> None:
        self.engine.update(batch, now=now)

    def evaluate(self, now: float) -> dict[str, Any]:
        return self.engine.evaluate(now=now).to_dict()

    def write_labels(self, request_ids: list[str], labels, now: float):
        return self.engine.write_labels(request_ids, labels, now=now)

    def save(self) -> bytes:
        return save_engine(self.engine)

    def warm_up(self) -> None:
        self.engine.warm_up()


def open_window(spec: MonitorSpec, blob: bytes, state: bytes | None = None) -> WindowAdapter:
    """A fresh window on the baseline, or the saved one when `state` is given (same baseline)."""
    baseline = Baseline.from_bytes(blob)
    if state is not None:
        return WindowAdapter(restore_engine(baseline, state))
    return WindowAdapter(DriftEngine.for_monitor(spec, baseline))


@dataclass(frozen=True)
class BuiltBaseline:
    baseline: Baseline
    blob: bytes


def build_baseline(spec: MonitorSpec, reference: Batch, *, model_id: str, git_commit: str, source: str, seed: int,
                   created_at: datetime, threads: int = 1) -> BuiltBaseline:
    config = BaselineConfig.from_statistics(spec.statistics, seed=seed)
    baseline = _build(spec.schema, reference, model_id=model_id or spec.model_id, git_commit=git_commit, source=source,
                      config=config, created_at=created_at, threads=threads)
    # the monitor's first batches follow: compile the update kernels now, inside this already slow call
    DriftEngine.for_monitor(spec, baseline).warm_up()
    return BuiltBaseline(baseline, baseline.to_bytes())


def load_baseline(blob: bytes) -> Baseline:
    return Baseline.from_bytes(blob)


# snapshot group -> (label name, name key, metric prefix, statistic fields)
_GROUPS = {
    "numeric_features": ("feature", "feature", "feature", ("psi", "kl", "js", "ks", "w1", "nan_rate", "out_of_range_rate", "outlier_rate")),
    "categorical_features": ("feature", "feature", "feature", ("chi2", "psi", "js", "unseen_rate", "missing_rate")),
    "embedding_blocks": ("block", "block", "embedding", ("mmd2_unbiased", "centroid_cosine_distance")),
    "score_outputs": ("output", "output", "score", ("psi", "ks", "js", "positive_rate_delta")),
}
# statistic field -> selector metric name(s); a p-value gets its own `<name>_pvalue` series
_METRIC_NAMES = {"mmd2_unbiased": "mmd2", "centroid_cosine_distance": "centroid_cosine"}


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def metric_frame(snapshot: dict[str, Any]) -> MetricFrame:
    """Every metric series of a snapshot dict, keyed as alarm selectors name them
    (`feature_psi{feature="age"}`, `embedding_mmd2_pvalue{block="text"}`, `latency_p99_ms`, ...)."""
    frame: MetricFrame = {}
    rows = int(snapshot.get("row_count") or 0)
    for group, (label, key, prefix, stats) in _GROUPS.items():
        for item in snapshot.get(group) or []:
            labels = ((label, item[key]),)
            for stat in stats:
                sv = item.get(stat)
                if not sv:
                    continue
                name = f"{prefix}_{_METRIC_NAMES.get(stat, stat)}"
                # min_samples guards the rows in the window; an embedding statistic's own sample is a
                # bounded reservoir, so its rows are the window's.
                samples = rows if group == "embedding_blocks" else int(sv.get("sample_size") or item.get("sample_count") or 0)
                frame[(name, labels)] = MetricSample(_num(sv.get("value")), sv.get("p_value"), samples,
                                                     sv.get("warning_threshold"), sv.get("critical_threshold"))
                if sv.get("p_value") is not None:
                    frame[(f"{name}_pvalue", labels)] = MetricSample(float(sv["p_value"]), sv["p_value"], samples)
            if group == "numeric_features" and item.get("w1_relative") is not None:
                frame[("feature_w1_relative", labels)] = MetricSample(float(item["w1_relative"]), None, int(item["sample_count"]))
            if group == "score_outputs" and item.get("positive_rate") is not None:
                frame[("score_positive_rate", labels)] = MetricSample(float(item["positive_rate"]), None, int(item["sample_count"]))
    frame[("drifted_features", ())] = MetricSample(float(snapshot.get("drifted_features") or 0), None, rows)
    frame[("row_count", ())] = MetricSample(float(rows), None, rows)
    lat = snapshot.get("latency") or {}
    for q in ("p50", "p95", "p99"):
        if lat.get(f"{q}_ms") is not None:
            frame[(f"latency_{q}_ms", ())] = MetricSample(float(lat[f"{q}_ms"]), None, int(lat.get("sample_count") or 0))
    if lat.get("error_rate") is not None:
        frame[("error_rate", ())] = MetricSample(float(lat["error_rate"]), None, int(lat.get("status_count") or 0))
    lq = snapshot.get("label_quality") or {}
    for name in ("accuracy", "precision", "recall", "f1", "auroc", "brier", "ece"):
        if lq.get(name) is not None:
            frame[(name, ())] = MetricSample(float(lq[name]), None, int(lq.get("labelled_count") or 0))
    for name, thr in (("cusum_error", "cusum_threshold"), ("page_hinkley", "page_hinkley_threshold")):
        if lq.get(name) is not None:
            frame[(name, ())] = MetricSample(float(lq[name]), None, int(lq.get("labelled_count") or 0),
                                             lq.get(thr), lq.get(thr))
    return frame
