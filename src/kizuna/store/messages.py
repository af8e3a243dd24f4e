"""Messages: the outbox (send intents in ``queued``) and the message log, with their events.

A scenario or campaign calls :func:`enqueue` in the same transaction as its own
state change; the key makes a replayed intent a no-op, so a crash between the
two never sends twice. What happens to a message afterwards (delivered, opened,
clicked, bounced, complained, unsubscribed) is written as an event on the
customer by :func:`record_message_events`, carrying the message's attribution,
so segments and measurement read it like any other behaviour.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.errors import InvalidInput, NotFound, Problem
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import enqueue_changes
from kizuna.store.tables import events, messages
from kizuna.store.types import new_id
from kizuna.store.upsert import insert_ignoring

__all__ = [
    "CHANNELS",
    "MESSAGE_EVENTS",
    "PURPOSES",
    "MessageEvent",
    "MessageRecord",
    "SendIntent",
    "enqueue",
    "find_by_provider_id",
    "get_message",
    "list_messages",
    "record_from_row",
    "record_message_events",
]

CHANNELS = frozenset({"email", "line", "sms", "push", "webhook"})
PURPOSES = frozenset({"marketing", "transactional"})
SOURCES = frozenset({"scenario", "campaign", "test", "api"})

# Event name -> the message status it moves to (None: the status stays).
MESSAGE_EVENTS: dict[str, str | None] = {
    "Message Sent": None,
    "Message Delivered": "delivered",
    "Message Opened": None,
    "Message Clicked": None,
    "Message Bounced": "bounced",
    "Message Complained": "complained",
    "Message Failed": "failed",
    "Unsubscribed": None,
}
_ENGAGED = frozenset({"Message Delivered", "Message Opened", "Message Clicked"})
_PROGRESS = ("queued", "sending", "sent")  # statuses a delivery receipt may move on from


@dataclass(frozen=True, slots=True)
class SendIntent:
    """A request to send one customer one template on one channel."""

    customer_id: uuid.UUID
    channel: str
    template_key: str | None
    idempotency_key: str  # e.g. "scenario:<run>:<step>"; the same key is sent once
    purpose: str = "marketing"
    topic: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    source_kind: str = "api"
    source_id: str | None = None
    step: str | None = None
    variant: str | None = None
    not_before: datetime | None = None  # default: now


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message as logged."""

    message_id: uuid.UUID
    workspace_id: uuid.UUID
    customer_id: uuid.UUID
    idempotency_key: str
    channel: str
    purpose: str
    topic: str | None
    template_key: str | None
    params: Mapping[str, Any]
    source_kind: str
    source_id: str | None
    step: str | None
    variant: str | None
    status: str
    reason: str | None
    attempts: int
    not_before: datetime
    provider: str | None
    provider_message_id: str | None
    address_hash: bytes | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """Something that happened to a message, to be recorded as an event on its customer."""

    message_id: uuid.UUID
    name: str  # one of MESSAGE_EVENTS
    occurred_at: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)  # e.g. url, machine, reason
    dedupe: str = ""  # distinguishes repeats that count (each click URL); "" = once per name


def _check(intent: SendIntent, index: int) -> list[Problem]:
    where = f"intents[{index}]"
    problems = []
    if intent.channel not in CHANNELS:
        problems.append(Problem("unknown_channel", f"unknown channel {intent.channel!r}", where))
    if intent.purpose not in PURPOSES:
        problems.append(Problem("unknown_purpose", "purpose is marketing or transactional", where))
    if intent.source_kind not in SOURCES:
        problems.append(Problem("unknown_source", f"unknown source {intent.source_kind!r}", where))
    if not 0 < len(intent.idempotency_key) <= 200:
        problems.append(Problem("bad_key", "idempotency_key needs 1–200 characters", where))
    return problems


