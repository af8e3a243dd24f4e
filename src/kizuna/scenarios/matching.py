"""Matching one event against a trigger, a goal or a wait in Python, as the SQL compiler would.

The semantics follow :mod:`kizuna.segments.compiler._values`: a filter compares
only with a stored value of the same kind (text, number, boolean), a missing or
other-kind value never equals, and ``not_in`` / ``not_exists`` hold for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kizuna.scenarios.definition import EventMatch
from kizuna.segments.definition import PropertyFilter

__all__ = ["event_matches", "filters_match", "property_value"]

_MISSING = object()


def property_value(properties: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (``product.category``), or a sentinel when absent."""
    value: Any = properties
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return _MISSING
        value = value[key]
    return _MISSING if value is None else value


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return None


def _same(stored: Any, wanted: Any) -> bool:
    return _kind(stored) is not None and _kind(stored) == _kind(wanted) and stored == wanted


def _ordered(stored: Any, op: str, wanted: Any) -> bool:
    if _kind(stored) != _kind(wanted) or _kind(stored) not in ("number", "text"):
        return False
    if op == "gt":
        return bool(stored > wanted)
    if op == "gte":
        return bool(stored >= wanted)
    if op == "lt":
        return bool(stored < wanted)
    return bool(stored <= wanted)


def _holds(f: PropertyFilter, stored: Any) -> bool:
    op, wanted = f.op, f.value
    if op in ("exists", "not_exists"):
        return (stored is not _MISSING) == (op == "exists")
    items: Sequence[Any] = wanted if isinstance(wanted, list) else [wanted]
    if op in ("in", "not_in"):
        found = any(_same(stored, item) for item in items)
        return found if op == "in" else not found
    if stored is _MISSING:
        return False
    if op == "eq":
        return _same(stored, wanted)
    if op == "ne":
        return _kind(stored) == _kind(wanted) and stored != wanted
    if op == "contains":
        return isinstance(stored, str) and isinstance(wanted, str) and wanted in stored
    if op == "between":
        low, high = items[0], items[1]
        return _ordered(stored, "gte", low) and _ordered(stored, "lte", high)
    return _ordered(stored, op, wanted)


def filters_match(filters: Sequence[PropertyFilter], properties: Mapping[str, Any]) -> bool:
    """Whether every filter holds on ``properties``."""
    return all(_holds(f, property_value(properties, f.property)) for f in filters)


def event_matches(match: EventMatch, name: str, properties: Mapping[str, Any]) -> bool:
    """Whether an event (name and properties) is the one ``match`` describes."""
    return match.event == name and filters_match(match.where, properties)
