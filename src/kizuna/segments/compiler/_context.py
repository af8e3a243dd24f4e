"""What a compilation knows (workspace, now, dialect) and the shapes leaves compile to.

A leaf on another table is a set test on the customers row, so the database can
plan it as a semi- or anti-join and stop at a customer's first row:
:meth:`Builder.present` / :meth:`Builder.absent` (the customer has rows, or rows
whose aggregate passes a test) and :meth:`Builder.probe` (a correlated ``EXISTS``).
Only stored metrics (one row per customer) are LEFT JOINed (:meth:`Builder.join`),
since a missing row must read as NULL there.
"""

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


def _grouped(rows: sa.Select[Any], having: sa.ColumnElement[bool] | None) -> sa.Select[Any]:
    if having is None:
        return rows
    customer = rows.selected_columns[0]
    return rows.group_by(customer).having(having)


@dataclass
class Builder:
    """Builds the predicates of one condition tree over the customers row.

    ``joins`` collects the LEFT JOINs (stored metrics only; identical ones are
    joined once); everything else is a set test that needs no join.
    """

    ctx: CompileContext
    joins: list[tuple[sa.Subquery, sa.ColumnElement[bool]]] = field(default_factory=list)
    _seen: dict[str, sa.Subquery] = field(default_factory=dict)
    # id(test) -> (test, its opposite) for the set tests built here, for NOT to use
    _opposites: dict[int, tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]] = field(
        default_factory=dict
    )
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

    def present(
        self, rows: sa.Select[Any], having: sa.ColumnElement[bool] | None = None
    ) -> sa.ColumnElement[bool]:
        """The customer has ``rows`` (one ``customer_id`` column, ungrouped) [that pass
        ``having``, an aggregate test over them].

        PostgreSQL gets a correlated ``EXISTS``: a semi-join under AND, and under OR a
        choice between a hashed list and a probe per customer (``IN`` would scan the
        whole list per customer once it outgrows ``work_mem``). SQLite gets ``IN``: the
        list is built once, and can drive the search through the customers' key.
        """
        return self._paired(self._has(rows, having), self._lacks(rows, having))

    def absent(
        self, rows: sa.Select[Any], having: sa.ColumnElement[bool] | None = None
    ) -> sa.ColumnElement[bool]:
        """NOT :meth:`present`: ``NOT EXISTS``, an anti-join (PostgreSQL cannot make one of
        ``NOT IN``) or on SQLite a probe per customer, cheaper than listing every row of
        the window; except on SQLite with ``having``, where a correlated grouped
        subquery would run per customer: ``NOT IN`` (``customer_id`` is never NULL).
        """
        return self._paired(self._lacks(rows, having), self._has(rows, having))

    def negate(self, test: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        """NOT ``test`` (a two-valued predicate): the opposite set test when it is one."""
        paired = self._opposites.get(id(test))
        if paired is None or paired[0] is not test:
            return sa.not_(test)
        return paired[1]

    def _paired(
        self, test: sa.ColumnElement[bool], opposite: sa.ColumnElement[bool]
    ) -> sa.ColumnElement[bool]:
        self._opposites[id(test)] = (test, opposite)
        self._opposites[id(opposite)] = (opposite, test)
        return test

    def _has(
        self, rows: sa.Select[Any], having: sa.ColumnElement[bool] | None
    ) -> sa.ColumnElement[bool]:
        if self.ctx.dialect == "sqlite":
            return customers.c.customer_id.in_(_grouped(rows, having))
        return self._exists(rows, having)

    def _lacks(
        self, rows: sa.Select[Any], having: sa.ColumnElement[bool] | None
    ) -> sa.ColumnElement[bool]:
        if self.ctx.dialect == "sqlite" and having is not None:
            return customers.c.customer_id.not_in(_grouped(rows, having))
        return ~self._exists(rows, having)

    def _exists(
        self, rows: sa.Select[Any], having: sa.ColumnElement[bool] | None
    ) -> sa.ColumnElement[bool]:
        if having is None:  # correlated directly: an index probe by customer where useful
            return sa.exists(rows.where(rows.selected_columns[0] == customers.c.customer_id))
        found = _grouped(rows, having).subquery("grouped")
        return sa.exists().where(next(iter(found.c)) == customers.c.customer_id)

    def probe(self, table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        """``EXISTS`` a row of ``table`` for this customer matching ``where`` (an index probe)."""
        mine = table.c.customer_id == customers.c.customer_id
        return sa.exists().where(*self.scoped(table), mine, *where)

    def join(self, query: sa.Select[Any], prefix: str) -> sa.Subquery:
        """LEFT JOIN ``query`` (at most one row per ``customer_id``) once; returns it."""
        compiled = query.compile()  # once: the SQL and its values name the subquery
        signature = f"{compiled}|{sorted(compiled.params.items(), key=lambda kv: kv[0])!r}"
        known = self._seen.get(signature)
        if known is not None:
            return known
        sub = query.subquery(f"{prefix}_{len(self.joins) + 1}")
        self.joins.append((sub, sub.c.customer_id == customers.c.customer_id))
        self._seen[signature] = sub
        return sub
