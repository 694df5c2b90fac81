"""The drift engine of one monitor: windows in, snapshots out.

API summary (everything the ingest / evaluation loops need)::

    from driftd.server.domain.baseline import build_baseline, Baseline, BaselineConfig
    from driftd.server.domain.batch import Batch
    from driftd.server.domain.engine import DriftEngine

    baseline = build_baseline(schema, Batch(numeric=..., categorical=..., embeddings={...}, scores=...),
                              model_id="fraud", git_commit="abc123", source="s3://...")
    blob = baseline.to_bytes()                      # store this; Baseline.from_bytes(blob) restores it
    engine = DriftEngine(baseline, pane_seconds=60, pane_count=5)   # or DriftEngine.for_monitor(spec, baseline)
    accepted = engine.update(batch, now=time.time())  # validates (InvalidArgument), then counts every row
    engine.write_labels(request_ids, labels, now=...) # -> JoinResult(matched, unmatched, duplicates, ...)
    snap = engine.evaluate(now=time.time())         # -> Snapshot; snap.to_dict() is JSON-safe
    engine.expire(now)                              # drop panes that left the window (update / evaluate do it too)

    from driftd.server.domain.engine_state import save_engine, restore_engine
    blob = save_engine(engine)                      # windows, pending label joins, detectors -> bytes
    engine = restore_engine(baseline, blob)         # after a restart: evaluates / continues identically

`update` validates the batch against the baseline's schema before touching any state (a bad batch
never corrupts a window), routes it to the pane of its event time (or arrival time, see
`window`), and returns the number of rows counted (always all of them). Rows with request ids and a
first score output also wait (bounded, TTL) for delayed labels; labels join by request id into the
pane of their *arrival*, and feed CUSUM / Page–Hinkley on the error stream. Not thread-safe: call
it from one worker per monitor (torch work may run in an executor).

>>> import numpy as np
>>> from driftd.server.domain.schema import Schema, NumericFeature
>>> from driftd.server.domain.baseline import build_baseline, BaselineConfig
>>> from driftd.server.domain.batch import Batch
>>> rng = np.random.default_rng(0)
>>> s = Schema(numeric=(NumericFeature("x"),))
>>> base = build_baseline(s, Batch(numeric=rng.normal(size=(2000, 1))), config=BaselineConfig(calibration_rounds=50))
>>> eng = DriftEngine(base, pane_seconds=60, pane_count=5)
>>> eng.update(Batch(numeric=rng.normal(loc=3.0, size=(500, 1))), now=30.0)
500
>>> snap = eng.evaluate(now=31.0)
>>> snap.row_count, snap.numeric_features[0].verdict.value, snap.verdict.value
(500, 'critical', 'critical')
"""

from __future__ import annotations

import time as _time

import numpy as np

from driftd.server.domain.baseline import Baseline
from driftd.server.domain.batch import Batch, as_numpy
from driftd.server.domain.concept_drift import Cusum, PageHinkley
from driftd.server.domain.errors import InvalidArgument
from driftd.server.domain.evaluation import categorical_drift, embedding_drift, group_verdict, numeric_drift, score_drift
from driftd.server.domain.labels import JoinResult, PendingPredictions, label_quality
from driftd.server.domain.pane import ColumnsPane
from driftd.server.domain.schema import ScoreKind
from driftd.server.domain.snapshot import LabelQuality, LatencyStats, Snapshot, Verdict, worst
from driftd.server.domain.window import SlidingWindow

__all__ = ["DriftEngine"]


