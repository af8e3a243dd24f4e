"""Materialized segment membership, its entered / exited signals and the change queue.

Three tables (see ``store/tables.py``):

- ``segment_members``: one row per customer who was ever in a segment; ``exited_at``
  is NULL while they are in it, and a re-entry moves ``entered_at`` and clears it.
- ``segment_signals``: one row per change (``entered`` or ``exited``) at the moment it
  was applied; scenarios read them in order with a :class:`SignalCursor`.
- ``segment_queue``: customers whose data changed, with the causes (``event:<name>``,
  ``orders``, ``traits``, ``consent``, ``metrics``, or ``customer`` for a record that
  was created or merged, which can change every segment). Ingest writes it in its own
  transaction; :mod:`kizuna.segments.membership` drains it.

:func:`apply_membership` diffs a compiled selection against the members in SQL: the
selection is evaluated once into a temporary table, then five set-based statements
write the exits, the entries and their signals. Nothing loops over customers in Python.

Ordering: signals are read by ``(at, segment_id, customer_id)``, so a reader must never
see a signal committed after one with a later ``at``. Writers therefore call
:func:`lock_membership` first and take ``now`` after it: on PostgreSQL that is a
per-workspace transaction lock (so two workers never diff the same customer at once
either), on SQLite the single writer lock already held by ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import AddConstraint, CreateTable, DropTable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from kizuna.store.bulk import bulk_insert
from kizuna.store.scope import Scope
from kizuna.store.tables import (
    customers,
    identities,
    segment_members,
    segment_queue,
    segment_signals,
    segments,
)
from kizuna.store.types import new_id

__all__ = [
    "CUSTOMER_CHANGED",
    "MembershipChange",
    "QueuedChange",
    "Signal",
    "SignalCursor",
    "address_owners",
    "apply_membership",
    "claim_queue",
    "current_members",
    "delete_queued",
    "enqueue_changes",
    "lock_membership",
    "mark_refreshed",
    "read_signals",
]

# The cause of a customer record created or merged: every segment may change for them.
CUSTOMER_CHANGED = "customer"


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """How many customers entered and exited a segment in one evaluation."""

    entered: int
    exited: int


@dataclass(frozen=True, slots=True, order=True)
class SignalCursor:
    """The position of one signal; :func:`read_signals` returns those after it."""

    at: datetime
    segment_id: uuid.UUID
    customer_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Signal:
    """A customer entered or exited a segment at ``at``."""

    segment_id: uuid.UUID
    segment_key: str
    customer_id: uuid.UUID
    at: datetime
    kind: str  # entered | exited

    @property
    def cursor(self) -> SignalCursor:
        """The cursor to pass as ``after`` to continue past this signal."""
        return SignalCursor(self.at, self.segment_id, self.customer_id)


@dataclass(frozen=True, slots=True)
class QueuedChange:
    """One claimed queue row: a customer of a workspace and what changed for them."""

    workspace_id: uuid.UUID
    queued_id: uuid.UUID
    customer_id: uuid.UUID
    causes: frozenset[str]


def enqueue_changes(scope: Scope, changes: Mapping[uuid.UUID, Iterable[str]]) -> None:
    """Queue each customer with its causes (one row each, one executemany in all).

    Runs inside ingest transactions, so it takes the bulk path (see ``store/bulk.py``);
    equal cause lists are one object, encoded once.
    """
    lists: dict[frozenset[str], list[str]] = {}
    rows = []
    for customer_id, causes in changes.items():
        key = frozenset(causes)
        shared = lists.get(key)
        if shared is None:
            shared = lists[key] = sorted(key)
        rows.append({
            "workspace_id": scope.workspace_id, "queued_id": new_id(),
            "customer_id": customer_id, "causes": shared, "queued_at": scope.now,
        })  # fmt: skip
    bulk_insert(scope.conn, segment_queue, rows)


_ADDRESS_KINDS = ("email", "phone", "line_user_id", "device_token")


def address_owners(scope: Scope, hashes: Collection[bytes]) -> set[uuid.UUID]:
    """Customers holding any of these address hashes (their profile email or an identity).

    For queueing the customers a suppression concerns: the lookups use the indexes on
    ``customers (workspace_id, email_hash)`` and on the identities' primary key.
    """
    if not hashes:
        return set()
    c, i = customers.c, identities.c
    wanted = list(hashes)
    by_profile = sa.select(c.customer_id).where(
        c.workspace_id == scope.workspace_id, c.email_hash.in_(wanted)
    )
    by_identity = sa.select(i.customer_id).where(
        i.workspace_id == scope.workspace_id,
        i.kind.in_(_ADDRESS_KINDS),
        i.value_hash.in_(wanted),
    )
    return set(scope.conn.execute(sa.union(by_profile, by_identity)).scalars())


def claim_queue(conn: Connection, limit: int) -> list[QueuedChange]:
    """The oldest ``limit`` queue rows of every workspace, locked for this transaction.

    On PostgreSQL rows another transaction has claimed are skipped (``SKIP LOCKED``),
    so workers never process the same change twice; SQLite has one writer anyway.
    """
    q = segment_queue.c
    query = sa.select(q.workspace_id, q.queued_id, q.customer_id, q.causes)
    query = query.order_by(q.queued_id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [
        QueuedChange(row.workspace_id, row.queued_id, row.customer_id, frozenset(row.causes))
        for row in conn.execute(query)
    ]


def delete_queued(conn: Connection, claimed: Sequence[QueuedChange]) -> int:
    """Delete exactly the ``claimed`` rows (rows queued since stay); returns how many."""
    by_workspace: dict[uuid.UUID, list[uuid.UUID]] = {}
    for change in claimed:
        by_workspace.setdefault(change.workspace_id, []).append(change.queued_id)
    deleted = 0
    for workspace_id, ids in by_workspace.items():
        result = conn.execute(
            segment_queue.delete()
            .where(segment_queue.c.workspace_id == workspace_id)
            .where(segment_queue.c.queued_id.in_(ids))
        )
        deleted += result.rowcount
    return deleted


def lock_membership(conn: Connection, workspace_id: uuid.UUID) -> None:
    """Serialize membership writers of one workspace until the transaction ends.

    IMPORTANT: call before taking the ``now`` that signals are stamped with, so signals
    commit in ``at`` order and a cursor never skips one (see the module docstring).
    """
    if conn.dialect.name != "postgresql":
        return  # BEGIN IMMEDIATE already holds SQLite's only write lock
    digest = hashlib.blake2b(b"kizuna.segments:" + workspace_id.bytes, digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


# SQLAlchemy reports the rowcount of an INSERT … SELECT only when asked to keep it.
_COUNTED = {"preserve_rowcount": True}

# Per connection, emptied on PostgreSQL at every commit; SQLite's is emptied by hand.
_matched = sa.Table(
    "kizuna_segment_matched",
    sa.MetaData(),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
# A full evaluation on PostgreSQL: created by the SELECT itself (see _create_matched).
_matched_all = sa.Table(
    "kizuna_segment_matched_all",
    sa.MetaData(),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    prefixes=["TEMPORARY"],
)


class _CreateTempAs(Executable, ClauseElement):
    """``CREATE TEMPORARY TABLE name ON COMMIT DROP AS select`` (PostgreSQL)."""

    inherit_cache = False

    def __init__(self, table: sa.Table, select: sa.Select[Any]) -> None:
        self.table = table
        self.select = select


@compiles(_CreateTempAs, "postgresql")
def _create_temp_as(element: _CreateTempAs, compiler: SQLCompiler, **kw: Any) -> str:
    name = compiler.preparer.format_table(element.table)
    select = compiler.process(element.select, **kw)
    return f"CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS {select}"


def apply_membership(
    scope: Scope,
    segment_id: uuid.UUID,
    matching: sa.Select[Any],
    customer_ids: Sequence[uuid.UUID] | None = None,
) -> MembershipChange:
    """Make the segment's members equal ``matching`` (one ``customer_id`` column) in SQL.

    With ``customer_ids`` only those customers are diffed (``matching`` should be
    restricted to them too); without, every current member is. Each change moves
    ``entered_at`` / ``exited_at`` and writes one signal stamped ``scope.now``; two
    changes of one customer at the same instant keep the last. Call
    :func:`lock_membership` first. ``matching`` must not repeat a customer.
    """
    conn = scope.conn
    if customer_ids is None and conn.dialect.name == "postgresql":
        matched = _create_matched(conn, matching)
    else:
        matched = _fill_matched(conn, matching)
    exited = _exit_unmatched(scope, segment_id, matched, customer_ids)
    entered = _enter_matched(scope, segment_id, matched)
    if matched is _matched_all:
        conn.execute(DropTable(_matched_all))
    elif conn.dialect.name != "postgresql":
        conn.execute(_matched.delete())
    return MembershipChange(entered=entered, exited=exited)


def _create_matched(conn: Connection, matching: sa.Select[Any]) -> sa.Table:
    """``CREATE TEMP TABLE … AS SELECT``: unlike INSERT … SELECT, the planner may run it in
    parallel (a full evaluation reads whole tables: about half the time on two cores).

    The key and ANALYZE follow: without them the diff's anti-joins may be planned as a
    scan of the whole table per member.
    """
    conn.execute(DropTable(_matched_all, if_exists=True))  # a savepoint rolled back to
    conn.execute(_CreateTempAs(_matched_all, matching))
    conn.execute(AddConstraint(_matched_all.primary_key))
    conn.execute(sa.text("ANALYZE kizuna_segment_matched_all"))
    return _matched_all


def _fill_matched(conn: Connection, matching: sa.Select[Any]) -> sa.Table:
    conn.execute(CreateTable(_matched, if_not_exists=True))
    conn.execute(_matched.delete())
    found = matching.subquery("matching")
    # The WHERE keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
    select = sa.select(found.c.customer_id).where(found.c.customer_id.is_not(None))
    fill = _insert(conn, _matched).from_select(["customer_id"], select)
    conn.execute(fill.on_conflict_do_nothing())
    return _matched


def _insert(conn: Connection, table: sa.Table) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def _member_of(scope: Scope, segment_id: uuid.UUID) -> list[sa.ColumnElement[bool]]:
    m = segment_members.c
    return [m.workspace_id == scope.workspace_id, m.segment_id == segment_id]


def _exit_unmatched(
    scope: Scope,
    segment_id: uuid.UUID,
    matched: sa.Table,
    customer_ids: Sequence[uuid.UUID] | None,
) -> int:
    """Members no longer matching: a signal each, then ``exited_at``."""
    m = segment_members.c
    leaving = [
        *_member_of(scope, segment_id),
        m.exited_at.is_(None),
        ~sa.exists().where(matched.c.customer_id == m.customer_id),
    ]
    if customer_ids is not None:
        leaving.append(m.customer_id.in_(list(customer_ids)))
    _signal(scope, segment_id, sa.select(m.customer_id).where(*leaving), "exited")
    stmt = segment_members.update().where(*leaving).values(exited_at=scope.now)
    return int(scope.conn.execute(stmt).rowcount)


def _enter_matched(scope: Scope, segment_id: uuid.UUID, matched: sa.Table) -> int:
    """Matching customers who are not members: a signal each, then a new or renewed row."""
    m = segment_members.c
    mine = _member_of(scope, segment_id)
    current = sa.exists().where(*mine, m.customer_id == matched.c.customer_id)
    coming = sa.select(matched.c.customer_id).where(~current.where(m.exited_at.is_(None)))
    entered = _signal(scope, segment_id, coming, "entered")
    if not entered:
        return 0
    scope.conn.execute(
        segment_members.update()
        .where(*mine, m.exited_at.is_not(None))
        .where(sa.exists().where(matched.c.customer_id == m.customer_id))
        .values(entered_at=scope.now, exited_at=None)
    )
    columns = ["workspace_id", "segment_id", "customer_id", "entered_at"]
    new = sa.select(
        sa.literal(scope.workspace_id, sa.Uuid),
        sa.literal(segment_id, sa.Uuid),
        matched.c.customer_id,
        sa.literal(scope.now, segment_members.c.entered_at.type),
    ).where(~current)
    scope.conn.execute(segment_members.insert().from_select(columns, new))
    return entered


def _signal(scope: Scope, segment_id: uuid.UUID, who: sa.Select[Any], kind: str) -> int:
    """One ``kind`` signal per customer of ``who`` (a single ``customer_id`` column)."""
    found = who.subquery("changed")
    rows = sa.select(
        sa.literal(scope.workspace_id, sa.Uuid),
        sa.literal(segment_id, sa.Uuid),
        found.c.customer_id,
        sa.literal(scope.now, segment_signals.c.at.type),
        sa.literal(kind, sa.String),
    ).where(found.c.customer_id.is_not(None))
    stmt = _insert(scope.conn, segment_signals).from_select(
        ["workspace_id", "segment_id", "customer_id", "at", "kind"], rows
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["workspace_id", "segment_id", "customer_id", "at"],
        set_={"kind": stmt.excluded.kind},
    )
    return int(scope.conn.execute(stmt, execution_options=_COUNTED).rowcount)


def mark_refreshed(scope: Scope, segment_id: uuid.UUID) -> None:
    """Record that the segment's membership was fully evaluated at ``scope.now``."""
    scope.conn.execute(
        segments.update()
        .where(segments.c.workspace_id == scope.workspace_id)
        .where(segments.c.segment_id == segment_id)
        .values(refreshed_at=scope.now)
    )


