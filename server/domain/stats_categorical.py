"""Drift statistics of categorical columns: chi-square on the 2×K table, PSI / JS on shares.

Chi-square matches `scipy.stats.chi2_contingency(table)` with its defaults on the 2×K table
[baseline counts; current counts] after dropping categories that neither side has (scipy rejects
zero expected frequencies): Pearson's statistic, dof = K'−1, and Yates' continuity correction when
dof = 1 (scipy's default `correction=True`). A single category (K' = 1) gives statistic 0, p = 1.

>>> import numpy as np
>>> r = chi2_2xk(np.array([50, 50, 0]), np.array([30, 70, 0]))
>>> round(r.statistic, 4), r.dof
(7.5208, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st


@dataclass(frozen=True)
class Chi2Result:
    statistic: float
    p_value: float
    dof: int


def chi2_2xk(ref_counts: np.ndarray, cur_counts: np.ndarray) -> Chi2Result:
    """Chi-square test of homogeneity on [ref; cur] counts (scipy `chi2_contingency` conventions)."""
    obs = np.stack([np.asarray(ref_counts, dtype=np.float64), np.asarray(cur_counts, dtype=np.float64)])
    obs = obs[:, obs.sum(0) > 0]
    if obs.shape[1] == 0 or (obs.sum(1) == 0).any():
        return Chi2Result(float("nan"), float("nan"), 0)
    dof = obs.shape[1] - 1
    if dof == 0:
        return Chi2Result(0.0, 1.0, 0)
    expected = obs.sum(1, keepdims=True) * obs.sum(0, keepdims=True) / obs.sum()
    if dof == 1:
        diff = expected - obs
        obs = obs + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(((obs - expected) ** 2 / expected).sum())
    return Chi2Result(stat, float(_st.chi2.sf(stat, dof)), dof)
