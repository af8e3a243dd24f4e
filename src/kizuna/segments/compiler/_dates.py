"""Date conditions and windows as half-open UTC ranges ``[start, end)``.

A bare date means the whole local day in the workspace's zone: ``before 2026-05-01``
ends where that day starts, ``after 2026-05-01`` starts where the next day starts,
``between [a, b]`` covers both days. A date-time without a zone is local time.
Relative ranges count from ``now``: ``within_last_days: 30`` is ``[now - 30 d, now]``,
``older_than_days: 30`` is before ``now - 30 d``, ``within_next_days: 7`` is
``[now, now + 7 d]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from kizuna.analytics.sql import as_of_param
from kizuna.errors import InvalidInput, Problem
from kizuna.segments.compiler._context import at
from kizuna.segments.definition import Window

__all__ = ["Range", "date_range", "in_range", "local_date_text", "window_range"]

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Range:
    """``[start, end)`` in UTC; ``None`` leaves a side open."""

    start: datetime | None
    end: datetime | None

    def holds(self, moment: datetime | None) -> bool:
        """Whether ``moment`` lies in the range (the Python twin of :func:`in_range`)."""
        if moment is None:
            return False
        return (self.start is None or moment >= self.start) and (
            self.end is None or moment < self.end
        )


def _moment(value: object, zone: ZoneInfo, where: str) -> tuple[datetime, bool]:
    """A value as an aware datetime and whether it was a whole day."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)), False
    if isinstance(value, date):
        return datetime.combine(value, time(), zone), True
    if isinstance(value, str):
        try:
            if len(value.strip()) == 10:
                return datetime.combine(date.fromisoformat(value.strip()), time(), zone), True
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=zone)), False
    raise InvalidInput(
        Problem("invalid_date", f"expected a date like 2026-05-01, got {value!r}", where)
    )


def _start(value: object, zone: ZoneInfo, where: str) -> datetime:
    return _moment(value, zone, where)[0].astimezone(UTC)


def _end(value: object, zone: ZoneInfo, where: str) -> datetime:
    moment, whole_day = _moment(value, zone, where)
    if whole_day:
        return datetime.combine(moment.date() + timedelta(days=1), time(), zone).astimezone(UTC)
    return moment.astimezone(UTC) + _TICK


def _days(value: object, where: str) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(Problem("invalid_days", "expected a whole number of days ≥ 0", where))
    return timedelta(days=value)


def date_range(op: str, value: object, now: datetime, time_zone: str, where: str) -> Range:
    """The UTC range a date condition accepts (``where`` is the value's path, for errors)."""
    zone = ZoneInfo(time_zone)
    if op == "before":
        return Range(None, _start(value, zone, where))
    if op == "after":
        return Range(_end(value, zone, where), None)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise InvalidInput(Problem("invalid_value", "between needs [first, last]", where))
        return Range(_start(value[0], zone, where), _end(value[1], zone, where))
    if op == "within_last_days":
        return Range(now - _days(value, where), now + _TICK)
    if op == "older_than_days":
        return Range(None, now - _days(value, where))
    if op == "within_next_days":
        return Range(now, now + _days(value, where) + _TICK)
    raise InvalidInput(Problem("unknown_operator", f"{op} does not apply to dates", where))


def window_range(window: Window | None, now: datetime, time_zone: str, where: str) -> Range:
    """The range of a window; it never reaches past ``now`` (no events from the future)."""
    if window is None:
        return Range(None, now + _TICK)
    if window.days is not None:
        return Range(now - timedelta(days=window.days), now + _TICK)
    zone = ZoneInfo(time_zone)
    start = None if window.since is None else _start(window.since, zone, at(where, "since"))
    end = now + _TICK
    if window.until is not None:
        end = min(end, _end(window.until, zone, at(where, "until")))
    return Range(start, end)


def in_range(column: Any, bounds: Range) -> sa.ColumnElement[bool]:
    """``column`` (a UTC timestamp) lies in ``bounds``."""
    tests = []
    if bounds.start is not None:
        tests.append(column >= as_of_param(bounds.start, "start"))
    if bounds.end is not None:
        tests.append(column < as_of_param(bounds.end, "end"))
    return sa.and_(sa.true(), *tests)


def local_date_text(moment: datetime, time_zone: str) -> str:
    """The local calendar day on or after ``moment`` starts, as ``YYYY-MM-DD``.

    Used for dates kept as text (free attributes): a text day ``d`` is in ``[s, e)``
    exactly when ``local_date_text(s) <= d < local_date_text(e)``.
    """
    local = moment.astimezone(ZoneInfo(time_zone))
    day = local.date()
    if local.time() != time():
        day += timedelta(days=1)
    return day.isoformat()
