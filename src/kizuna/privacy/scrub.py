"""Removing an erased customer's personal values from free text and JSON documents.

Ingestion already keeps personal keys out of event properties and context
(``strip_personal``), but values can still hide in free text: a bounce message
quoting the address, a search term, a page URL with ``?email=``, a scenario's
trigger payload. An erasure therefore (1) strips personal keys again, (2) drops
the context keys that identify a device or a place, and (3) replaces every
occurrence of the customer's known values (and their common spellings) with
``[erased]``, case-insensitively. Only the erased customer's own rows are passed here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import phonenumbers

from kizuna.ingest.segment import strip_personal

__all__ = ["CONTEXT_IDENTIFYING", "REDACTED", "Redactor", "spellings"]

REDACTED = "[erased]"
# Segment context keys that point at a person's device, network address or place.
CONTEXT_IDENTIFYING = frozenset({"ip", "traits", "location", "device"})
_MIN_TOKEN = 2  # a single character identifies no one, and would erase too much text
_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_POSTAL = re.compile(r"^(\d{3})-(\d{4})$")


def _phone_spellings(value: str) -> set[str]:
    try:
        number = phonenumbers.parse(value, "JP")
    except phonenumbers.NumberParseException:
        return set()
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return {national, national.replace("-", "").replace(" ", ""), value.lstrip("+")}


def spellings(value: str) -> set[str]:
    """``value`` and the other ways it is commonly written (phones, dates, postal codes)."""
    text = value.strip()
    found = {text}
    if text.startswith("+") and text[1:].isdigit():
        found |= _phone_spellings(text)
    if day := _ISO_DAY.match(text):
        y, m, d = day.groups()
        found |= {f"{y}/{m}/{d}", f"{y}{m}{d}", f"{y}年{int(m)}月{int(d)}日"}
    if postal := _POSTAL.match(text):
        found.add("".join(postal.groups()))
    if "@" in text:
        local = text.split("@", 1)[0]
        if len(local) >= 3:
            found.add(local)
    return {s for s in found if len(s) >= _MIN_TOKEN}


class Redactor:
    """Replaces every known personal value in text and documents with ``[erased]``."""

    def __init__(self, values: Iterable[str]) -> None:
        tokens = {s for v in values if v for s in spellings(v)}
        ordered = sorted(tokens, key=len, reverse=True)  # the longest spelling wins
        self._pattern = (
            re.compile("|".join(re.escape(t) for t in ordered), re.IGNORECASE) if ordered else None
        )

    def text(self, value: str | None) -> str | None:
        """``value`` with every known personal value replaced."""
        if value is None or self._pattern is None:
            return value
        return self._pattern.sub(REDACTED, value)

    def doc(
        self, value: Any, *, keep: frozenset[str] = frozenset(), drop: frozenset[str] = frozenset()
    ) -> Any:
        """A copy of a JSON document without personal keys, ``drop`` keys or known values.

        ``keep`` names keys that are not personal where the document comes from
        (``name`` in event properties is a product's); ``drop`` applies at the top level.
        """
        if isinstance(value, dict):
            cleaned = strip_personal(value, keep)
            return {self.text(k): self._walk(v) for k, v in cleaned.items() if k not in drop}
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {self.text(k): self._walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value
