"""The filters and tests templates may use, beyond Jinja's safe built-ins.

``yen`` (¥12,345), ``number`` (12,345), ``date`` / ``datetime`` in the workspace's
time zone (``ja`` 2026年4月1日, ``ja_weekday`` 2026年4月1日(水), ``en`` April 1,
2026, ``iso``, ``slash`` or a strftime pattern), ``truncate`` by characters (Japanese
has no spaces to cut at, so Jinja's word-aware one does not fit), and a ``default``
that also replaces ``None``. A filter given a missing value fails the render the way
printing it would (see :mod:`kizuna.content.missing`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from jinja2.runtime import Undefined

from kizuna.content.missing import guard

__all__ = ["DATE_FORMATS", "default", "is_defined", "make_filters", "number", "truncate", "yen"]

_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")  # fmt: skip
_JA_WEEKDAYS = "月火水木金土日"
_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DATE_FORMATS: dict[str, str] = {
    "ja": "{y}年{m}月{d}日",
    "ja_short": "{m}月{d}日",
    "ja_weekday": "{y}年{m}月{d}日({wj})",
    "ja_short_weekday": "{m}月{d}日({wj})",
    "en": "{month} {d}, {y}",
    "en_short": "{mon} {d}",
    "en_weekday": "{weekday}, {month} {d}, {y}",
    "iso": "{y:04d}-{m:02d}-{d:02d}",
    "slash": "{y:04d}/{m:02d}/{d:02d}",
}


def _given(value: Any) -> bool:
    """False for a missing value (after failing or recording its use, see MissingValue)."""
    if isinstance(value, Undefined):
        str(value)
        return False
    return value is not None


def _number(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise TypeError(f"{name} needs a number, not {type(value).__name__}")
    try:
        return Decimal(str(value).replace(",", ""))
    except ArithmeticError:
        raise ValueError(f"{name} needs a number, not {value!r}") from None


def yen(value: Any) -> str:
    """An amount in whole yen with thousands separators: ``¥12,345`` (``-¥500``)."""
    if not _given(value):
        return ""
    whole = int(_number(value, "yen").quantize(Decimal(1), ROUND_HALF_UP))
    return f"-¥{-whole:,}" if whole < 0 else f"¥{whole:,}"


def number(value: Any, digits: int = 0) -> str:
    """A number with thousands separators and ``digits`` decimals: ``12,345``."""
    if not _given(value):
        return ""
    step = Decimal(1).scaleb(-digits)
    return f"{_number(value, 'number').quantize(step, ROUND_HALF_UP):,}"


def truncate(value: Any, length: int = 50, end: str = "…") -> str:
    """At most ``length`` characters, ``end`` included when cut."""
    if not _given(value):
        return ""
    if length < len(end):
        raise ValueError(f"truncate needs a length of at least {len(end)}")
    text = str(value)
    return text if len(text) <= length else text[: length - len(end)] + end


def default(value: Any, fallback: Any = "", boolean: bool = False) -> Any:
    """``value``, or ``fallback`` when it is missing or ``None`` (or falsy with boolean=True)."""
    if isinstance(value, Undefined):
        guard(value)
        return fallback
    if value is None or (boolean and not value):
        return fallback
    return value


def is_defined(value: Any) -> bool:
    """The ``defined`` test: true when the customer has the value (``None`` counts as not)."""
    if isinstance(value, Undefined):
        guard(value)
        return False
    return value is not None


def _local(value: Any, zone: ZoneInfo) -> date:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value or " " in value.strip() else (
                date.fromisoformat(value))  # fmt: skip
        except ValueError:
            raise ValueError(f"not an ISO 8601 date: {value!r}") from None
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(zone)
    if isinstance(value, date):
        return value
    raise TypeError(f"date needs a date or a datetime, not {type(value).__name__}")


def _format_date(day: date, fmt: str) -> str:
    if "%" in fmt:
        return day.strftime(fmt)
    pattern = DATE_FORMATS.get(fmt)
    if pattern is None:
        raise ValueError(f"unknown date format {fmt!r}; use {', '.join(DATE_FORMATS)} or %-codes")
    month = _EN_MONTHS[day.month - 1]
    return pattern.format(y=day.year, m=day.month, d=day.day, month=month, mon=month[:3],
                          wj=_JA_WEEKDAYS[day.weekday()],
                          weekday=_EN_WEEKDAYS[day.weekday()])  # fmt: skip


def make_filters(zone: ZoneInfo) -> dict[str, Callable[..., Any]]:
    """The filters of an environment whose dates are shown in ``zone``."""

    def date_filter(value: Any, fmt: str = "ja") -> str:
        """A date in the workspace's zone (format name or strftime pattern)."""
        if not _given(value):
            return ""
        return _format_date(_local(value, zone), fmt)

    def datetime_filter(value: Any, fmt: str = "ja") -> str:
        """A date and time (HH:MM) in the workspace's zone."""
        if not _given(value):
            return ""
        local = _local(value, zone)
        if "%" in fmt:
            return local.strftime(fmt)
        clock = f" {local:%H:%M}" if isinstance(local, datetime) else ""
        return _format_date(local, fmt) + clock

    return {"yen": yen, "number": number, "truncate": truncate, "default": default,
            "d": default, "date": date_filter, "datetime": datetime_filter}  # fmt: skip
