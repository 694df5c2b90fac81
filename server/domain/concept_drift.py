"""Concept-drift detectors on the per-request error stream (1 = wrong prediction, 0 = right).

Both are river-style (`update(values)`, `get()`), vectorised over an array of observations with
cumulative sums (no per-element Python), and give the same state for any split of the stream.

* `Cusum` — one-sided upper CUSUM S_t = max(0, S_{t−1} + x_t − μ0 − k). μ0 (the in-control error
  rate) is given or estimated from the first `warmup` observations; k = 0.05 (half the smallest
  shift worth detecting, 0.1), h = 50. In-control average run length ≈ exp(2kh/σ²) ≥ e^20
  observations for any Bernoulli σ² ≤ 0.25. Closed form used: with C_t = S_0 + Σ_{i≤t} d_i,
  S_t = C_t − min(0, min_{s≤t} C_s).
* `PageHinkley` — m_t = Σ (x_i − x̄_i − δ) with the running mean x̄_i, M_t = min m_i,
  PH_t = m_t − M_t; δ = 0.005, λ = 50 (river's defaults, without fading).

>>> import numpy as np
>>> c = Cusum(mu0=0.1)
>>> c.update(np.zeros(1000)); c.get()["statistic"]
0.0
>>> c.update(np.ones(60)); c.get()["detected"]
True
"""

from __future__ import annotations

import numpy as np


class Cusum:
    """Upper CUSUM of a 0/1 error stream."""

    def __init__(self, *, mu0: float | None = None, k: float = 0.05, h: float = 50.0, warmup: int = 200):
        self.mu0, self.k, self.h, self.warmup = mu0, k, h, warmup
        self._warm: list[np.ndarray] = []
        self._warm_n = 0
        self.statistic = 0.0
        self.count = 0

    def update(self, x) -> None:
        x = np.asarray(x, dtype=np.float64).ravel()
        self.count += len(x)
        if self.mu0 is None:
            need = self.warmup - self._warm_n
            self._warm.append(x[:need])
            self._warm_n += len(x[:need])
            x = x[need:]
            if self._warm_n < self.warmup:
                return
            self.mu0 = float(np.concatenate(self._warm).mean())
            self._warm = []
        if len(x) == 0:
            return
        c = self.statistic + np.cumsum(x - self.mu0 - self.k)
        self.statistic = float(c[-1] - min(0.0, c.min()))

    def get(self) -> dict:
        return {"statistic": self.statistic, "threshold": self.h, "mu0": self.mu0,
                "detected": self.statistic > self.h, "count": self.count}


class PageHinkley:
    """Page–Hinkley test for an increase of the stream's mean."""

    def __init__(self, *, delta: float = 0.005, threshold: float = 50.0):
        self.delta, self.threshold = delta, threshold
        self.count = 0
        self.total = 0.0
        self.m = 0.0
        self.m_min = 0.0

    def update(self, x) -> None:
        x = np.asarray(x, dtype=np.float64).ravel()
        if len(x) == 0:
            return
        means = (self.total + np.cumsum(x)) / (self.count + np.arange(1, len(x) + 1))
        m = self.m + np.cumsum(x - means - self.delta)
        self.m_min = min(self.m_min, float(m.min()))
        self.m = float(m[-1])
        self.total += float(x.sum())
        self.count += len(x)

    @property
    def statistic(self) -> float:
        return self.m - self.m_min

    def get(self) -> dict:
        return {"statistic": self.statistic, "threshold": self.threshold, "detected": self.statistic > self.threshold,
                "count": self.count}
