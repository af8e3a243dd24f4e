"""Apply a batch of validated Segment messages to the store inside one write transaction.

Steps, each a handful of statements whatever the batch size:

1. drop messages whose ``messageId`` is already stored (a retried batch);
2. resolve every message's customer with one :class:`IdentityResolver`
   (one prefetch query, buffered inserts, merges as the identity rules say);
3. insert the event rows with ``ON CONFLICT DO NOTHING`` on
   ``(workspace_id, message_id)`` and read back which were inserted;
4. apply side effects (profile traits, orders, carts, products) only for those;
   traits are written like ``apply_traits`` but for all customers at once.

So a batch sent twice changes nothing the second time. On PostgreSQL several
batches of one workspace run at once (no workspace lock): rows are written in key
order, a copy racing the original finds its events with ``ON CONFLICT DO NOTHING``
and applies no side effects, and :func:`ingest_transaction` retries the whole
transaction when PostgreSQL reports a deadlock, a serialization failure or a unique
violation (two batches creating the same identity), or when the resolver finds a
customer merged under it. A retried transaction starts again from nothing, so each
message is still stored exactly once and each identifier names one customer.

IMPORTANT: personal trait keys are stripped from ``properties`` and ``context``
before storage; personal data reaches the store only through ``apply_traits``
(encrypted) and the resolver (hashed and encrypted identities).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.domain.records import CustomerTraits, ProductRecord
from kizuna.ingest.ecommerce import CommerceAction, apply_commerce
from kizuna.ingest.segment import Message, strip_personal
from kizuna.scenarios.inbox import notify_events
from kizuna.segments.membership import message_causes
from kizuna.store.commerce import upsert_products
from kizuna.store.customers import trait_values
from kizuna.store.database import Database
from kizuna.store.identity import ConcurrentChangeError, IdentityResolver
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import enqueue_changes
from kizuna.store.tables import customers, events
from kizuna.store.types import new_id
from kizuna.store.upsert import insert_ignoring

__all__ = ["IngestResult", "ingest_groups", "ingest_messages", "ingest_transaction"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class IngestResult:
    """How many messages were new (stored) and how many were repeats (ignored)."""

    inserted: int
    duplicates: int


_RETRIES = 8
# PostgreSQL SQLSTATEs after which the whole transaction is worth running again.
_RETRYABLE = frozenset({"40P01", "40001", "23505"})  # deadlock, serialization, unique
_SQLITE_WRITERS: dict[int, threading.Lock] = {}  # id(engine) -> lock


def ingest_transaction(
    db: Database, workspace_id: uuid.UUID, received_at: datetime, messages: Sequence[Message]
) -> IngestResult:
    """Run :func:`ingest_messages` in its own write transaction, retrying transient conflicts."""

    def attempt(conn: Connection) -> IngestResult:
        return ingest_messages(Scope(conn, db.cipher, workspace_id, received_at), messages)

    return _with_retries(db, attempt)


Batch = tuple[uuid.UUID, datetime, Sequence[Message]]


def ingest_groups(db: Database, batches: Sequence[Batch]) -> list[IngestResult]:
    """Store several requests' batches in one write transaction; one result per batch.

    Batches of one workspace whose message ids do not overlap are stored by one
    :func:`ingest_messages` pass (one prefetch, one insert); a batch repeating
    another's ids goes into a later pass, so a retry racing its original still
    applies nothing twice. Rows get the latest ``received_at`` of their pass.
    """
    rounds = _rounds(batches)

    def attempt(conn: Connection) -> list[IngestResult]:
        results: list[IngestResult] = [IngestResult(0, 0)] * len(batches)
        for workspace_id, members in rounds:
            received_at = max(batches[i][1] for i in members)
            messages = [m for i in members for m in batches[i][2]]
            inserted = _store(Scope(conn, db.cipher, workspace_id, received_at), messages)
            for i in members:
                count = sum(1 for m in batches[i][2] if m.message_id in inserted)
                results[i] = IngestResult(count, len(batches[i][2]) - count)
        return results

    return _with_retries(db, attempt)


def _rounds(batches: Sequence[Batch]) -> list[tuple[uuid.UUID, list[int]]]:
    """Group batch indexes into passes: same workspace, disjoint message ids, order kept."""
    rounds: list[tuple[uuid.UUID, list[int]]] = []
    open_round: dict[uuid.UUID, tuple[list[int], set[str]]] = {}
    for index, (workspace_id, _, messages) in enumerate(batches):
        ids = {m.message_id for m in messages}
        current = open_round.get(workspace_id)
        if current is None or not current[1].isdisjoint(ids):
            current = ([], set())
            open_round[workspace_id] = current
            rounds.append((workspace_id, current[0]))
        current[0].append(index)
        current[1].update(ids)
    return rounds


def _with_retries(db: Database, work: Callable[[Connection], _T]) -> _T:
    """Run ``work`` in a write transaction, again from scratch after a transient conflict."""
    for attempt in range(1, _RETRIES + 1):
        try:
            with _writer_turn(db), db.write() as conn:
                return work(conn)
        except (sa.exc.DBAPIError, ConcurrentChangeError) as exc:
            if attempt == _RETRIES or not _retryable(exc):
                raise
            time.sleep(random.uniform(0, 0.002 * 2**attempt))  # jitter, not a secret
    raise AssertionError("unreachable")


def _writer_turn(db: Database) -> AbstractContextManager[Any]:
    """SQLite: queue this process's ingesting threads on a lock, not in SQLite's busy handler.

    SQLite admits one writer; a thread refused by ``BEGIN IMMEDIATE`` sleeps in
    steps of up to 100 ms, while a thread queued here starts as soon as the last
    commits.
    """
    if db.dialect != "sqlite":
        return nullcontext()
    return _SQLITE_WRITERS.setdefault(id(db.engine), threading.Lock())


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, ConcurrentChangeError):
        return True
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _RETRYABLE


def ingest_messages(scope: Scope, messages: Sequence[Message]) -> IngestResult:
    """Store ``messages`` and their side effects in ``scope``'s transaction; idempotent."""
    inserted = _store(scope, messages)
    return IngestResult(len(inserted), len(messages) - len(inserted))


