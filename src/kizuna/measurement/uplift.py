"""Uplift of treatment over control, and between A/B variants, from group aggregates.

Every comparison works from four numbers per group — customers, converters, the sum
and the sum of squares of revenue per customer (``GroupOutcome``) — so a report over
a million recipients never reads a customer row.

* **Conversion rate**: the difference ``p_t − p_c`` with Newcomb's hybrid-score 95%
  interval (good coverage at the low rates campaigns see), the ratio ``p_t / p_c − 1``
  with the log interval, and the two-sided p-value of the pooled two-proportion
  z-test — the same numbers as statsmodels' ``confint_proportions_2indep`` and
  ``proportions_ztest``.
* **Revenue per customer**: Welch's t-test and interval (unequal variances,
  Welch–Satterthwaite degrees of freedom), as ``scipy.stats.ttest_ind(equal_var=False)``.
* **Incremental** conversions and revenue: the per-customer difference times the
  treated customers, with the interval scaled the same way.
* **Variants** are each compared with the *first* variant (the campaign's reference,
  usually the current content), never with the best: picking the winner first and
  then testing it against the rest overstates its lead. With more than two variants
  the p-values are also given Bonferroni-adjusted for the number of comparisons.
* **Not enough data yet**: a comparison that is not significant and whose groups are
  too small to detect the hoped-for lift (default +20%, as the segment 4R report)
  says so, with the customers per group still needed — from
  ``kizuna.segments.power``, the same maths as the 4R report.

Pure functions: no store, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from scipy.stats import norm
from scipy.stats import t as student_t

from kizuna.segments.power import minimum_detectable_effect, required_size

__all__ = [
    "ALPHA",
    "HOPED_LIFT",
    "MeanComparison",
    "Outcome",
    "RateComparison",
    "Uplift",
    "Verdict",
    "compare",
    "compare_means",
    "compare_rates",
    "compare_variants",
]

ALPHA, POWER = 0.05, 0.8
HOPED_LIFT = 0.2  # the relative lift a test should be able to see (+20%)
Verdict = Literal["better", "worse", "no_difference", "not_enough_data"]


class Outcome(Protocol):
    """What a comparison needs of a group (``kizuna.measurement.metrics.GroupOutcome``)."""

    @property
    def customers(self) -> int: ...
    @property
    def converters(self) -> int: ...
    @property
    def revenue(self) -> float: ...
    @property
    def revenue_sq(self) -> float: ...


@dataclass(frozen=True, slots=True)
class RateComparison:
    """Conversion rate of a group against a reference group."""

    rate: float
    reference_rate: float
    absolute: float  # rate points
    absolute_low: float
    absolute_high: float
    relative: float | None  # rate / reference_rate - 1; None when the reference is 0
    relative_low: float | None
    relative_high: float | None
    z: float
    p_value: float


@dataclass(frozen=True, slots=True)
class MeanComparison:
    """Revenue per customer of a group against a reference group (Welch)."""

    mean: float
    reference_mean: float
    difference: float
    low: float
    high: float
    relative: float | None
    t: float
    df: float
    p_value: float


@dataclass(frozen=True, slots=True)
class Uplift:
    """One group against a reference: rates, revenue, increments and a verdict."""

    group: str  # "treatment" or a variant key
    reference: str  # "control" or the reference variant's key
    customers: int
    reference_customers: int
    conversion: RateComparison | None  # None: a group is empty
    revenue: MeanComparison | None  # None: fewer than 2 customers, or no spread at all
    incremental_conversions: float | None
    incremental_conversions_low: float | None
    incremental_conversions_high: float | None
    incremental_revenue: float | None
    incremental_revenue_low: float | None
    incremental_revenue_high: float | None
    p_adjusted: float | None  # conversion p-value, Bonferroni-adjusted across variants
    verdict: Verdict
    detectable_lift: float | None  # relative lift these sizes detect (95%, 80% power)
    needed_group: int | None  # customers the group needs to detect ``hoped_lift``
    needed_reference: int | None  # and the reference group, at today's split
    still_needed_group: int | None  # more customers before that; 0: enough, or significant
    still_needed_reference: int | None
    hoped_lift: float

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (nested comparisons as dicts; NaN never appears)."""
        return asdict(self)

    @property
    def still_needed(self) -> int | None:
        """More customers in both groups together before ``hoped_lift`` is detectable."""
        if self.still_needed_group is None or self.still_needed_reference is None:
            return None
        return self.still_needed_group + self.still_needed_reference


def _wilson(count: int, n: int, z: float) -> tuple[float, float]:
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _ratio_interval(
    c1: int, n1: int, c0: int, n0: int, z: float
) -> tuple[float | None, float | None]:
    if c1 == 0 or c0 == 0:
        return None, None
    half = z * math.sqrt(1 / c1 - 1 / n1 + 1 / c0 - 1 / n0)
    log_ratio = math.log((c1 / n1) / (c0 / n0))
    return math.exp(log_ratio - half) - 1, math.exp(log_ratio + half) - 1