def enqueue(scope: Scope, intents: Sequence[SendIntent]) -> list[uuid.UUID]:
    """Write send intents to the outbox; a key seen before returns its existing message."""
    problems = [p for i, intent in enumerate(intents) for p in _check(intent, i)]
    if problems:
        raise InvalidInput(problems)
    rows = [
        {
            "workspace_id": scope.workspace_id, "message_id": new_id(),
            "customer_id": i.customer_id, "idempotency_key": i.idempotency_key,
            "channel": i.channel, "purpose": i.purpose, "topic": i.topic,
            "template_key": i.template_key, "params": dict(i.params),
            "source_kind": i.source_kind, "source_id": i.source_id, "step": i.step,
            "variant": i.variant, "status": "queued", "attempts": 0,
            "not_before": i.not_before or scope.now, "created_at": scope.now,
            "updated_at": scope.now,
        }
        for i in intents
    ]  # fmt: skip
    insert_ignoring(scope.conn, messages, rows, ["workspace_id", "idempotency_key"])
    keys = [i.idempotency_key for i in intents]
    ids = dict(
        scope.conn.execute(
            sa.select(messages.c.idempotency_key, messages.c.message_id).where(
                messages.c.workspace_id == scope.workspace_id,
                messages.c.idempotency_key.in_(keys),
            )
        ).all()
    )
    return [ids[k] for k in keys]


def record_from_row(row: sa.Row[Any]) -> MessageRecord:
    """A MessageRecord from a row of ``messages``."""
    found = row._mapping
    return MessageRecord(*(found[c] for c in _FIELDS))


_FIELDS: tuple[str, ...] = MessageRecord.__slots__


