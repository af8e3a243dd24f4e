"""Scenario runs, their steps and the trigger inbox: the engine's durable state.

Everything the engine decides is written in the transaction that decided it —
the run's new node and due time, its steps, and the send intents in the outbox
(``store.messages.enqueue``) — so a worker killed at any point leaves either the
old state (the work is redone, under the same idempotency keys) or the new one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.store.bulk import bulk_insert
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import SignalCursor
from kizuna.store.tables import scenario_cursors, scenario_inbox, scenario_runs, scenario_steps
from kizuna.store.types import new_id
from kizuna.store.upsert import upsert

__all__ = [
    "InboxItem",
    "RunRecord",
    "RunUpdate",
    "Step",
    "active_runs_of",
    "claim_due_runs",
    "claim_inbox",
    "delete_inbox",
    "enqueue_inbox",
    "insert_runs",
    "last_entries",
    "read_cursor",
    "read_position",
    "record_steps",
    "save_cursor",
    "save_position",
    "update_runs",
]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as stored."""

    run_id: uuid.UUID
    workspace_id: uuid.UUID
    scenario_id: uuid.UUID
    version: int
    customer_id: uuid.UUID
    run_key: str
    status: str
    node_id: str | None
    due_at: datetime | None
    waiting: dict[str, Any] | None
    held_out: bool
    variant: str | None
    context: dict[str, Any]
    sends: int
    steps: int
    entered_at: datetime


_RUN_FIELDS: tuple[str, ...] = RunRecord.__slots__


def _run(row: sa.Row[Any]) -> RunRecord:
    found = row._mapping
    return RunRecord(*(found[c] for c in _RUN_FIELDS))


@dataclass(slots=True)
class RunUpdate:
    """The new state of a run after the engine moved it."""

    run_id: uuid.UUID
    status: str
    node_id: str | None
    due_at: datetime | None
    waiting: dict[str, Any] | None
    variant: str | None
    sends: int
    steps: int
    ended_at: datetime | None = None
    exit_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """What happened to a run at one node."""

    run: RunRecord
    step: int
    node_id: str
    outcome: str  # entered | waiting | passed | sent | skipped | exited | held_out
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class InboxItem:
    """Something that may start, wake or end runs."""

    workspace_id: uuid.UUID
    inbox_id: uuid.UUID
    customer_id: uuid.UUID
    kind: str  # event | segment | api
    name: str
    payload: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None


