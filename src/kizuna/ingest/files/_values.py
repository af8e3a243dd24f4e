"""Cell parsing shared by the row converters: numbers, flags, times, ids, and row errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from kizuna.domain.normalize import nfkc, parse_datetime
from kizuna.errors import InvalidInput

__all__ = ["RowError", "describe_validation", "flag", "ident", "integer", "number", "when"]

_TRUE = {"1", "true", "yes", "y", "t", "○", "◯", "はい", "有", "あり", "対象", "セール"}
# 2024/4/1, 2024-04-01 10:00, 2024/4/1 9:30:15: the forms most exports use, read without dateutil.
_COMMON = re.compile(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_FALSE = {"0", "false", "no", "n", "f", "×", "いいえ", "無", "なし", "対象外", "-"}


class RowError(Exception):
    """A row broke a rule; ``reason`` names the column, the field and the rule."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _where(header: str, name: str) -> str:
    return f"column '{header}' ({name})" if header != name else f"field '{name}'"


def number(value: Any, header: str, name: str) -> float | None:
    """A number from ``1,980``, ``￥1980``, ``1980円`` or a numeric cell."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = nfkc(str(value)).replace(",", "").replace("¥", "").replace("円", "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise RowError(f"{_where(header, name)}: {value!r} is not a number") from None


def integer(value: Any, header: str, name: str) -> int | None:
    """A whole number (``3``, ``3.0``, ``３``)."""
    parsed = number(value, header, name)
    if parsed is None:
        return None
    if not parsed.is_integer():
        raise RowError(f"{_where(header, name)}: {value!r} is not a whole number")
    return int(parsed)


def flag(value: Any, header: str, name: str) -> bool | None:
    """A yes/no cell (``1``, ``true``, ``○``, ``はい`` …)."""
    if value is None or isinstance(value, bool):
        return value
    text = nfkc(str(value)).lower()
    if text in _TRUE:
        return True
    if text in _FALSE or not text:
        return False
    raise RowError(f"{_where(header, name)}: {value!r} is not yes or no")


def when(value: Any, header: str, name: str, tz: str) -> datetime | None:
    """A UTC time from any form parse_datetime reads; naive values are in ``tz``."""
    if value is None:
        return None
    if isinstance(value, str):
        parsed = _common(value.strip(), tz)
        if parsed is not None:
            return parsed
    try:
        return parse_datetime(value, name, tz)
    except InvalidInput as exc:
        raise RowError(f"{_where(header, name)}: {exc.problems[0].message}") from None


@lru_cache(maxsize=4096)
def _common(text: str, tz: str) -> datetime | None:
    match = _COMMON.match(text)
    if match is None:
        return None
    y, mo, d, h, mi, sec = (int(p) for p in match.groups(default="0"))
    try:
        return datetime(y, mo, d, h, mi, sec, tzinfo=ZoneInfo(tz)).astimezone(UTC)
    except ValueError:
        return None  # let parse_datetime explain what is wrong


def ident(value: Any) -> str | None:
    """An id as text: ``1001.0`` from a numeric column becomes ``1001``."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def describe_validation(exc: ValidationError, header_of: Any) -> str:
    """Turn pydantic's errors into one reason naming the source column and the rule."""
    parts = []
    for error in exc.errors():
        names = [str(p) for p in error["loc"] if isinstance(p, str)]
        name = names[-1] if names else "row"
        if name == "discount" and names[:1] != ["items"]:
            name = "order_discount"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{_where(header_of(name), name)}: {message}")
    return "; ".join(parts)
