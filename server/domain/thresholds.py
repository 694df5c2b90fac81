"""Calibrated thresholds: the shard scheme, and scaling a threshold to a window's sample sizes.

Null hypothesis of every calibrated threshold: *the window's rows are drawn from the same
distribution as the reference*. Calibration estimates the statistic's distribution under that
null from the reference itself:

1. take (a seeded random subset of at most `calibration_max_rows` of) the reference rows;
2. shuffle them (seeded) and cut them into S equal disjoint shards (default S = 10);
3. for every shard, compute the statistic of the shard (playing the window) against the rest of
   the reference (playing the baseline): binned statistics use the complement's counts; reservoir
   statistics (KS, W1) compare the first ≤k rows of the shard with the first ≤k rows of the next
   shard (a sample of the complement of the same size the engine's reservoirs have); MMD compares
   two disjoint halves of the embedding sample;
4. repeat with fresh shuffles until R values exist (default R = 200);
5. divide each value by the statistic's sampling scale at its sample sizes (n rows on the window
   side, m on the baseline side): 1/n + 1/m for χ²-like statistics (PSI, KL, JS, MMD²),
   sqrt(1/n + 1/m) for KS and W1, 1 for chi-square (its null law does not depend on n);
6. warning = 95th percentile, critical = 99th percentile of the scaled values.

At evaluation a threshold is multiplied back by the scale at the window's own n and the baseline's
m (`Threshold.at`), so one calibration serves windows of any size: the false-alarm rate per
statistic stays ≈ 5 % (warning) / 1 % (critical) for windows from the reference distribution.

>>> import numpy as np
>>> t = Threshold(warning=np.array([2.0]), critical=np.array([3.0]), scale="inv_n")
>>> w, c = t.at(np.array([100]), np.array([100]))
>>> float(w[0]), float(c[0])
(0.04, 0.06)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCALES = ("inv_n", "inv_sqrt_n", "none")


def scale_factor(kind: str, n, m) -> np.ndarray:
    n = np.asarray(n, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        base = np.where((n > 0) & (m > 0), 1.0 / n + 1.0 / m, np.nan)
    if kind == "inv_n":
        return base
    if kind == "inv_sqrt_n":
        return np.sqrt(base)
    if kind == "none":
        return np.ones_like(base)
    raise ValueError(f"unknown scale {kind!r}")


@dataclass(frozen=True)
class Threshold:
    """Scaled warning / critical constants per column; `at(n, m)` gives the thresholds in force."""

    warning: np.ndarray
    critical: np.ndarray
    scale: str

    def at(self, n, m) -> tuple[np.ndarray, np.ndarray]:
        s = scale_factor(self.scale, n, m)
        return self.warning * s, self.critical * s

    def to_json(self) -> dict:
        return {"warning": _floats(self.warning), "critical": _floats(self.critical), "scale": self.scale}

    @classmethod
    def from_json(cls, d: dict) -> "Threshold":
        return cls(np.array([np.nan if v is None else v for v in d["warning"]], dtype=np.float64),
                   np.array([np.nan if v is None else v for v in d["critical"]], dtype=np.float64), d["scale"])


def _floats(a: np.ndarray) -> list:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=np.float64)]


def from_null_values(values: np.ndarray, scale: str) -> Threshold:
    """p95 / p99 over rounds (axis 0) of already-scaled null values [R, F]."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warn = np.nanquantile(values, 0.95, axis=0)
            crit = np.nanquantile(values, 0.99, axis=0)
    return Threshold(warn, crit, scale)


def pooled_by_group(values: np.ndarray, groups: np.ndarray, scale: str) -> Threshold:
    """p95 / p99 of null values [R, F] pooled over the columns that share a group id.

    Used for the binned divergences (PSI, KL, JS): on the reference's own quantile bins their
    scaled null law depends only on the number of bins (≈ χ² with bins − 1 degrees of freedom),
    so pooling the columns with the same bin count estimates the percentiles from R·F values
    instead of R, which removes most of the threshold's sampling noise.
    """
    values = np.asarray(values, dtype=np.float64)
    warn = np.full(values.shape[1], np.nan)
    crit = np.full(values.shape[1], np.nan)
    for g in np.unique(groups):
        cols = groups == g
        pooled = values[:, cols].ravel()
        pooled = pooled[np.isfinite(pooled)]
        if len(pooled):
            warn[cols] = np.quantile(pooled, 0.95)
            crit[cols] = np.quantile(pooled, 0.99)
    return Threshold(warn, crit, scale)


def family_multipliers(values: np.ndarray, per_column: Threshold) -> Threshold:
    """Family-wise multipliers for "any column of the group exceeds its threshold" (max-statistic).

    For every calibration round r, u_r = max over columns of value[r, f] / warning[f] (and v_r with
    the critical constants). The 95th percentile of u (99th of v) is g_warn (g_crit): a window is
    judged WARNING at group level when some column exceeds g_warn × its own warning threshold, so
    a window from the reference distribution trips the group in ≈ 5 % (1 %) of evaluations however
    many columns the group has, and correlated columns are accounted for. Stored with scale "none"
    as 1-element arrays; never below 1.
    """
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            u = np.nanmax(values / per_column.warning[None, :], axis=1)
            v = np.nanmax(values / per_column.critical[None, :], axis=1)
            u, v = u[np.isfinite(u)], v[np.isfinite(v)]
    g_w = max(1.0, float(np.quantile(u, 0.95))) if len(u) else np.nan
    g_c = max(1.0, float(np.quantile(v, 0.99))) if len(v) else np.nan
    return Threshold(np.array([g_w]), np.array([g_c]), "none")


def rate_thresholds(baseline_rate: np.ndarray, n) -> tuple[np.ndarray, np.ndarray]:
    """Data-quality thresholds (NaN / out-of-range / outlier / unseen rates), not shard-calibrated.

    A rate r over n rows is flagged when it exceeds the baseline rate p by more than a binomial
    margin *and* an absolute floor: warning at p + max(0.005, 3·sqrt(p(1−p)/n)), critical at
    p + max(0.02, 5·sqrt(p(1−p)/n)). Null hypothesis: rows hit the condition independently with
    the baseline's probability p. The floors keep one stray NaN from paging anyone while a 1 %
    sentinel value (e.g. −999) or a burst of NaN still counts toward the column's verdict.
    """
    p = np.asarray(baseline_rate, dtype=np.float64)
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    sd = np.sqrt(np.clip(p * (1 - p), 0, None) / n)
    return p + np.maximum(0.005, 3 * sd), p + np.maximum(0.02, 5 * sd)
