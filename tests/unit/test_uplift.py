"""Uplift statistics agree with statsmodels and SciPy on the same numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import ttest_ind, ttest_ind_from_stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from kizuna.measurement.uplift import compare, compare_means, compare_rates, compare_variants
from kizuna.segments.power import required_size


@dataclass(frozen=True)
class Group:
    customers: int
    converters: int
    revenue: float
    revenue_sq: float


def group(values: np.ndarray) -> Group:
    return Group(len(values), int((values > 0).sum()), float(values.sum()),
                 float((values**2).sum()))  # fmt: skip


@pytest.mark.parametrize(
    ("c1", "n1", "c0", "n0"),
    [(540, 9000, 41, 1000), (3, 120, 0, 15), (1200, 45000, 130, 5000), (50, 50, 49, 50)],
)
def test_rates_match_statsmodels(c1, n1, c0, n0):
    found = compare_rates(c1, n1, c0, n0)
    z, p = proportions_ztest([c1, c0], [n1, n0])
    assert found.z == pytest.approx(z) and found.p_value == pytest.approx(p)
    low, high = confint_proportions_2indep(c1, n1, c0, n0, method="newcomb", compare="diff")
    assert (found.absolute_low, found.absolute_high) == pytest.approx((low, high))
    assert found.absolute == pytest.approx(c1 / n1 - c0 / n0)
    if c0 and c1:
        low, high = confint_proportions_2indep(c1, n1, c0, n0, method="log", compare="ratio")
        assert found.relative_low == pytest.approx(low - 1)
        assert found.relative_high == pytest.approx(high - 1)
    else:
        assert found.relative_low is None


def test_revenue_matches_welch_in_scipy_and_statsmodels():
    rng = np.random.default_rng(7)
    treated = np.where(rng.random(4000) < 0.06, rng.gamma(2.0, 4000.0, 4000), 0.0)
    control = np.where(rng.random(500) < 0.04, rng.gamma(2.0, 4000.0, 500), 0.0)
    t, c = group(treated), group(control)
    found = compare_means(t.customers, t.revenue, t.revenue_sq, c.customers, c.revenue,
                          c.revenue_sq)  # fmt: skip
    assert found is not None
    reference = ttest_ind(treated, control, equal_var=False)
    assert found.t == pytest.approx(reference.statistic)
    assert found.p_value == pytest.approx(reference.pvalue)
    from_stats = ttest_ind_from_stats(treated.mean(), treated.std(ddof=1), len(treated),
                                      control.mean(), control.std(ddof=1), len(control),
                                      equal_var=False)  # fmt: skip
    assert found.p_value == pytest.approx(from_stats.pvalue)
    low, high = CompareMeans(DescrStatsW(treated), DescrStatsW(control)).tconfint_diff(
        usevar="unequal")  # fmt: skip
    assert (found.low, found.high) == pytest.approx((low, high))
    assert found.difference == pytest.approx(treated.mean() - control.mean())


def test_increments_scale_per_customer_differences_by_the_treated():
    treated, control = Group(9000, 540, 9000 * 300.0, 9000 * 1e6), Group(1000, 40, 1000 * 200.0,
                                                                           1000 * 8e5)  # fmt: skip
    uplift = compare("treatment", "control", treated, control)
    assert uplift.incremental_conversions == pytest.approx((540 / 9000 - 40 / 1000) * 9000)
    assert uplift.incremental_revenue == pytest.approx(100.0 * 9000)
    assert uplift.conversion is not None and uplift.conversion.p_value < 0.05
    assert uplift.verdict == "better" and uplift.still_needed == 0


def test_small_groups_say_not_enough_data_and_how_many_more():
    uplift = compare("treatment", "control", Group(180, 5, 0.0, 0.0), Group(20, 0, 0.0, 0.0))
    assert uplift.verdict == "not_enough_data"
    needed = required_size(5 / 200, 0.2, control_share=0.1)
    assert (uplift.needed_group, uplift.needed_reference) == (needed.treatment, needed.control)
    assert uplift.still_needed_group == needed.treatment - 180
    assert uplift.still_needed_reference == needed.control - 20
    assert uplift.still_needed == needed.total - 200
    assert uplift.revenue is None  # nobody spent: no spread to test


def test_empty_control_is_not_enough_data():
    uplift = compare("treatment", "control", Group(100, 5, 500.0, 5e4), Group(0, 0, 0.0, 0.0))
    assert uplift.verdict == "not_enough_data" and uplift.conversion is None
    assert uplift.incremental_conversions is None


def test_large_equal_groups_without_a_difference_say_so():
    uplift = compare("treatment", "control", Group(200_000, 10_000, 0, 0),
                     Group(200_000, 10_020, 0, 0))  # fmt: skip
    assert uplift.verdict == "no_difference" and uplift.still_needed == 0
    assert uplift.detectable_lift is not None and uplift.detectable_lift < 0.2


def test_variants_are_compared_with_the_first_and_adjusted():
    a, b, c = Group(5000, 250, 0, 0), Group(5000, 320, 0, 0), Group(5000, 260, 0, 0)
    found = compare_variants([("A", a), ("B", b), ("C", c)])
    assert [(u.group, u.reference) for u in found] == [("B", "A"), ("C", "A")]
    for u in found:
        assert u.conversion is not None and u.p_adjusted is not None
        assert u.p_adjusted == pytest.approx(min(1.0, 2 * u.conversion.p_value))
    assert found[0].verdict == "better"
    assert compare_variants([("A", a)]) == []
    assert not math.isnan(found[1].conversion.z)
