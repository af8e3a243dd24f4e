"""Segment definition → one SQL statement (SQLAlchemy Core) for SQLite or PostgreSQL.

The compiler adds the workspace filter itself, to the customers table and to every
subquery; callers cannot forget it. Each behavioural leaf is one aggregate per
customer LEFT JOINed on ``customer_id``, so AND / OR / NOT combine plain booleans
and a customer with no rows counts as zero. Merged-away profiles never match.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from kizuna.segments.compiler._channels import CHANNELS, STATES, channel_state
from kizuna.segments.compiler._context import Builder, CompileContext
from kizuna.segments.compiler._tree import compile_node
from kizuna.segments.definition import Condition
from kizuna.store.tables import customers

__all__ = ["CHANNELS", "STATES", "CompileContext", "compile_counts", "compile_segment"]


def _statement(columns: list[Any], b: Builder, matches: sa.ColumnElement[bool]) -> sa.Select[Any]:
    source: sa.FromClause = customers
    for sub, on in b.joins:
        source = source.outerjoin(sub, on)
    return (
        sa.select(*columns)
        .select_from(source)
        .where(*b.scoped(customers), customers.c.merged_into.is_(None), matches)
    )


def compile_segment(condition: Condition, ctx: CompileContext) -> sa.Select[Any]:
    """The ``customer_id`` of every live customer of the workspace that matches ``condition``.

    Raises ``InvalidInput`` (with the node's path) for what only compiling finds:
    an unknown prefecture, a value of the wrong kind, a segment cycle.
    """
    b = Builder(ctx)
    matches = compile_node(condition, b, "")
    return _statement([customers.c.customer_id], b, matches)


def compile_counts(condition: Condition, ctx: CompileContext) -> sa.Select[Any]:
    """One row: ``customers`` matching, and per channel ``{state}_{channel}`` counts.

    States: opted_in, opted_out, has_address, suppressed, reachable — for email,
    line, sms and push (e.g. ``reachable_email``).
    """
    b = Builder(ctx)
    matches = compile_node(condition, b, "")
    columns: list[Any] = [sa.func.count().label("customers")]
    for channel in CHANNELS:
        for state in STATES:
            test = channel_state(b, channel, state)
            columns.append(
                sa.func.coalesce(sa.func.sum(sa.case((test, 1), else_=0)), 0).label(
                    f"{state}_{channel}"
                )
            )
    return _statement(columns, b, matches)
