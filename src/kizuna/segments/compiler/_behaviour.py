"""Leaves on events: how often something was done in a window, and when it was first / last done."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

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


def compile_event(node: EventCondition, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """Performed ``name`` (matching the filters) at least / at most N times in the window."""
    ctx = b.ctx
    window = window_range(node.within, ctx.now, ctx.workspace.time_zone, at(where, "within"))
    query = (
        sa.select(events.c.customer_id, sa.func.count().label("n"))
        .where(
            *b.scoped(events),
            events.c.name == node.name,
            in_range(events.c.occurred_at, window),
            *_filters(node.where, b, where),
        )
        .group_by(events.c.customer_id)
    )
    times = sa.func.coalesce(b.join(query, "event").c.n, 0)
    if node.at_least is None and node.at_most is None:
        return times >= 1
    tests = []
    if node.at_least is not None:
        tests.append(times >= node.at_least)
    if node.at_most is not None:
        tests.append(times <= node.at_most)
    return sa.and_(*tests)


def compile_event_time(node: EventTime, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """The first or last time ``name`` was performed lies in the asked range."""
    ctx = b.ctx
    pick = sa.func.min if node.which == "first" else sa.func.max
    query = (
        sa.select(events.c.customer_id, pick(events.c.occurred_at).label("at"))
        .where(
            *b.scoped(events),
            events.c.name == node.name,
            events.c.occurred_at <= ctx.now,
            *_filters(node.where, b, where),
        )
        .group_by(events.c.customer_id)
    )
    moment = b.join(query, "event_time").c.at
    bounds = date_range(node.op, node.value, ctx.now, ctx.workspace.time_zone, at(where, "value"))
    return sa.and_(moment.is_not(None), in_range(moment, bounds))
