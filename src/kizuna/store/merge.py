"""Merging two customer records into one, moving everything and losing nothing.

Every customer-owned row moves to the surviving customer; where both have a
consent for the same channel the more recent decision stands (the older one
stays in consent history); profile fields the survivor lacks are taken from the
other record. The losing record remains as a tombstone pointing at the winner,
and the merge is recorded with the number of rows moved per table.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from kizuna.store.scope import Scope
from kizuna.store.segment_membership import CUSTOMER_CHANGED, enqueue_changes
from kizuna.store.tables import (
    carts,
    consent_events,
    consents,
    customer_merges,
    customer_metrics,
    customers,
    events,
    identities,
    messages,
    order_items,
    orders,
    preferences,
    subscriptions,
    suppressions,
)
from kizuna.store.tables_campaigns import attributions, campaign_recipients
from kizuna.store.types import new_id

__all__ = ["MOVED_TABLES", "merge_customers"]

MOVED_TABLES: tuple[sa.Table, ...] = (
    events,
    orders,
    order_items,
    identities,
    consent_events,
    subscriptions,
    suppressions,
    carts,
    messages,
    attributions,
)

_PROFILE_FIELDS = (
    "shop_customer_id",
    "email_enc",
    "email_hash",
    "phone_enc",
    "phone_hash",
    "last_name_enc",
    "first_name_enc",
    "last_name_kana_enc",
    "first_name_kana_enc",
    "postal_code_enc",
    "address_enc",
    "birthday_enc",
    "birth_md",
    "gender",
    "prefecture",
    "city",
    "membership_rank",
    "registered_at",
)


def _owned(table: sa.Table, scope: Scope, customer_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.workspace_id == scope.workspace_id, table.c.customer_id == customer_id)


def merge_customers(
    scope: Scope, loser: uuid.UUID, winner: uuid.UUID, reason: str
) -> dict[str, int]:
    """Move everything of ``loser`` to ``winner``; returns rows moved per table."""
    if loser == winner:
        return {}
    conn = scope.conn
    _drop_duplicate_carts(scope, loser, winner)
    moved = {
        "consents": _merge_latest(scope, consents, "channel", loser, winner),
        "preferences": _merge_latest(scope, preferences, "topic", loser, winner),
    }
    for table in MOVED_TABLES:
        result = conn.execute(
            table.update().where(_owned(table, scope, loser)).values(customer_id=winner)
        )
        moved[table.name] = result.rowcount
    moved["campaign_recipients"] = _merge_recipients(scope, loser, winner)
    _merge_profiles(scope, loser, winner)
    # Computed metrics are rebuilt from the moved orders at the next refresh.
    conn.execute(customer_metrics.delete().where(_owned(customer_metrics, scope, loser)))
    # Records merged into the loser earlier now point straight at the winner.
    conn.execute(
        customers.update()
        .where(customers.c.workspace_id == scope.workspace_id)
        .where(customers.c.merged_into == loser)
        .values(merged_into=winner)
    )
    conn.execute(
        customer_merges.insert().values(
            workspace_id=scope.workspace_id,
            merge_id=new_id(),
            from_customer_id=loser,
            into_customer_id=winner,
            reason=reason,
            moved=moved,
            merged_at=scope.now,
        )
    )
    enqueue_changes(scope, dict.fromkeys((loser, winner), (CUSTOMER_CHANGED,)))
    return moved


def _drop_duplicate_carts(scope: Scope, loser: uuid.UUID, winner: uuid.UUID) -> None:
    theirs = sa.select(carts.c.cart_id).where(_owned(carts, scope, winner))
    scope.conn.execute(
        carts.delete().where(_owned(carts, scope, loser)).where(carts.c.cart_id.in_(theirs))
    )


def _merge_recipients(scope: Scope, loser: uuid.UUID, winner: uuid.UUID) -> int:
    """Move campaign audiences; where both were in one, the survivor's row stands.

    Their outcomes are recomputed from the moved orders by the attribution job,
    which reads the merge.
    """
    cr = campaign_recipients.c
    theirs = sa.select(cr.campaign_id).where(_owned(campaign_recipients, scope, winner))
    scope.conn.execute(
        campaign_recipients.delete()
        .where(_owned(campaign_recipients, scope, loser))
        .where(cr.campaign_id.in_(theirs))
    )
    moved = scope.conn.execute(
        campaign_recipients.update()
        .where(_owned(campaign_recipients, scope, loser))
        .values(customer_id=winner)
    )
    return int(moved.rowcount)


def _merge_latest(scope: Scope, table: sa.Table, key: str, loser: uuid.UUID,
                  winner: uuid.UUID) -> int:  # fmt: skip
    """Move per-key decisions (consent per channel, subscription per topic); the later wins."""
    conn = scope.conn
    rows = {
        (r.customer_id, r._mapping[key]): r
        for r in conn.execute(
            sa.select(table).where(
                table.c.workspace_id == scope.workspace_id,
                table.c.customer_id.in_([loser, winner]),
            )
        )
    }
    moved = 0
    for (owner, value), row in rows.items():
        if owner != loser:
            continue
        kept = rows.get((winner, value))
        where = sa.and_(_owned(table, scope, loser), table.c[key] == value)
        if kept is not None and kept.changed_at >= row.changed_at:
            conn.execute(table.delete().where(where))
            continue
        if kept is not None:
            conn.execute(table.delete().where(_owned(table, scope, winner), table.c[key] == value))
        conn.execute(table.update().where(where).values(customer_id=winner))
        moved += 1
    return moved


def _merge_profiles(scope: Scope, loser: uuid.UUID, winner: uuid.UUID) -> None:
    conn = scope.conn
    found = {
        r.customer_id: r._mapping
        for r in conn.execute(
            sa.select(customers).where(
                customers.c.workspace_id == scope.workspace_id,
                customers.c.customer_id.in_([loser, winner]),
            )
        )
    }
    if loser not in found or winner not in found:
        return
    lose, win = found[loser], found[winner]
    values: dict[str, Any] = {f: lose[f] for f in _PROFILE_FIELDS if win[f] is None and lose[f]}
    values["attributes"] = {**(lose["attributes"] or {}), **(win["attributes"] or {})}
    values["first_seen_at"] = min(lose["first_seen_at"], win["first_seen_at"])
    values["last_seen_at"] = max(lose["last_seen_at"], win["last_seen_at"])
    values["updated_at"] = scope.now
    conn.execute(customers.update().where(_owned(customers, scope, winner)).values(**values))
    # IMPORTANT: the tombstone keeps no personal data; the winner holds it now.
    cleared: dict[str, Any] = {f: None for f in _PROFILE_FIELDS if f.endswith(("_enc", "_hash"))}
    conn.execute(
        customers.update()
        .where(_owned(customers, scope, loser))
        .values(merged_into=winner, updated_at=scope.now, **cleared)
    )