def get_message(scope: Scope, message_id: uuid.UUID) -> MessageRecord:
    """One message of this workspace; NotFound otherwise."""
    row = scope.conn.execute(
        sa.select(messages).where(
            messages.c.workspace_id == scope.workspace_id, messages.c.message_id == message_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no message {message_id}")
    return record_from_row(row)


def list_messages(
    scope: Scope,
    *,
    status: str | None = None,
    customer_id: uuid.UUID | None = None,
    source_id: str | None = None,
    limit: int = 100,
) -> list[MessageRecord]:
    """The workspace's newest messages, optionally by status, customer or source."""
    m = messages.c
    query = sa.select(messages).where(m.workspace_id == scope.workspace_id)
    if status is not None:
        query = query.where(m.status == status)
    if customer_id is not None:
        query = query.where(m.customer_id == customer_id)
    if source_id is not None:
        query = query.where(m.source_id == source_id)
    rows = scope.conn.execute(query.order_by(m.created_at.desc(), m.message_id.desc()).limit(limit))
    return [record_from_row(r) for r in rows]


def find_by_provider_id(
    conn: Connection, provider: str, provider_message_id: str
) -> MessageRecord | None:
    """The message a provider callback names (callbacks carry no workspace)."""
    row = conn.execute(
        sa.select(messages).where(
            messages.c.provider == provider,
            messages.c.provider_message_id == provider_message_id,
        )
    ).first()
    return None if row is None else record_from_row(row)


def _event_message_id(event: MessageEvent) -> str:
    """A stable Segment-style messageId, so a replayed callback records nothing new."""
    tail = hashlib.sha256(f"{event.name}\x00{event.dedupe}".encode()).hexdigest()[:24]
    return f"kz-msg-{event.message_id.hex}-{tail}"


def _attribution(m: MessageRecord) -> dict[str, Any]:
    found = {
        "message_id": str(m.message_id), "channel": m.channel, "purpose": m.purpose,
        "template": m.template_key, "source": m.source_kind, "source_id": m.source_id,
        "step": m.step, "variant": m.variant,
    }  # fmt: skip
    return {k: v for k, v in found.items() if v is not None}


def record_message_events(
    scope: Scope,
    happened: Sequence[MessageEvent],
    known: Mapping[uuid.UUID, MessageRecord] | None = None,
) -> int:
    """Record what happened to messages as events on their customers; returns how many are new.

    Delivery receipts and bounces also move the message's status; an open or a
    click proves delivery. A person's first open and click (not ``machine``) and
    the first unsubscribe are kept on the message (``opened_at``, ``clicked_at``,
    ``unsubscribed_at``) for reports and attribution. Unknown message ids raise
    NotFound (nothing is written).
    ``known`` saves reading messages the caller already holds (the send pipeline).
    """
    if not happened:
        return 0
    ids = {e.message_id for e in happened}
    found = {i: m for i, m in (known or {}).items() if i in ids}
    if len(found) < len(ids):
        found |= {
            r.message_id: record_from_row(r)
            for r in scope.conn.execute(
                sa.select(messages).where(
                    messages.c.workspace_id == scope.workspace_id,
                    messages.c.message_id.in_(ids - found.keys()),
                )
            )
        }
    missing = ids - found.keys()
    if missing:
        raise NotFound(f"no message {sorted(map(str, missing))[0]}")
    bad = [e.name for e in happened if e.name not in MESSAGE_EVENTS]
    if bad:
        raise InvalidInput(f"unknown message event {bad[0]!r}")
    rows = [_event_row(scope, found[e.message_id], e) for e in happened]
    written = insert_ignoring(
        scope.conn, events, rows, ["workspace_id", "message_id"], returning=events.c.message_id
    )
    for e in happened:
        _move_status(scope, found[e.message_id], e)
    enqueue_changes(
        scope, {found[e.message_id].customer_id: (f"event:{e.name}",) for e in happened}
    )
    return len(written)


def _event_row(scope: Scope, m: MessageRecord, e: MessageEvent) -> dict[str, Any]:
    return {
        "workspace_id": scope.workspace_id, "customer_id": m.customer_id, "event_id": new_id(),
        "message_id": _event_message_id(e), "type": "track", "name": e.name,
        "properties": {**_attribution(m), **dict(e.properties)}, "context": {},
        "anonymous_id": None, "user_id": None, "occurred_at": e.occurred_at,
        "received_at": scope.now,
    }  # fmt: skip


def _move_status(scope: Scope, m: MessageRecord, e: MessageEvent) -> None:
    status = MESSAGE_EVENTS[e.name]
    where = [messages.c.workspace_id == scope.workspace_id, messages.c.message_id == m.message_id]
    if status is not None:
        allowed = _PROGRESS if status == "delivered" else (*_PROGRESS, "delivered")
        values: dict[str, Any] = {"status": status, "updated_at": scope.now}
        if status == "delivered":
            values["delivered_at"] = e.occurred_at
        if status != "delivered" and e.properties.get("reason"):  # e.g. a carrier's error
            values["reason"] = str(e.properties["reason"])
        scope.conn.execute(
            messages.update().where(*where, messages.c.status.in_(allowed)).values(**values)
        )
    if e.name in _ENGAGED:
        scope.conn.execute(
            messages.update()
            .where(*where, messages.c.delivered_at.is_(None))
            .values(delivered_at=e.occurred_at, updated_at=scope.now)
        )
    for column in _FIRSTS.get(e.name, ()):
        if column != "unsubscribed_at" and e.properties.get("machine"):
            continue  # a scanner's or a proxy's visit is no person's interest
        _set_first(scope, where, column, e.occurred_at)


# The first time a person did it: a click proves an open (images may have been blocked).
_FIRSTS: dict[str, tuple[str, ...]] = {
    "Message Opened": ("opened_at",),
    "Message Clicked": ("clicked_at", "opened_at"),
    "Unsubscribed": ("unsubscribed_at",),
}


def _set_first(
    scope: Scope, where: list[sa.ColumnElement[bool]], column: str, at: datetime
) -> None:
    """Keep the earliest time in ``column`` (callbacks may arrive out of order)."""
    col = messages.c[column]
    scope.conn.execute(
        messages.update()
        .where(*where, sa.or_(col.is_(None), col > at))
        .values({column: at, "updated_at": scope.now})
    )