def current_members(scope: Scope, segment_id: uuid.UUID) -> sa.Select[Any]:
    """``customer_id`` and ``entered_at`` of the segment's current members."""
    m = segment_members.c
    return sa.select(m.customer_id, m.entered_at).where(
        *_member_of(scope, segment_id), m.exited_at.is_(None)
    )


def read_signals(
    scope: Scope,
    after: SignalCursor | None,
    limit: int,
    segment_id: uuid.UUID | None = None,
) -> list[Signal]:
    """Up to ``limit`` signals after ``after``, by ``(at, segment_id, customer_id)``."""
    s = segment_signals.c
    query = (
        sa.select(s.segment_id, segments.c.key, s.customer_id, s.at, s.kind)
        .join(
            segments,
            sa.and_(
                segments.c.workspace_id == s.workspace_id, segments.c.segment_id == s.segment_id
            ),
        )
        .where(s.workspace_id == scope.workspace_id)
        .order_by(s.at, s.segment_id, s.customer_id)
        .limit(limit)
    )
    if segment_id is not None:
        query = query.where(s.segment_id == segment_id)
    if after is not None:
        position = sa.tuple_(s.at, s.segment_id, s.customer_id)
        start = sa.tuple_(
            sa.literal(after.at, s.at.type),
            sa.literal(after.segment_id, sa.Uuid),
            sa.literal(after.customer_id, sa.Uuid),
        )
        query = query.where(position > start)
    return [Signal(*row) for row in scope.conn.execute(query)]
