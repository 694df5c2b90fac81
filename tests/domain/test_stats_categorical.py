"""Chi-square on the 2×K table against scipy.stats.chi2_contingency."""

import numpy as np
import pytest
from scipy import stats

from driftd.server.domain.stats_categorical import chi2_2xk


@pytest.mark.parametrize("seed", range(8))
def test_chi2_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    ref = rng.integers(0, 500, size=k)
    cur = rng.integers(0, 50, size=k)
    ref[0] = cur[0] = 0  # a category nobody has: dropped, as scipy would reject it
    r = chi2_2xk(ref, cur)
    keep = (ref + cur) > 0
    s = stats.chi2_contingency(np.stack([ref[keep], cur[keep]]))
    assert r.statistic == pytest.approx(s.statistic, rel=1e-10)
    assert r.p_value == pytest.approx(s.pvalue, rel=1e-8, abs=1e-300)
    assert r.dof == s.dof


def test_two_categories_use_yates_like_scipy():
    r = chi2_2xk(np.array([50, 50]), np.array([30, 70]))
    s = stats.chi2_contingency([[50, 50], [30, 70]])
    assert r.dof == 1 and r.statistic == pytest.approx(s.statistic, rel=1e-12)


def test_single_category_is_no_evidence():
    r = chi2_2xk(np.array([100, 0]), np.array([7, 0]))
    assert (r.statistic, r.p_value, r.dof) == (0.0, 1.0, 0)


def test_empty_side_is_nan():
    r = chi2_2xk(np.array([1, 2]), np.array([0, 0]))
    assert np.isnan(r.statistic)
