"""Minimum detectable effect and required size, checked against statsmodels."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from kizuna.errors import InvalidInput
from kizuna.segments.power import minimum_detectable_effect, required_size, treatment_rate

SPLITS = [(9_000, 1_000, 0.02), (90_000, 10_000, 0.02), (500, 500, 0.1), (45_000, 5_000, 0.005)]


@pytest.mark.parametrize(("n_treatment", "n_control", "baseline"), SPLITS)
@pytest.mark.parametrize(("alpha", "power"), [(0.05, 0.8), (0.01, 0.9)])
def test_mde_matches_statsmodels(n_treatment, n_control, baseline, alpha, power):
    mde = minimum_detectable_effect(n_treatment, n_control, baseline, alpha=alpha, power=power)
    expected_h = NormalIndPower().solve_power(
        effect_size=None, nobs1=n_treatment, alpha=alpha, power=power,
        ratio=n_control / n_treatment, alternative="two-sided",
    )  # fmt: skip
    assert mde.effect_size == pytest.approx(expected_h, rel=1e-4)
    assert mde.treatment_rate is not None and mde.measurable
    assert proportion_effectsize(mde.treatment_rate, baseline) == pytest.approx(mde.effect_size)
    assert mde.absolute == pytest.approx(mde.treatment_rate - baseline)
    assert mde.relative == pytest.approx(mde.absolute / baseline)
    # At exactly that effect the design has the asked-for power.
    achieved = NormalIndPower().power(
        mde.effect_size, n_treatment, alpha, ratio=n_control / n_treatment
    )
    assert achieved == pytest.approx(power, abs=1e-9)


@pytest.mark.parametrize(("baseline", "lift", "control_share"),
                         [(0.02, 0.2, 0.1), (0.05, 0.1, 0.5), (0.01, 1.0, 0.2)])  # fmt: skip
def test_required_size_matches_statsmodels(baseline, lift, control_share):
    size = required_size(baseline, lift, control_share=control_share)
    ratio = control_share / (1 - control_share)
    h = proportion_effectsize(baseline * (1 + lift), baseline)
    nobs1 = NormalIndPower().solve_power(effect_size=h, alpha=0.05, power=0.8, ratio=ratio)
    assert nobs1 <= size.treatment < nobs1 + 1 + 1e-6
    assert nobs1 * ratio <= size.control < nobs1 * ratio + 1 + 1e-6
    assert size.total == size.treatment + size.control
    # The inverse: that many customers detect (about) that lift.
    mde = minimum_detectable_effect(size.treatment, size.control, baseline)
    assert mde.relative == pytest.approx(lift, rel=1e-3) and mde.relative <= lift


def test_the_ten_percent_control_example():
    # 100,000 members, 10% control, 2% baseline. By hand: n_eff = 1/(1/90000 + 1/10000)
    # = 9000; h = (1.95996 + 0.84162) / sqrt(9000) = 0.029531; p = sin(asin(sqrt(0.02))
    # + h/2)^2 = 0.024343: +0.43 points (+21.7%) is detectable.
    mde = minimum_detectable_effect(90_000, 10_000, 0.02)
    assert mde.effect_size == pytest.approx(0.029531, abs=1e-6)
    assert mde.absolute == pytest.approx(0.004343, abs=1e-6)
    assert mde.relative == pytest.approx(0.2172, abs=1e-4)
    bigger = minimum_detectable_effect(900_000, 100_000, 0.02)
    assert bigger.absolute is not None and bigger.absolute < mde.absolute


def test_tiny_or_empty_groups_are_not_measurable():
    empty = minimum_detectable_effect(100, 0, 0.02)
    assert not empty.measurable and math.isinf(empty.effect_size) and empty.relative is None
    tiny = minimum_detectable_effect(2, 1, 0.5)  # would need a rate above 100%
    assert not tiny.measurable and tiny.absolute is None
    assert treatment_rate(0.99, 1.0) is None


def test_bad_parameters_name_their_field():
    with pytest.raises(InvalidInput) as error:
        minimum_detectable_effect(10, 10, 1.5, alpha=0)
    assert {p.field for p in error.value.problems} == {"baseline", "alpha"}
    with pytest.raises(InvalidInput) as error:
        required_size(0.6, 1.0, control_share=1.0)
    assert {p.field for p in error.value.problems} == {"control_share", "lift"}
    with pytest.raises(InvalidInput) as error:
        minimum_detectable_effect(10, 10, 0.1, alpha=0.5, power=0.4)
    assert error.value.problems[0].field == "power"