def insert_runs(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert new runs; a customer already active under the same key is left alone."""
    if not rows:
        return 0
    active = sa.text("status = 'active'")  # the partial unique index, as a literal
    keys = ["workspace_id", "scenario_id", "customer_id", "run_key"]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(scenario_runs).on_conflict_do_nothing(index_elements=keys, index_where=active)
    result = conn.execute(stmt.returning(scenario_runs.c.run_id), list(rows))
    return len(result.all())


def claim_due_runs(conn: Connection, now: datetime, limit: int) -> list[RunRecord]:
    """Up to ``limit`` active runs due by ``now``, locked (``SKIP LOCKED`` on PostgreSQL)."""
    r = scenario_runs.c
    query = (
        sa.select(scenario_runs)
        .where(r.status == "active", r.due_at <= now)
        .order_by(r.due_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [_run(row) for row in conn.execute(query)]


def active_runs_of(
    scope: Scope,
    customer_ids: Iterable[uuid.UUID],
    *,
    lock: bool = False,
    scenario_ids: Iterable[uuid.UUID] | None = None,
) -> list[RunRecord]:
    """Active runs of these customers (of these scenarios), locked when asked."""
    ids = list(set(customer_ids))
    if not ids:
        return []
    r = scenario_runs.c
    query = sa.select(scenario_runs).where(
        r.workspace_id == scope.workspace_id, r.customer_id.in_(ids), r.status == "active"
    )
    if scenario_ids is not None:
        query = query.where(r.scenario_id.in_(list(scenario_ids)))
    if lock and scope.conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return [_run(row) for row in scope.conn.execute(query)]


def last_entries(
    scope: Scope, scenario_id: uuid.UUID, customer_ids: Iterable[uuid.UUID]
) -> dict[tuple[uuid.UUID, str], datetime]:
    """When each customer last entered the scenario, per run key (for re-entry rules)."""
    ids = list(set(customer_ids))
    if not ids:
        return {}
    r = scenario_runs.c
    rows = scope.conn.execute(
        sa.select(r.customer_id, r.run_key, sa.func.max(r.entered_at))
        .where(r.workspace_id == scope.workspace_id, r.scenario_id == scenario_id)
        .where(r.customer_id.in_(ids))
        .group_by(r.customer_id, r.run_key)
    ).all()
    return {(c, k): at for c, k, at in rows}


def update_runs(conn: Connection, workspace_id: uuid.UUID, updates: Sequence[RunUpdate],
                now: datetime) -> None:  # fmt: skip
    """Write runs' new states (one executemany)."""
    if not updates:
        return
    names = ("status", "node_id", "due_at", "waiting", "variant", "sends", "steps",
             "ended_at", "exit_reason")  # fmt: skip
    stmt = (
        scenario_runs.update()
        .where(scenario_runs.c.workspace_id == workspace_id)
        .where(scenario_runs.c.run_id == sa.bindparam("b_run"))
        .values({n: sa.bindparam(f"v_{n}") for n in names} | {"updated_at": now})
    )
    rows = [{"b_run": u.run_id} | {f"v_{n}": getattr(u, n) for n in names} for u in updates]
    conn.execute(stmt, rows)


def record_steps(conn: Connection, steps: Sequence[Step], at: datetime) -> None:
    """Append steps (a replayed step with the same number is ignored)."""
    rows = [
        {"workspace_id": s.run.workspace_id, "run_id": s.run.run_id, "step": s.step,
         "scenario_id": s.run.scenario_id, "version": s.run.version, "node_id": s.node_id,
         "customer_id": s.run.customer_id, "at": at, "outcome": s.outcome,
         "detail": (s.detail or "")[:200] or None}
        for s in steps
    ]  # fmt: skip
    if rows:
        upsert(conn, scenario_steps, rows, ["workspace_id", "run_id", "step"])


def enqueue_inbox(
    scope: Scope, items: Sequence[tuple[uuid.UUID, str, str, dict[str, Any]]]
) -> None:
    """Queue (customer, kind, name, payload) items for the engine, in one executemany."""
    rows = [
        {"workspace_id": scope.workspace_id, "inbox_id": new_id(), "customer_id": c,
         "kind": kind, "name": name, "payload": payload, "at": scope.now}
        for c, kind, name, payload in items
    ]  # fmt: skip
    bulk_insert(scope.conn, scenario_inbox, rows)


def claim_inbox(conn: Connection, limit: int) -> list[InboxItem]:
    """The oldest ``limit`` inbox items of every workspace, locked for this transaction."""
    i = scenario_inbox.c
    query = sa.select(scenario_inbox).order_by(i.inbox_id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [
        InboxItem(r.workspace_id, r.inbox_id, r.customer_id, r.kind, r.name, r.payload, r.at)
        for r in conn.execute(query)
    ]


def delete_inbox(conn: Connection, items: Sequence[InboxItem]) -> None:
    """Delete exactly the claimed items."""
    by_workspace: dict[uuid.UUID, list[uuid.UUID]] = {}
    for item in items:
        by_workspace.setdefault(item.workspace_id, []).append(item.inbox_id)
    for workspace_id, ids in by_workspace.items():
        conn.execute(
            scenario_inbox.delete()
            .where(scenario_inbox.c.workspace_id == workspace_id)
            .where(scenario_inbox.c.inbox_id.in_(ids))
        )


def read_position(conn: Connection, workspace_id: uuid.UUID, source: str) -> dict[str, Any] | None:
    """Where the engine got to in ``source`` (None: nowhere yet)."""
    c = scenario_cursors.c
    found = conn.execute(
        sa.select(c.position).where(c.workspace_id == workspace_id, c.source == source)
    ).scalar()
    return None if found is None else dict(found)


def save_position(conn: Connection, workspace_id: uuid.UUID, source: str,
                  position: dict[str, Any], now: datetime) -> None:  # fmt: skip
    """Remember where the engine got to in ``source``."""
    row = {"workspace_id": workspace_id, "source": source, "position": position,
           "updated_at": now}  # fmt: skip
    upsert(conn, scenario_cursors, [row], ["workspace_id", "source"])


def read_cursor(conn: Connection, workspace_id: uuid.UUID, source: str) -> SignalCursor | None:
    """Where the engine stopped reading a signal stream (None: from the start)."""
    found = read_position(conn, workspace_id, source)
    if found is None:
        return None
    return SignalCursor(datetime.fromisoformat(found["at"]), uuid.UUID(found["segment_id"]),
                        uuid.UUID(found["customer_id"]))  # fmt: skip


def save_cursor(conn: Connection, workspace_id: uuid.UUID, source: str, cursor: SignalCursor,
                now: datetime) -> None:  # fmt: skip
    """Remember where the engine stopped reading a signal stream."""
    position = {"at": cursor.at.isoformat(), "segment_id": str(cursor.segment_id),
                "customer_id": str(cursor.customer_id)}  # fmt: skip
    save_position(conn, workspace_id, source, position, now)
