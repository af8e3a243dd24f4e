"""Segment definition → one SQL statement (SQLAlchemy Core) for SQLite or PostgreSQL.

The compiler adds the workspace filter itself, to the customers table and to every
subquery; callers cannot forget it. A leaf on another table is a set test on the
customers row (``IN`` / ``NOT IN`` / ``EXISTS`` / ``NOT EXISTS``, see ``_context``
and ``_aggregates``), so AND / OR / NOT combine plain booleans, the database plans
semi- and anti-joins that stop at a customer's first row, and a customer with no
rows counts as zero. Merged-away profiles never match.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from kizuna.segments.compiler._channels import CHANNELS, STATES, reach_counts
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
    line, sms and push (e.g. ``reachable_email``). The reach is worked out for the
    matched customers only.
    """
    b = Builder(ctx)
    matches = compile_node(condition, b, "")
    c = customers.c
    return reach_counts(b, _statement([c.customer_id, c.email_hash, c.phone_hash], b, matches))
