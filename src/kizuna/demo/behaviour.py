"""The demo shop's buying behaviour: a BG/NBD-like repeat process with Gamma-Gamma spend.

Each buyer draws a purchase rate ``λ ~ Gamma(r, α)`` and a dropout probability
``p ~ Beta(a, b)``; after every purchase they leave for good with probability
``p``, otherwise the next purchase follows after an exponential gap. Gaps run in
*seasonal time* (the cumulative shop-wide intensity), so December, the New Year
and the summer sale get their peaks without breaking the model. Spend per order
is ``Gamma(6, ν)`` with ``ν ~ Gamma(3, γ)`` per customer (Gamma-Gamma), so RFM
and CLV models fitted to the data find the structure they assume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

__all__ = [
    "Calendar",
    "Purchases",
    "acquisition_days",
    "build_calendar",
    "draw_purchases",
    "time_of_day",
]

JST = ZoneInfo("Asia/Tokyo")
_HOUR_WEIGHTS = np.array(
    [2, 1, 1, 0.5, 0.5, 0.5, 1, 2, 3, 4, 5, 5, 6, 6, 5, 5, 5, 5, 6, 7, 9, 10, 9, 5], dtype=float
)
_HOUR_P = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()


@dataclass(frozen=True, slots=True)
class Calendar:
    """The demo window in days since ``start`` (midnight JST), with its seasonality."""

    start: datetime
    end_day: float  # "now", in days since start
    weight: np.ndarray  # shop-wide intensity per day (mean 1)
    cum: np.ndarray  # cumulative intensity at each day boundary
    sale: np.ndarray  # True on sale days
    dates: list[date]

    def at(self, day: float) -> datetime:
        """The UTC datetime ``day`` days after the start."""
        return self.start + timedelta(days=day)


def _season(d: date) -> tuple[float, bool]:
    m, day = d.month, d.day
    if m == 1 and day <= 3:
        return 2.2, True  # 初売り
    if m == 1 and day <= 10:
        return 1.4, True
    if m == 12:
        return (1.6, day >= 10) if day <= 25 else (1.2, False)
    if m == 7 and day <= 20:
        return 1.5, True  # summer sale
    if m == 11 and day >= 22:
        return 1.4, True  # Black Friday
    if m == 2:
        return 0.85, False
    if m == 8:
        return 0.9, False
    return 1.0, False


def build_calendar(now: datetime, years: int = 3) -> Calendar:
    """A calendar of ``years`` years ending at ``now``."""
    local_now = now.astimezone(JST)
    first = local_now.date().replace(year=local_now.year - years)
    start = datetime(first.year, first.month, first.day, tzinfo=JST).astimezone(UTC)
    end_day = (now - start).total_seconds() / 86_400
    dates = [first + timedelta(days=i) for i in range(int(np.ceil(end_day)) + 1)]
    season = [_season(d) for d in dates]
    weight = np.array([s[0] for s in season])
    weight /= weight.mean()
    cum = np.concatenate([[0.0], np.cumsum(weight)])
    sale = np.array([s[1] for s in season])
    return Calendar(start, end_day, weight, cum, sale, dates)


def time_of_day(rng: np.random.Generator, day: np.ndarray, cal: Calendar) -> np.ndarray:
    """Move each time to a shopping hour of its day (evening peak), never past now."""
    hour = rng.choice(24, size=len(day), p=_HOUR_P) + rng.random(len(day))
    moved = np.floor(day) + hour / 24
    latest = cal.end_day - 1 / 1440
    result: np.ndarray = np.where(moved > latest, np.minimum(day, latest), moved)
    return result


def acquisition_days(rng: np.random.Generator, n: int, cal: Calendar) -> np.ndarray:
    """Sorted first-contact days: seasonal and growing (more customers recently)."""
    days = len(cal.weight)
    growth = cal.weight * np.linspace(0.5, 1.5, days)
    chosen = rng.choice(days, size=n, p=growth / growth.sum())
    return np.sort(np.minimum(chosen + rng.random(n), cal.end_day - 1e-3))


@dataclass(frozen=True, slots=True)
class Purchases:
    """Orders as arrays, sorted by customer then time."""

    customer: np.ndarray  # index into the chunk
    day: np.ndarray
    value: np.ndarray  # the Gamma-Gamma target spend
    seq: np.ndarray  # 0 for a customer's first order


def draw_purchases(
    rng: np.random.Generator, cal: Calendar, first_day: np.ndarray, buyer: np.ndarray
) -> Purchases:
    """Draw every order of the chunk's buyers, from their first purchase to dropout or now."""
    n = len(first_day)
    rate = rng.gamma(0.7, 1 / 30, n)  # mean one purchase per ~43 days while alive
    dropout = rng.beta(1.1, 2.8, n)
    nu = rng.gamma(3.0, 1 / 2_300, n)
    repeats = np.where(buyer, np.minimum(rng.geometric(dropout) - 1, 60), 0)
    owner = np.repeat(np.arange(n), repeats)
    gaps = rng.exponential(1 / rate[owner])
    cum = np.cumsum(gaps)
    before = np.concatenate([[0.0], cum])[np.cumsum(repeats) - repeats]
    offset = np.repeat(before, repeats)
    u_first = np.interp(first_day, np.arange(len(cal.cum)), cal.cum)
    u = u_first[owner] + cum - offset
    keep = u < np.interp(cal.end_day, np.arange(len(cal.cum)), cal.cum)
    repeat_day = np.interp(u[keep], cal.cum, np.arange(len(cal.cum)))
    firsts = np.flatnonzero(buyer)
    customer = np.concatenate([firsts, owner[keep]])
    day = time_of_day(rng, np.concatenate([first_day[firsts], repeat_day]), cal)
    order = np.lexsort((day, customer))
    customer, day = customer[order], day[order]
    seq = np.arange(len(customer)) - np.searchsorted(customer, customer)
    value = rng.gamma(6.0, 1 / nu[customer])
    return Purchases(customer, day, value, seq)