def _store(scope: Scope, messages: Sequence[Message]) -> set[str]:
    """Store what is new among ``messages``; returns the message ids inserted."""
    fresh = _drop_known(scope, messages)
    if not fresh:
        return set()
    resolver = IdentityResolver(scope)
    resolver.prefetch(m.identifiers for m in fresh)
    owners = _resolve(resolver, fresh)
    resolver.flush()
    rows = [_event_row(scope, m, owner) for m, owner in zip(fresh, owners, strict=True)]
    rows.sort(key=lambda row: row["message_id"])  # the same lock order in every transaction
    keys = ["workspace_id", "message_id"]
    inserted = set(insert_ignoring(scope.conn, events, rows, keys, returning=events.c.message_id))
    applied = [(m, o) for m, o in zip(fresh, owners, strict=True) if m.message_id in inserted]
    _apply_side_effects(scope, resolver, applied)
    enqueue_changes(scope, message_causes(applied))  # segments re-evaluate these customers
    tracked = [(o, m.raw.event, _payload(m)) for m, o in applied if m.raw.event]
    notify_events(scope, tracked)  # scenario triggers, goals and waits
    resolver.flush()
    return inserted


def _drop_known(scope: Scope, messages: Sequence[Message]) -> list[Message]:
    ids = [m.message_id for m in messages]
    if not ids:
        return []
    known = set(
        scope.conn.execute(
            sa.select(events.c.message_id)
            .where(events.c.workspace_id == scope.workspace_id)
            .where(events.c.message_id.in_(ids))
        ).scalars()
    )
    return [m for m in messages if m.message_id not in known]


def _resolve_one(resolver: IdentityResolver, m: Message) -> uuid.UUID:
    raw = m.raw
    if raw.type == "alias" and raw.previous_id and raw.user_id:
        return resolver.alias(raw.previous_id, raw.user_id, m.occurred_at)
    return resolver.resolve(m.identifiers, m.occurred_at)


