"""Normalization of identifiers and Japanese-style values before they are hashed or stored.

Each function returns the canonical form or raises :class:`kizuna.errors.InvalidInput`
naming the field, so that callers at the edge can report the row or request.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from dateutil import parser as date_parser
from email_validator import EmailNotValidError, validate_email

from kizuna.errors import InvalidInput, Problem

__all__ = [
    "nfkc",
    "normalize_email",
    "normalize_phone",
    "normalize_postal_code",
    "parse_date",
    "parse_datetime",
]

_POSTAL = re.compile(r"^(\d{3})-?(\d{4})$")
_EXCEL_EPOCH = datetime(1899, 12, 30, tzinfo=UTC)
_EXCEL_SERIAL = re.compile(r"^\d{5}(\.\d+)?$")
_JA_DATE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日(.*)$")


def nfkc(text: str) -> str:
    """Fold full-width digits, letters and symbols to their ASCII forms and trim."""
    return unicodedata.normalize("NFKC", text).strip()


def normalize_email(value: str, field: str = "email") -> str:
    """Trim and lower-case an email address; raise InvalidInput when it is not one."""
    candidate = nfkc(value).lower()
    try:
        validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(
            Problem("invalid_email", f"not a valid email address ({exc})", field)
        ) from exc
    return candidate


def normalize_phone(value: str, field: str = "phone", region: str = "JP") -> str:
    """Return the E.164 form of a phone number, Japan being the default region."""
    candidate = nfkc(value)
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(Problem("invalid_phone", f"not a phone number ({exc})", field)) from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput(Problem("invalid_phone", "not a possible phone number", field))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_postal_code(value: str, field: str = "postal_code") -> str:
    """Return a Japanese postal code as ``123-4567`` (full-width digits accepted)."""
    candidate = nfkc(value).replace("〒", "").replace("ー", "-").replace("−", "-").strip()
    match = _POSTAL.match(candidate)
    if not match:
        raise InvalidInput(Problem("invalid_postal_code", "expected 7 digits like 123-4567", field))
    return f"{match.group(1)}-{match.group(2)}"


def parse_datetime(value: object, field: str, tz: str = "Asia/Tokyo") -> datetime:
    """Parse a timestamp in the forms shops export; naive values are in ``tz``. Returns UTC.

    Accepts datetimes, ISO 8601, ``2024/4/1``, ``2024-04-01 10:00``, ``2024年4月1日``
    and Excel serial day numbers (``45383``, ``45383.5``).
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        parsed = _from_excel_serial(float(value), tz)
    elif isinstance(value, str) and value.strip():
        parsed = _parse_text(nfkc(value), field, tz)
    else:
        raise InvalidInput(
            Problem("invalid_date", f"expected a date or time, got {value!r}", field)
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed.astimezone(UTC)


def parse_date(value: object, field: str) -> date:
    """Parse a calendar date (a birthday, say) in the same forms as :func:`parse_datetime`."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return parse_datetime(value, field, "UTC").date()


def _parse_text(text: str, field: str, tz: str) -> datetime:
    if _EXCEL_SERIAL.match(text):
        return _from_excel_serial(float(text), tz)
    ja = _JA_DATE.match(text)
    if ja:
        text = f"{ja.group(1)}-{ja.group(2)}-{ja.group(3)}{ja.group(4)}"
    try:
        return date_parser.isoparse(text)
    except ValueError:
        pass
    try:
        return date_parser.parse(text, yearfirst=True, dayfirst=False)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(
            Problem("invalid_date", f"cannot read {text!r} as a date or time", field)
        ) from exc


def _from_excel_serial(serial: float, tz: str) -> datetime:
    # Excel serials are local wall-clock days since 1899-12-30.
    if not 1 <= serial < 2_958_466:
        raise InvalidInput(Problem("invalid_date", f"{serial} is not an Excel date serial"))
    wall = _EXCEL_EPOCH + timedelta(days=serial)
    return wall.replace(tzinfo=ZoneInfo(tz))