class DriftEngine:
    """Sliding window + delayed labels + concept-drift detectors of one monitor, against one baseline."""

    def __init__(self, baseline: Baseline, *, pane_seconds: float = 60.0, pane_count: int = 5, mmd_permutations: int = 200,
                 label_ttl_seconds: float = 86_400.0, min_samples: int = 30, seed: int = 0):
        self.baseline = baseline
        self.window = SlidingWindow(baseline, pane_seconds=pane_seconds, pane_count=pane_count, seed=seed)
        self.mmd_permutations = int(mmd_permutations)
        self.min_samples = int(min_samples)
        self.seed = seed
        self.pending = PendingPredictions(ttl_seconds=label_ttl_seconds)
        self.cusum = Cusum()
        self.page_hinkley = PageHinkley()
        self.rows_accepted = 0
        scores = baseline.schema.scores
        self._label_score = 0 if scores and scores[0].kind == ScoreKind.PROBABILITY else None
        self._positive_threshold = scores[0].positive_threshold if scores else 0.5

    @classmethod
    def for_monitor(cls, spec, baseline: Baseline, **kw) -> "DriftEngine":
        """From a `MonitorSpec` (window and statistics settings)."""
        return cls(baseline, pane_seconds=spec.window.pane_seconds, pane_count=spec.window.pane_count,
                   mmd_permutations=spec.statistics.mmd_permutations, label_ttl_seconds=spec.statistics.label_ttl_seconds,
                   **kw)

    def update(self, batch: Batch, now: float | None = None) -> int:
        """Validate and count the batch; returns the number of rows counted (InvalidArgument if bad)."""
        now = _time.time() if now is None else float(now)
        batch.validate(self.baseline.schema)
        n = batch.n_rows
        if n == 0:
            return 0
        self.window.update(batch, now)
        if batch.request_ids is not None and self._label_score is not None:
            self.pending.add(batch.request_ids, as_numpy(batch.scores)[:, self._label_score], now)
        self.rows_accepted += n
        return n

    def warm_up(self) -> None:
        """Compile the update kernels for this baseline's shapes (nothing of the window changes)."""
        for block in (self.baseline.numeric, self.baseline.scores):
            if block is not None:
                ColumnsPane.warm_up(block)

    def write_labels(self, request_ids, labels, now: float | None = None) -> JoinResult:
        """Join delayed labels (0/1) to waiting predictions; matched pairs count in the arrival pane."""
        now = _time.time() if now is None else float(now)
        labels = np.asarray(as_numpy(labels), dtype=np.float64).ravel()
        if len(labels) != len(request_ids):
            raise InvalidArgument.one("labels", f"{len(labels)} labels for {len(request_ids)} request ids")
        r = self.pending.join(request_ids, labels, now)
        if r.matched:
            self.window.pane_at(now).add_labels(r.scores, r.labels, r.delays_s)
            errors = ((r.scores >= self._positive_threshold) != (r.labels >= 0.5)).astype(np.float64)
            self.cusum.update(errors)
            self.page_hinkley.update(errors)
        return r

    def expire(self, now: float) -> None:
        self.window.expire(now)
        self.pending.expire(now)

    def evaluate(self, now: float | None = None) -> Snapshot:
        """Every statistic of the window at `now` against the baseline."""
        now = _time.time() if now is None else float(now)
        self.expire(now)
        pane = self.window.get(now)
        b = self.baseline
        rows = pane.rows
        sample = pane.rows_sample.get() if pane.rows_sample is not None else {}
        numeric = numeric_drift(pane.numeric, sample.get("numeric"), b, rows, self.min_samples) if b.numeric else []
        scores = score_drift(pane.scores, sample.get("scores"), b, rows, self.min_samples) if b.scores else []
        categorical = (categorical_drift(pane.categorical, pane.categorical_missing, b, rows, self.min_samples)
                       if b.categorical else [])
        embeddings = [embedding_drift(name, ep, b, permutations=self.mmd_permutations, seed=self.seed,
                                      min_samples=self.min_samples) for name, ep in pane.embeddings.items()]
        lat = pane.latency.get()
        latency = LatencyStats(sample_count=int(lat["count"]), p50_ms=lat["p50"], p95_ms=lat["p95"], p99_ms=lat["p99"],
                               relative_error=pane.latency.relative_error, status_count=pane.status_rows,
                               error_count=pane.error_rows,
                               error_rate=pane.error_rows / pane.status_rows if pane.status_rows else float("nan"))
        lab = pane.labels.get()
        q = label_quality(lab.get("score", np.empty(0)), lab.get("label", np.empty(0)), self._positive_threshold)
        delays = lab.get("delay", np.empty(0))
        c, ph = self.cusum.get(), self.page_hinkley.get()
        labels = LabelQuality(labelled_count=pane.labelled, label_delay_p50_s=float(np.median(delays)) if len(delays) else float("nan"),
                              label_delay_max_s=float(delays.max()) if len(delays) else float("nan"),
                              cusum_error=c["statistic"], cusum_threshold=c["threshold"], page_hinkley=ph["statistic"],
                              page_hinkley_threshold=ph["threshold"], concept_drift_detected=bool(c["detected"] or ph["detected"]),
                              **q)
        features = [*numeric, *categorical]
        drifted = sum(f.verdict in (Verdict.WARNING, Verdict.CRITICAL) for f in features)
        judged, reasons = [], []
        for group, items in (("numeric", numeric), ("categorical", categorical), ("scores", scores)):
            if items:
                v, r = group_verdict(items, b, group)
                judged.append(v)
                reasons += r
        for e in embeddings:
            judged.append(e.verdict)
            reasons += [f"{e.block}: {r}" for r in e.reasons]
        judged = [v for v in judged if v != Verdict.INSUFFICIENT_DATA]
        return Snapshot(baseline_data_hash=b.metadata.data_hash, window_start=pane.start, window_end=pane.end,
                        evaluate_time=now, row_count=rows, numeric_features=numeric, categorical_features=categorical,
                        embedding_blocks=embeddings, score_outputs=scores, latency=latency, label_quality=labels,
                        drifted_features=drifted, verdict=worst(judged) if judged else Verdict.INSUFFICIENT_DATA,
                        verdict_reasons=reasons)
