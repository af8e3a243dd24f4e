"""SQL expressions that SQLite and PostgreSQL spell differently: day arithmetic, local dates.

Timestamps are stored in UTC (SQLite keeps them as ``YYYY-MM-DD HH:MM:SS[.ffffff]``
text). Local calendar buckets (day, month) use the workspace's time zone: PostgreSQL
converts with ``timezone()``; SQLite shifts by the zone's fixed offset when the zone
has no daylight saving (Asia/Tokyo and most of Asia) and otherwise calls the
``kizuna_local`` function ``store.engine`` registers on every connection.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from kizuna.store.types import UTCDateTime

__all__ = [
    "as_of_param",
    "days_between",
    "fixed_offset_minutes",
    "local_day",
    "local_days_between",
    "local_month",
]

_DAY_SECONDS = 86_400.0


def as_of_param(value: datetime, name: str = "as_of") -> sa.BindParameter[datetime]:
    """A timestamp bound with the store's UTC type (so SQLite compares text to text).

    Unique, so one statement may hold several (a segment compares many windows).
    """
    return sa.bindparam(name, value, type_=UTCDateTime, unique=True)


def days_between(later: Any, earlier: Any, dialect: str) -> sa.ColumnElement[float]:
    """Fractional days from ``earlier`` to ``later`` (both UTC timestamps)."""
    if dialect == "sqlite":
        return sa.func.julianday(later) - sa.func.julianday(earlier)
    seconds = sa.func.extract("epoch", later - earlier)
    return sa.cast(sa.cast(seconds, sa.Float) / _DAY_SECONDS, sa.Float)


@lru_cache(maxsize=64)
def fixed_offset_minutes(time_zone: str) -> int | None:
    """The zone's UTC offset in minutes when it has been constant since 2000, else ``None``."""
    zone = ZoneInfo(time_zone)
    offsets = set()
    moment = datetime(2000, 1, 1, tzinfo=UTC)
    end = datetime(2040, 1, 1, tzinfo=UTC)
    while moment < end:
        delta = moment.astimezone(zone).utcoffset()
        offsets.add(int((delta or timedelta()).total_seconds() // 60))
        moment += timedelta(days=61)
    return offsets.pop() if len(offsets) == 1 else None


def _local_text(column: Any, time_zone: str) -> sa.ColumnElement[str]:
    offset = fixed_offset_minutes(time_zone)
    if offset is not None:
        return sa.func.datetime(column, f"{offset:+d} minutes")
    return sa.func.kizuna_local(column, time_zone)


def local_days_between(later: Any, earlier: Any, dialect: str) -> sa.ColumnElement[int]:
    """Whole days between two local ``YYYY-MM-DD`` texts."""
    if dialect == "sqlite":
        return sa.cast(sa.func.julianday(later) - sa.func.julianday(earlier), sa.Integer)
    return sa.cast(sa.cast(later, sa.Date) - sa.cast(earlier, sa.Date), sa.Integer)


def local_day(column: Any, time_zone: str, dialect: str) -> sa.ColumnElement[str]:
    """The local calendar date of a UTC timestamp as ``YYYY-MM-DD`` text."""
    if dialect == "sqlite":
        return sa.func.strftime("%Y-%m-%d", _local_text(column, time_zone))
    return sa.func.to_char(sa.func.timezone(time_zone, column), "YYYY-MM-DD")


def local_month(column: Any, time_zone: str, dialect: str) -> sa.ColumnElement[str]:
    """The local calendar month of a UTC timestamp as ``YYYY-MM`` text."""
    if dialect == "sqlite":
        return sa.func.strftime("%Y-%m", _local_text(column, time_zone))
    return sa.func.to_char(sa.func.timezone(time_zone, column), "YYYY-MM")