def compare_rates(c1: int, n1: int, c0: int, n0: int) -> RateComparison:
    """``c1/n1`` against ``c0/n0``: Newcomb interval, log ratio interval, pooled z-test.

    Both groups must have at least one customer (``ValueError`` otherwise).
    """
    if n1 < 1 or n0 < 1:
        raise ValueError("both groups need customers")
    z = float(norm.isf(ALPHA / 2))
    p1, p0 = c1 / n1, c0 / n0
    (l1, u1), (l0, u0) = _wilson(c1, n1, z), _wilson(c0, n0, z)
    diff = p1 - p0
    low = diff - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = diff + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    pooled = (c1 + c0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    stat = diff / se if se > 0 else 0.0
    p_value = float(2 * norm.sf(abs(stat))) if se > 0 else 1.0
    rel_low, rel_high = _ratio_interval(c1, n1, c0, n0, z)
    relative = p1 / p0 - 1 if p0 > 0 else None
    return RateComparison(p1, p0, diff, low, high, relative, rel_low, rel_high, stat, p_value)


def _mean_var(n: int, total: float, total_sq: float) -> tuple[float, float]:
    mean = total / n
    # Sum of squares minus n·mean² can dip below 0 by rounding when all values agree.
    return mean, max(total_sq - total * mean, 0.0) / (n - 1)


def compare_means(
    n1: int, s1: float, ss1: float, n0: int, s0: float, ss0: float
) -> MeanComparison | None:
    """Welch's test of group 1's mean against group 0's from n, sum and sum of squares.

    ``None`` when a group has fewer than 2 customers or neither group varies.
    """
    if n1 < 2 or n0 < 2:
        return None
    (m1, v1), (m0, v0) = _mean_var(n1, s1, ss1), _mean_var(n0, s0, ss0)
    a, b = v1 / n1, v0 / n0
    if a + b <= 0:
        return None
    se = math.sqrt(a + b)
    df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n0 - 1))
    diff = m1 - m0
    stat = diff / se
    crit = float(student_t.isf(ALPHA / 2, df))
    p_value = float(2 * student_t.sf(abs(stat), df))
    relative = diff / m0 if m0 else None
    return MeanComparison(m1, m0, diff, diff - crit * se, diff + crit * se, relative, stat, df,
                          p_value)  # fmt: skip


def _sizes(
    n1: int, n0: int, c1: int, c0: int, hoped_lift: float
) -> tuple[float | None, tuple[int, int] | None]:
    """Detectable relative lift now, and customers each group needs (at today's split)."""
    if n1 < 1 or n0 < 1:
        return None, None
    baseline = c0 / n0 if 0 < c0 < n0 else (c1 + c0) / (n1 + n0)
    if not 0 < baseline < 1 or baseline * (1 + hoped_lift) >= 1:
        return None, None
    mde = minimum_detectable_effect(n1, n0, baseline, ALPHA, POWER).relative
    share = n0 / (n1 + n0)
    needed = required_size(baseline, hoped_lift, control_share=share, alpha=ALPHA, power=POWER)
    return mde, (needed.treatment, needed.control)


def _verdict(rates: RateComparison | None, p: float | None, mde: float | None,
             hoped_lift: float) -> Verdict:  # fmt: skip
    if rates is None or p is None:
        return "not_enough_data"
    if p < ALPHA:
        return "better" if rates.absolute > 0 else "worse"
    if mde is None or mde > hoped_lift:
        return "not_enough_data"
    return "no_difference"


def compare(
    group: str,
    reference: str,
    treated: Outcome,
    base: Outcome,
    *,
    hoped_lift: float = HOPED_LIFT,
    comparisons: int = 1,
) -> Uplift:
    """``treated`` against ``base``: conversion and revenue uplift, increments, verdict.

    ``comparisons`` (> 1 for several variants) Bonferroni-adjusts the p-value the
    verdict uses. Increments are per-customer differences times ``treated.customers``.
    """
    n1, n0 = treated.customers, base.customers
    rates = compare_rates(treated.converters, n1, base.converters, n0) if n1 and n0 else None
    money = compare_means(n1, treated.revenue, treated.revenue_sq,
                          n0, base.revenue, base.revenue_sq)  # fmt: skip
    p_adj = min(1.0, rates.p_value * comparisons) if rates is not None else None
    mde, needed = _sizes(n1, n0, treated.converters, base.converters, hoped_lift)
    verdict = _verdict(rates, p_adj, mde, hoped_lift)
    still = (max(needed[0] - n1, 0), max(needed[1] - n0, 0)) if needed else None
    if still and verdict in ("better", "worse"):
        still = (0, 0)  # a significant result needs no more customers
    return Uplift(
        group, reference, n1, n0, rates, money,
        rates.absolute * n1 if rates else None,
        rates.absolute_low * n1 if rates else None,
        rates.absolute_high * n1 if rates else None,
        money.difference * n1 if money else None,
        money.low * n1 if money else None,
        money.high * n1 if money else None,
        p_adj, verdict, mde, needed[0] if needed else None,
        needed[1] if needed else None, still[0] if still else None,
        still[1] if still else None, hoped_lift,
    )  # fmt: skip


def compare_variants(
    variants: list[tuple[str, Outcome]], *, hoped_lift: float = HOPED_LIFT
) -> list[Uplift]:
    """Each variant after the first against the first (the reference), Bonferroni-adjusted."""
    if len(variants) < 2:
        return []
    (ref_key, ref), rest = variants[0], variants[1:]
    return [compare(key, ref_key, outcome, ref, hoped_lift=hoped_lift, comparisons=len(rest))
            for key, outcome in rest]  # fmt: skip