def _resolve(resolver: IdentityResolver, messages: list[Message]) -> list[uuid.UUID]:
    owners: list[uuid.UUID] = []
    last_merge = -1
    for index, m in enumerate(messages):
        merges = resolver.merges
        owners.append(_resolve_one(resolver, m))
        if resolver.merges != merges:
            last_merge = index
    # A later merge may have absorbed an earlier message's customer: ask again (no new merges).
    for index in range(last_merge):
        owners[index] = resolver.resolve(messages[index].identifiers, messages[index].occurred_at)
    return owners


_NOT_PERSONAL_IN_PROPERTIES = frozenset({"name"})  # product, page and screen names


def _payload(m: Message) -> dict[str, Any]:
    raw = m.raw
    if raw.type == "identify":
        return strip_personal(raw.traits)
    if raw.type == "group":
        return {"groupId": raw.group_id, "traits": strip_personal(raw.traits)}
    if raw.type == "alias":
        return {"previousId": raw.previous_id}
    return strip_personal(raw.properties, _NOT_PERSONAL_IN_PROPERTIES)


def _event_row(scope: Scope, m: Message, customer_id: uuid.UUID) -> dict[str, Any]:
    raw = m.raw
    return {
        "workspace_id": scope.workspace_id, "customer_id": customer_id, "event_id": new_id(),
        "message_id": m.message_id, "type": raw.type,
        "name": raw.event if raw.type == "track" else raw.name,
        "properties": _payload(m), "context": strip_personal(raw.context),
        "anonymous_id": raw.anonymous_id, "user_id": raw.user_id,
        "occurred_at": m.occurred_at, "received_at": scope.now,
    }  # fmt: skip


def _apply_side_effects(
    scope: Scope, resolver: IdentityResolver, applied: list[tuple[Message, uuid.UUID]]
) -> None:
    profiles: dict[uuid.UUID, dict[str, Any]] = {}
    viewed: list[ProductRecord] = []  # catalogue entries from Product Viewed: one upsert
    for m, owner in applied:
        if m.traits is not None:
            _merge_traits(profiles.setdefault(owner, {"attributes": {}}), m.traits)
        action = m.commerce
        product = action.product if action is not None else None
        if product is not None and action == CommerceAction(product=product):
            viewed.append(product)
        elif action is not None:
            apply_commerce(scope, resolver, owner, action, m.occurred_at)
    if viewed:
        upsert_products(scope, viewed)
    _write_profiles(scope, {o: CustomerTraits.model_construct(**v) for o, v in profiles.items()})


def _write_profiles(scope: Scope, profiles: dict[uuid.UUID, CustomerTraits]) -> None:
    """``apply_traits`` for many customers: one read of attributes, one UPDATE per column set."""
    if not profiles:
        return
    mine = sa.and_(customers.c.workspace_id == scope.workspace_id)
    extended = [o for o, t in profiles.items() if t.attributes]
    current: dict[uuid.UUID, dict[str, Any]] = {}
    if extended:
        query = sa.select(customers.c.customer_id, customers.c.attributes).where(mine)
        found = scope.conn.execute(query.where(customers.c.customer_id.in_(extended)))
        current = {cid: attributes for cid, attributes in found}
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for owner, traits in profiles.items():
        values = trait_values(scope.cipher, traits)
        if traits.attributes:
            values["attributes"] = {**(current.get(owner) or {}), **traits.attributes}
        if values:
            values["updated_at"] = scope.now
            groups.setdefault(tuple(sorted(values)), []).append(
                {"cid": owner, **{f"v_{k}": v for k, v in values.items()}}
            )
    for columns, params in groups.items():
        stmt = customers.update().where(mine, customers.c.customer_id == sa.bindparam("cid"))
        scope.conn.execute(stmt.values({c: sa.bindparam(f"v_{c}") for c in columns}), params)


def _merge_traits(into: dict[str, Any], traits: CustomerTraits) -> None:
    """Fold one identify's traits into the customer's pending ones (later calls win)."""
    for name, value in traits:
        if name == "attributes":
            into["attributes"].update(value)
        elif value is not None:
            into[name] = value
