"""Leaves on events: how often something was done in a window, and when it was first / last done."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from kizuna.segments.compiler._aggregates import all_of, count_test, grouped_test
from kizuna.segments.compiler._context import Builder, at
from kizuna.segments.compiler._dates import date_range, in_range, window_range
from kizuna.segments.compiler._values import compare, json_reader
from kizuna.segments.definition import EventCondition, EventTime, PropertyFilter
from kizuna.store.tables import events

__all__ = ["compile_event", "compile_event_time"]


def _filters(where: list[PropertyFilter], b: Builder, path: str) -> list[Any]:
    dialect = b.ctx.dialect
    return [
        compare(json_reader(events.c.properties, f.property.split("."), dialect), f.op, f.value,
                at(path, f"where[{index}]"))
        for index, f in enumerate(where)
    ]  # fmt: skip


def _times(node: EventCondition) -> tuple[Callable[[Any], Any], list[float]]:
    """The count test of ``node`` (neither bound: at least once) and the bounds it uses."""
    low = 1 if node.at_least is None and node.at_most is None else node.at_least
    high = node.at_most
    bounds = [float(v) for v in (low, high) if v is not None]

    def test(n: Any) -> Any:
        return all_of(
            [*([n >= low] if low is not None else []), *([n <= high] if high is not None else [])]
        )

    return test, bounds


def compile_event(node: EventCondition, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """Performed ``name`` (matching the filters) at least / at most N times in the window."""
    ctx = b.ctx
    window = window_range(node.within, ctx.now, ctx.workspace.time_zone, at(where, "within"))
    rows = sa.select(events.c.customer_id).where(
        *b.scoped(events),
        events.c.name == node.name,
        in_range(events.c.occurred_at, window),
        *_filters(node.where, b, where),
    )
    test, bounds = _times(node)
    return count_test(b, rows, test, bounds)


def compile_event_time(node: EventTime, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """The first or last time ``name`` was performed lies in the asked range."""
    ctx = b.ctx
    pick = sa.func.min if node.which == "first" else sa.func.max
    rows = sa.select(events.c.customer_id).where(
        *b.scoped(events),
        events.c.name == node.name,
        events.c.occurred_at <= ctx.now,
        *_filters(node.where, b, where),
    )
    bounds = date_range(node.op, node.value, ctx.now, ctx.workspace.time_zone, at(where, "value"))
    return grouped_test(b, rows, in_range(pick(events.c.occurred_at), bounds), False)
