"""What a compilation knows (workspace, now, dialect) and what it collects (joined subqueries)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.errors import InvalidInput, Problem
from kizuna.segments.definition import Condition
from kizuna.store.tables import customers
from kizuna.store.workspaces import Workspace

__all__ = ["Builder", "CompileContext", "at", "false", "flag"]


@dataclass(frozen=True)
class CompileContext:
    """The inputs of one compilation.

    ``now`` (aware UTC) ends every window; ``segments`` maps keys to the conditions
    of the segments a ``segment`` node may name; ``customer_ids`` restricts the
    evaluation (pushed into every subquery) to a few customers.
    """

    workspace: Workspace
    now: datetime
    dialect: str
    segments: Mapping[str, Condition] = field(default_factory=dict)
    customer_ids: Sequence[uuid.UUID] | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise InvalidInput(Problem("naive_datetime", "give a time zone", "now"))
        if self.dialect not in ("sqlite", "postgresql"):
            raise InvalidInput(Problem("unknown_dialect", f"cannot compile for {self.dialect}"))


def at(where: str, name: str) -> str:
    """The path of ``name`` inside the node at ``where`` (the root's path is empty)."""
    return f"{where}.{name}" if where else name


def false() -> sa.ColumnElement[bool]:
    """A false constant both dialects accept."""
    return sa.false()


def flag(expression: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """``expression`` as a two-valued boolean: NULL (unknown) counts as false.

    So ``NOT`` of a leaf keeps the customers the leaf leaves out, as a marketer
    expects ("not in Tokyo" includes those whose prefecture is unknown).
    """
    return sa.func.coalesce(expression, sa.false())


@dataclass
class Builder:
    """Collects the LEFT JOINs a condition tree needs onto the customers table.

    Each behavioural leaf becomes one aggregated subquery per customer, joined once
    on ``customer_id`` (identical subqueries are joined once). NOT and OR then work
    on the joined columns, and a customer absent from a subquery has count 0.
    """

    ctx: CompileContext
    joins: list[tuple[sa.Subquery, sa.ColumnElement[bool]]] = field(default_factory=list)
    _seen: dict[str, sa.Subquery] = field(default_factory=dict)
    expanding: tuple[str, ...] = ()  # segment keys being inlined (guards against cycles)

    @property
    def customer(self) -> sa.Table:
        """The customers table the tree's predicates refer to."""
        return customers

    def scoped(self, table: sa.FromClause) -> list[sa.ColumnElement[bool]]:
        """The workspace filter (and the customer restriction) for ``table``."""
        where = [table.c.workspace_id == self.ctx.workspace.workspace_id]
        if self.ctx.customer_ids is not None:
            where.append(table.c.customer_id.in_(list(self.ctx.customer_ids)))
        return where

    def join(self, query: sa.Select[Any], prefix: str) -> sa.Subquery:
        """Join ``query`` (with a ``customer_id`` column) once; returns its subquery."""
        compiled = query.compile()  # once: the SQL and its values name the subquery
        signature = f"{compiled}|{sorted(compiled.params.items(), key=lambda kv: kv[0])!r}"
        known = self._seen.get(signature)
        if known is not None:
            return known
        sub = query.subquery(f"{prefix}_{len(self.joins) + 1}")
        self.joins.append((sub, sub.c.customer_id == customers.c.customer_id))
        self._seen[signature] = sub
        return sub
