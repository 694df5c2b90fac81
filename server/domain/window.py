"""Sliding windows: the last k panes of a monitor, merged on demand.

Time is cut into panes of `pane_seconds` (pane i covers [i·Δ, (i+1)·Δ)); the window at time t is
the merge of panes ⌊t/Δ⌋−k+1 .. ⌊t/Δ⌋. Rows go to the pane of their event time when it lies in
the live window and is not in the future, else to the pane of the arrival time: every accepted row
is counted in exactly one pane. `expire(now)` drops panes that left the window.

>>> import numpy as np
>>> from driftd.server.domain.schema import Schema, NumericFeature
>>> from driftd.server.domain.batch import Batch
>>> from driftd.server.domain.baseline import build_baseline, BaselineConfig
>>> s = Schema(numeric=(NumericFeature("x"),))
>>> base = build_baseline(s, Batch(numeric=np.random.default_rng(0).normal(size=(500, 1))), config=BaselineConfig(calibration_rounds=10))
>>> w = SlidingWindow(base, pane_seconds=60, pane_count=2)
>>> w.update(Batch(numeric=np.zeros((5, 1))), now=10.0)
>>> w.update(Batch(numeric=np.zeros((7, 1))), now=70.0)
>>> w.get(now=70.0).rows, w.get(now=130.0).rows
(12, 7)
"""

from __future__ import annotations

import math

from driftd.server.domain.baseline import Baseline
from driftd.server.domain.batch import Batch
from driftd.server.domain.pane import Pane


class SlidingWindow:
    """The last `pane_count` panes (river-style update / get; `expire` drops old panes)."""

    def __init__(self, baseline: Baseline, *, pane_seconds: float, pane_count: int, seed: int = 0):
        self.baseline = baseline
        self.pane_seconds = float(pane_seconds)
        self.pane_count = int(pane_count)
        self.seed = seed
        self.panes: dict[int, Pane] = {}

    def pane_index(self, t: float) -> int:
        return math.floor(t / self.pane_seconds)

    def bounds(self, now: float) -> tuple[float, float]:
        """[start, end) of the window at `now` (end = now)."""
        return (self.pane_index(now) - self.pane_count + 1) * self.pane_seconds, now

    def pane_at(self, t: float) -> Pane:
        i = self.pane_index(t)
        p = self.panes.get(i)
        if p is None:
            p = self.panes[i] = Pane.empty(self.baseline, index=i, pane_seconds=self.pane_seconds, seed=self.seed)
        return p

    def route(self, event_time: float | None, now: float) -> float:
        start, _ = self.bounds(now)
        if event_time is None or not (start <= event_time <= now):
            return now
        return event_time

    def update(self, batch: Batch, now: float) -> None:
        self.expire(now)
        self.pane_at(self.route(batch.event_time, now)).update(batch)

    def expire(self, now: float) -> None:
        oldest = self.pane_index(now) - self.pane_count + 1
        for i in [i for i in self.panes if i < oldest]:
            del self.panes[i]

    def get(self, now: float) -> Pane:
        """The merged pane of the window at `now` (an empty pane when nothing arrived)."""
        self.expire(now)
        live = [self.panes[i] for i in sorted(self.panes) if i <= self.pane_index(now)]
        start, end = self.bounds(now)
        merged = Pane.empty(self.baseline, index=self.pane_index(now), pane_seconds=self.pane_seconds, seed=self.seed)
        for p in live:
            merged = merged.merge(p)
        merged.start, merged.end = start, end
        return merged
