"""Drift statistics of numeric columns (design §2), vectorised over columns.

* Binned divergences on the baseline's bins (a row of counts per column, bins = [under,
  interior..., over]); `valid` masks padded bins (columns have different bin counts after tied
  quantile edges are collapsed). Proportions are smoothed as p_i + 1e-4, renormalised, on both
  sides, and all three divergences use the smoothed proportions:
  PSI = Σ (q−p)·ln(q/p); KL(baseline ‖ current) = Σ p·ln(p/q) (nats); JS = ½KL(p‖m) + ½KL(q‖m)
  in base 2 (the divergence, in [0, 1]: scipy's `jensenshannon(p, q, base=2) ** 2`).
* Two-sample KS statistic with the asymptotic p-value of `scipy.stats.ks_2samp(x, y,
  method='asymp')` (two-sided: `kstwo.sf(D, round(n·m/(n+m)))`).
* Wasserstein-1 = ∫ |F − G| over the merged support of both samples, as
  `scipy.stats.wasserstein_distance` (any n, m).
Samples are columns of ``[n, F]`` arrays with NaN marking "no value" (NaN and ±inf are excluded).

>>> import numpy as np
>>> x = np.array([[0.0], [1.0], [2.0]]); y = np.array([[0.5], [1.5], [np.nan]])
>>> ks = ks_2samp_columns(x, y)
>>> round(float(ks.statistic[0]), 6), ks.n.tolist(), ks.m.tolist()
(0.333333, [3], [2])
>>> round(float(wasserstein_columns(x, y)[0]), 6)
0.5
>>> float(psi(np.array([[10, 10]]), np.array([[10, 10]]))[0])
0.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

SMOOTHING = 1e-4


def smoothed_proportions(counts: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(c_i / Σc + 1e-4) renormalised over the valid bins; NaN rows where Σc = 0."""
    c = np.asarray(counts, dtype=np.float64)
    if valid is None:
        valid = np.ones(c.shape, dtype=bool)
    c = np.where(valid, c, 0.0)
    total = c.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(valid, c / total + SMOOTHING, 0.0)
        return p / p.sum(-1, keepdims=True)


def _pair(ref_counts, cur_counts, valid):
    p = smoothed_proportions(ref_counts, valid)
    q = smoothed_proportions(cur_counts, valid)
    if valid is None:
        valid = np.ones(p.shape, dtype=bool)
    # padded bins hold 0 on both sides; make their terms exactly 0
    p = np.where(valid, p, 1.0)
    q = np.where(valid, q, 1.0)
    return p, q, valid


def psi(ref_counts, cur_counts, valid=None) -> np.ndarray:
    """Population stability index per row of counts (baseline p, current q)."""
    p, q, v = _pair(ref_counts, cur_counts, valid)
    return np.where(v, (q - p) * np.log(q / p), 0.0).sum(-1)


def kl(ref_counts, cur_counts, valid=None) -> np.ndarray:
    """KL(baseline ‖ current) in nats on the smoothed proportions."""
    p, q, v = _pair(ref_counts, cur_counts, valid)
    return np.where(v, p * np.log(p / q), 0.0).sum(-1)


def js(ref_counts, cur_counts, valid=None) -> np.ndarray:
    """Jensen–Shannon divergence, base 2, on the smoothed proportions (in [0, 1])."""
    p, q, v = _pair(ref_counts, cur_counts, valid)
    m = 0.5 * (p + q)
    t = 0.5 * p * np.log2(p / m) + 0.5 * q * np.log2(q / m)
    return np.maximum(np.where(v, t, 0.0).sum(-1), 0.0)


@dataclass(frozen=True)
class KSResult:
    statistic: np.ndarray  # [F]
    p_value: np.ndarray  # [F]
    n: np.ndarray  # [F] finite values in x
    m: np.ndarray  # [F] finite values in y


def _sorted_merged(x: np.ndarray, y: np.ndarray):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    x = np.where(np.isfinite(x), x, np.nan)
    y = np.where(np.isfinite(y), y, np.nan)
    n = (~np.isnan(x)).sum(0)
    m = (~np.isnan(y)).sum(0)
    z = np.concatenate([x, y], axis=0)
    order = np.argsort(z, axis=0)  # NaN sorts last; order inside ties is irrelevant (see below)
    zs = np.take_along_axis(z, order, axis=0)
    from_x = order < x.shape[0]
    valid = ~np.isnan(zs)
    with np.errstate(invalid="ignore", divide="ignore"):
        fx = np.cumsum(from_x & valid, axis=0) / n
        fy = np.cumsum(~from_x & valid, axis=0) / m
    return zs, valid, fx, fy, n, m


def _ks(zs, valid, fx, fy, n, m) -> KSResult:
    # evaluate the ECDFs only after the last of a run of tied values
    nxt_differs = np.ones_like(valid)
    nxt_differs[:-1] = zs[1:] != zs[:-1]
    at = valid & nxt_differs
    d = np.where(at, np.abs(fx - fy), 0.0).max(0) if len(zs) else np.zeros(zs.shape[1])
    ok = (n > 0) & (m > 0)
    d = np.where(ok, d, np.nan)
    en = np.round(np.where(ok, n * m / np.maximum(n + m, 1), 1.0))
    p = np.where(ok, np.clip(_st.kstwo.sf(np.nan_to_num(d), np.maximum(en, 1)), 0, 1), np.nan)
    return KSResult(d, p, n, m)


def _w1(zs, valid, fx, fy, n, m) -> np.ndarray:
    if len(zs) < 2:
        return np.where((n > 0) & (m > 0), 0.0, np.nan)
    width = np.where(valid[1:] & valid[:-1], zs[1:] - zs[:-1], 0.0)
    w = (np.abs(fx[:-1] - fy[:-1]) * width).sum(0)
    return np.where((n > 0) & (m > 0), w, np.nan)


def ks_2samp_columns(x: np.ndarray, y: np.ndarray) -> KSResult:
    """KS statistic and asymptotic two-sided p-value per column (scipy `ks_2samp(method='asymp')`)."""
    return _ks(*_sorted_merged(x, y))


def wasserstein_columns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """W1 = ∫|F−G| over the merged support, per column (scipy `wasserstein_distance`)."""
    return _w1(*_sorted_merged(x, y))


def ks_and_wasserstein_columns(x: np.ndarray, y: np.ndarray) -> tuple[KSResult, np.ndarray]:
    """Both from one sort of the merged samples."""
    parts = _sorted_merged(x, y)
    return _ks(*parts), _w1(*parts)
