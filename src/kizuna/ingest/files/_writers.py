"""Writing one chunk of validated records through the store repositories, per kind."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from kizuna.ingest.files._convert import CustomerRow, EventRow
from kizuna.store.commerce import upsert_orders, upsert_products
from kizuna.store.consent import record_consents
from kizuna.store.customers import apply_traits_many
from kizuna.store.identity import IdentityResolver
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import enqueue_changes
from kizuna.store.tables import events
from kizuna.store.upsert import insert_ignoring

__all__ = ["WRITERS"]

_EVENT_NS = uuid.UUID("0c7f3b1e-4d55-4f0a-9a7e-3b9f1c2d5e61")


def _customers(scope: Scope, records: Sequence[CustomerRow]) -> None:
    resolver = IdentityResolver(scope)
    resolver.prefetch(r.ids for r in records)
    owners = [resolver.resolve(r.ids, r.at or scope.now) for r in records]
    resolver.flush()
    apply_traits_many(scope, [(cid, r.traits) for cid, r in zip(owners, records, strict=True)])
    enqueue_changes(scope, dict.fromkeys(owners, ("traits",)))


def _orders(scope: Scope, records: Sequence[Any]) -> None:
    owners = upsert_orders(scope, IdentityResolver(scope), records)
    enqueue_changes(scope, dict.fromkeys(owners, ("orders",)))


def _products(scope: Scope, records: Sequence[Any]) -> None:
    upsert_products(scope, records)


def _consents(scope: Scope, records: Sequence[Any]) -> None:
    record_consents(scope, IdentityResolver(scope), records)


def _events(scope: Scope, records: Sequence[EventRow]) -> None:
    resolver = IdentityResolver(scope)
    resolver.prefetch(r.ids for r in records)
    rows = []
    changes: dict[uuid.UUID, set[str]] = {}
    for r in records:
        owner = resolver.resolve(r.ids, r.occurred_at)
        rows.append({
            "workspace_id": scope.workspace_id, "customer_id": owner,
            "event_id": uuid.uuid5(_EVENT_NS, r.message_id), "message_id": r.message_id,
            "type": r.type, "name": r.name, "properties": r.properties,
            "context": {"library": {"name": "kizuna-import"}},
            "anonymous_id": r.ids.anonymous_id, "user_id": r.ids.user_id,
            "occurred_at": r.occurred_at, "received_at": scope.now,
        })  # fmt: skip
        if r.name:
            changes.setdefault(owner, set()).add(f"event:{r.name}")
    resolver.flush()
    insert_ignoring(scope.conn, events, rows, ["workspace_id", "message_id"])
    enqueue_changes(scope, changes)


WRITERS: dict[str, Callable[[Scope, Sequence[Any]], None]] = {
    "customers": _customers,
    "orders": _orders,
    "products": _products,
    "consents": _consents,
    "events": _events,
}
