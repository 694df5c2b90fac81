"""Delayed labels: predictions waiting for their labels (bounded, TTL) and label-quality metrics.

`PendingPredictions` keeps (request id, score, prediction time) of recent rows in chunks (one per
ingested batch); chunks older than `ttl_seconds` are dropped, and so are the oldest chunks once
more than `max_rows` rows wait. `join` looks label request ids up with a hash index per chunk
(vectorised), reports matched / unmatched / duplicate counts, and returns the joined pairs.

Metrics on joined pairs (`label_quality`), for a probability score s and label y ∈ {0, 1}
(y ≥ 0.5 is positive), prediction ŝ = s ≥ positive_threshold: accuracy, precision, recall, F1
(0 when undefined), AUROC (Mann–Whitney with average ranks for ties; NaN with one class only),
Brier = mean((s − y)²), ECE over 10 equal-width bins [0, .1), ..., [.9, 1.0] (last bin closed at
1.0; scores outside [0, 1] are clipped into the end bins): Σ_b (n_b / n)·|mean(y_b) − mean(s_b)|.

>>> import numpy as np
>>> p = PendingPredictions(ttl_seconds=60)
>>> p.add(["a", "b", "c"], np.array([0.9, 0.2, 0.7]), time=0.0)
>>> r = p.join(["a", "c", "zz", "a"], np.array([1, 0, 1, 1]), time=5.0)
>>> r.matched, r.unmatched, r.duplicates, r.delays_s.tolist()
(2, 1, 1, [5.0, 5.0])
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata


@dataclass
class _Chunk:
    ids: pd.Index
    scores: np.ndarray
    time: float
    matched: np.ndarray


@dataclass(frozen=True)
class JoinResult:
    scores: np.ndarray
    labels: np.ndarray
    delays_s: np.ndarray
    matched: int
    unmatched: int
    duplicates: int


class PendingPredictions:
    """Bounded store of predictions awaiting labels, joined by request id."""

    def __init__(self, ttl_seconds: float = 86_400.0, max_rows: int = 2_000_000):
        self.ttl_seconds = float(ttl_seconds)
        self.max_rows = int(max_rows)
        self._chunks: deque[_Chunk] = deque()
        self.rows = 0
        self.dropped = 0

    def add(self, request_ids, scores: np.ndarray, time: float) -> None:
        ids = pd.Index(np.asarray(list(request_ids), dtype=object))
        keep = ~ids.duplicated()
        if not keep.all():
            ids, scores = ids[keep], np.asarray(scores)[keep]
        self._chunks.append(_Chunk(ids, np.asarray(scores, dtype=np.float64), float(time), np.zeros(len(ids), bool)))
        self.rows += len(ids)
        self.expire(time)

    def expire(self, now: float) -> None:
        while self._chunks and (self._chunks[0].time < now - self.ttl_seconds or self.rows > self.max_rows):
            c = self._chunks.popleft()
            self.rows -= len(c.ids)
            self.dropped += int((~c.matched).sum())

    def join(self, request_ids, labels: np.ndarray, time: float) -> JoinResult:
        self.expire(time)
        q = pd.Index(np.asarray(list(request_ids), dtype=object))
        labels = np.asarray(labels, dtype=np.float64)
        dup_in_request = q.duplicated()
        todo = ~dup_in_request
        duplicates = int(dup_in_request.sum())
        out_s, out_y, out_d = [], [], []
        for c in reversed(self._chunks):
            if not todo.any():
                break
            idx = c.ids.get_indexer(q[todo])
            hit = idx >= 0
            if not hit.any():
                continue
            rows = np.flatnonzero(todo)[hit]
            pos = idx[hit]
            already = c.matched[pos]
            duplicates += int(already.sum())
            fresh_rows, fresh_pos = rows[~already], pos[~already]
            c.matched[fresh_pos] = True
            out_s.append(c.scores[fresh_pos])
            out_y.append(labels[fresh_rows])
            out_d.append(np.full(len(fresh_pos), time - c.time))
            todo[rows] = False
        cat = lambda xs: np.concatenate(xs) if xs else np.empty(0)  # noqa: E731
        s, y, d = cat(out_s), cat(out_y), cat(out_d)
        return JoinResult(s, y, d, matched=len(s), unmatched=int(todo.sum()), duplicates=duplicates)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    y = np.asarray(labels) >= 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ece(scores: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    y = (np.asarray(labels) >= 0.5).astype(np.float64)
    if len(s) == 0:
        return float("nan")
    b = np.minimum((s * bins).astype(np.int64), bins - 1)
    n_b = np.bincount(b, minlength=bins)
    sum_s = np.bincount(b, weights=s, minlength=bins)
    sum_y = np.bincount(b, weights=y, minlength=bins)
    return float(np.abs(sum_y - sum_s).sum() / len(s))


def label_quality(scores: np.ndarray, labels: np.ndarray, positive_threshold: float = 0.5) -> dict[str, float]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) >= 0.5
    n = len(s)
    if n == 0:
        nan = float("nan")
        return {k: nan for k in ("accuracy", "precision", "recall", "f1", "auroc", "brier", "ece")}
    pred = s >= positive_threshold
    tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float((pred == y).mean()), "precision": precision, "recall": recall, "f1": f1,
            "auroc": auroc(s, y), "brier": float(((s - y) ** 2).mean()), "ece": ece(s, y)}
