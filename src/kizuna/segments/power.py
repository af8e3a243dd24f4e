"""Statistical power of a treatment/control comparison of conversion rates.

The test is the two-sided comparison of two proportions on the arcsine scale: the
effect is Cohen's ``h = 2·asin(√p₂) − 2·asin(√p₁)``, whose estimate is normal with
variance ``1/n_treatment + 1/n_control`` whatever the rates. Power counts both tails,
as ``statsmodels.stats.power.NormalIndPower`` does, so the numbers here match it.

``minimum_detectable_effect`` answers "with this many customers in each group, how big
a lift could we see?"; ``required_size`` answers the reverse, "how many customers do we
need to see this lift?". Pure functions: no store, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from scipy.optimize import brentq
from scipy.stats import norm

from kizuna.errors import InvalidInput, Problem

__all__ = [
    "DetectableEffect",
    "SampleSize",
    "minimum_detectable_effect",
    "required_size",
    "treatment_rate",
]


@dataclass(frozen=True, slots=True)
class DetectableEffect:
    """The smallest lift over ``baseline`` the split detects (``None``: none up to 100%)."""

    baseline: float
    effect_size: float  # Cohen's h; infinite when a group is empty
    treatment_rate: float | None
    absolute: float | None  # treatment_rate - baseline, in rate points
    relative: float | None  # absolute / baseline

    @property
    def measurable(self) -> bool:
        """Whether some conversion rate up to 100% is detectable at all."""
        return self.treatment_rate is not None


@dataclass(frozen=True, slots=True)
class SampleSize:
    """Customers needed in each group (rounded up)."""

    treatment: int
    control: int

    @property
    def total(self) -> int:
        """Both groups together: the segment size needed."""
        return self.treatment + self.control


def _check(baseline: float, alpha: float, power: float) -> None:
    problems = [
        Problem("out_of_range", "must be strictly between 0 and 1", name)
        for name, value in (("baseline", baseline), ("alpha", alpha), ("power", power))
        if not 0 < value < 1
    ]
    if not problems and power <= alpha:
        problems.append(Problem("out_of_range", "must be greater than alpha", "power"))
    if problems:
        raise InvalidInput(problems)


@lru_cache(maxsize=64)
def _standardized_effect(alpha: float, power: float) -> float:
    """``h·√n_eff`` at which the two-sided test reaches ``power`` (independent of n)."""
    crit = float(norm.isf(alpha / 2))

    def shortfall(x: float) -> float:
        return float(norm.sf(crit - x) + norm.cdf(-crit - x)) - power

    upper = crit + float(norm.isf(1 - power)) + 10.0
    return float(brentq(shortfall, 0.0, upper, xtol=1e-12))


def treatment_rate(baseline: float, effect_size: float) -> float | None:
    """The rate ``effect_size`` (Cohen's h) above ``baseline``; ``None`` beyond 100%."""
    phi = 2 * math.asin(math.sqrt(baseline)) + effect_size
    if not math.isfinite(phi) or phi > math.pi:
        return None
    return math.sin(phi / 2) ** 2


def minimum_detectable_effect(
    n_treatment: int, n_control: int, baseline: float, alpha: float = 0.05, power: float = 0.8
) -> DetectableEffect:
    """The smallest lift over ``baseline`` detectable with these group sizes.

    Two-sided at level ``alpha`` with probability ``power``. Raises ``InvalidInput``
    when ``baseline``, ``alpha`` or ``power`` is outside (0, 1) or power <= alpha.
    """
    _check(baseline, alpha, power)
    if n_treatment < 1 or n_control < 1:
        return DetectableEffect(baseline, math.inf, None, None, None)
    n_effective = 1 / (1 / n_treatment + 1 / n_control)
    h = _standardized_effect(alpha, power) / math.sqrt(n_effective)
    rate = treatment_rate(baseline, h)
    if rate is None:
        return DetectableEffect(baseline, h, None, None, None)
    return DetectableEffect(baseline, h, rate, rate - baseline, (rate - baseline) / baseline)


def required_size(
    baseline: float,
    lift: float,
    *,
    control_share: float = 0.1,
    alpha: float = 0.05,
    power: float = 0.8,
) -> SampleSize:
    """Group sizes needed to detect a relative ``lift`` (0.2: +20%) over ``baseline``.

    ``control_share`` is the control group's share of the segment. Raises
    ``InvalidInput`` for rates outside (0, 1), a lift that is not positive or would
    pass 100%, or a control share outside (0, 1).
    """
    _check(baseline, alpha, power)
    problems = []
    if not 0 < control_share < 1:
        problems.append(
            Problem("out_of_range", "must be strictly between 0 and 1", "control_share")
        )
    if not lift > 0 or baseline * (1 + lift) >= 1:
        problems.append(
            Problem("out_of_range", "must be above 0 and keep the rate under 100%", "lift")
        )
    if problems:
        raise InvalidInput(problems)
    target = baseline * (1 + lift)
    h = 2 * math.asin(math.sqrt(target)) - 2 * math.asin(math.sqrt(baseline))
    n_effective = (_standardized_effect(alpha, power) / h) ** 2
    ratio = control_share / (1 - control_share)  # control per treated customer
    treated = n_effective * (1 + ratio) / ratio
    return SampleSize(math.ceil(treated - 1e-9), math.ceil(treated * ratio - 1e-9))
