"""The outbox's moving parts: claiming due messages and settling what became of them.

A claimed message is ``sending`` with a lease (``not_before`` = claim time + lease):
a worker that dies mid-batch leaves rows a later drain reclaims once the lease
runs out. The handover carries the message's idempotency key (SMTP Message-ID,
LINE ``X-Line-Retry-Key``), so the provider recognises a second attempt.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.store.messages import MessageRecord, record_from_row
from kizuna.store.tables import messages

__all__ = [
    "Settlement",
    "claim_due",
    "lock_customers",
    "sent_counts",
    "sent_in_window",
    "settle",
]

# Statuses that count as "sent" for frequency caps (sending: claimed and passed checks).
COUNTED = ("sending", "sent", "delivered", "bounced", "complained")


def claim_due(conn: Connection, now: datetime, limit: int, lease: timedelta) -> list[MessageRecord]:
    """Take up to ``limit`` due messages of any workspace, oldest first, and lease them."""
    m = messages.c
    due = sa.or_(
        sa.and_(m.status == "queued", m.not_before <= now),
        sa.and_(m.status == "sending", m.not_before <= now),  # a lease that ran out
    )
    query = sa.select(messages).where(due).order_by(m.not_before).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = [record_from_row(r) for r in conn.execute(query)]
    for workspace_id, ids in _by_workspace((c.workspace_id, c.message_id) for c in claimed):
        conn.execute(
            messages.update()
            .where(m.workspace_id == workspace_id, m.message_id.in_(ids))
            .values(status="sending", not_before=now + lease, updated_at=now)
        )
    return claimed


def _by_workspace(
    pairs: Iterable[tuple[uuid.UUID, uuid.UUID]],
) -> list[tuple[uuid.UUID, list[uuid.UUID]]]:
    grouped: dict[uuid.UUID, list[uuid.UUID]] = {}
    for workspace_id, message_id in pairs:
        grouped.setdefault(workspace_id, []).append(message_id)
    return list(grouped.items())


def lock_customers(conn: Connection, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> None:
    """Serialize cap checks per customer across workers until the transaction ends.

    PostgreSQL only (SQLite has one writer); keys are taken in sorted order so two
    workers never wait on each other in a cycle.
    """
    if conn.dialect.name != "postgresql":
        return
    keys = sorted(
        {
            int.from_bytes(
                hashlib.blake2b(workspace_id.bytes + i.bytes, digest_size=8).digest(),
                "big",
                signed=True,
            )
            for i in ids
        }
    )
    for key in keys:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def sent_counts(
    conn: Connection, workspace_id: uuid.UUID, ids: Sequence[uuid.UUID], since: datetime
) -> dict[uuid.UUID, list[tuple[str, datetime]]]:
    """Marketing messages each customer was sent since ``since``: (channel, sent_at)."""
    m = messages.c
    rows = conn.execute(
        sa.select(m.customer_id, m.channel, m.sent_at).where(
            m.workspace_id == workspace_id,
            m.customer_id.in_(set(ids)),
            m.purpose == "marketing",
            m.status.in_(COUNTED),
            m.sent_at >= since,
        )
    ).all()
    found: dict[uuid.UUID, list[tuple[str, datetime]]] = {}
    for customer_id, channel, sent_at in rows:
        found.setdefault(customer_id, []).append((channel, sent_at))
    return found


def sent_in_window(conn: Connection, workspace_id: uuid.UUID, channel: str, since: datetime) -> int:
    """How many messages a workspace's channel handed over since ``since`` (any purpose)."""
    m = messages.c
    query = sa.select(sa.func.count()).where(
        m.workspace_id == workspace_id,
        m.channel == channel,
        m.status.in_(COUNTED),
        m.sent_at >= since,
    )
    return int(conn.execute(query).scalar_one())


@dataclass(frozen=True, slots=True)
class Settlement:
    """The new state of one message."""

    message_id: uuid.UUID
    status: str
    reason: str | None = None
    not_before: datetime | None = None
    attempts: int | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    address_hash: bytes | None = None
    sent_at: datetime | None = None
    clear_sent_at: bool = False


def settle(
    conn: Connection, workspace_id: uuid.UUID, settlements: Sequence[Settlement], now: datetime
) -> None:
    """Write each message's new state (one executemany per shape of change)."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for s in settlements:
        values: dict[str, Any] = {"status": s.status, "updated_at": now}
        for name in ("reason", "not_before", "attempts", "provider", "provider_message_id",
                     "address_hash", "sent_at"):  # fmt: skip
            value = getattr(s, name)
            if value is not None:
                values[name] = value
        if s.clear_sent_at:
            values["sent_at"] = None
        row = {f"v_{k}": v for k, v in values.items()}
        row["b_id"] = s.message_id
        shapes.setdefault(tuple(sorted(values)), []).append(row)
    for shape, rows in shapes.items():
        stmt = (
            messages.update()
            .where(messages.c.workspace_id == workspace_id)
            .where(messages.c.message_id == sa.bindparam("b_id"))
            .values({k: sa.bindparam(f"v_{k}") for k in shape})
        )
        conn.execute(stmt, rows)
