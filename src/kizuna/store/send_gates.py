"""What the send pipeline must know about a batch before it may send: one query per fact."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

import sqlalchemy as sa

from kizuna.store.preferences import unsubscribed_topics
from kizuna.store.scope import Scope
from kizuna.store.tables import consents, seed_addresses, suppressions

__all__ = ["GateFacts", "load_gate_facts"]


@dataclass(slots=True)
class GateFacts:
    """Consent, suppression, topic and seed facts for one workspace's batch."""

    consent: dict[tuple[uuid.UUID, str], str] = field(default_factory=dict)
    suppressed: dict[bytes, str] = field(default_factory=dict)  # address hash -> reason
    left_topics: dict[uuid.UUID, frozenset[str]] = field(default_factory=dict)
    seeds: set[tuple[str, bytes]] = field(default_factory=set)


def load_gate_facts(
    scope: Scope,
    customer_ids: Collection[uuid.UUID],
    hashes: Collection[tuple[str, bytes]],
) -> GateFacts:
    """Read the facts for these customers and (channel, address hash) pairs."""
    ws = scope.workspace_id
    ids = list(set(customer_ids))
    facts = GateFacts()
    if ids:
        rows = scope.conn.execute(
            sa.select(consents.c.customer_id, consents.c.channel, consents.c.status).where(
                consents.c.workspace_id == ws, consents.c.customer_id.in_(ids)
            )
        ).all()
        facts.consent = {(c, ch): st for c, ch, st in rows}
        facts.left_topics = unsubscribed_topics(scope, ids)
    wanted = {h for _, h in hashes}
    if wanted:
        rows2 = scope.conn.execute(
            sa.select(suppressions.c.channel, suppressions.c.address_hash, suppressions.c.reason)
            .where(suppressions.c.workspace_id == ws)
            .where(suppressions.c.address_hash.in_(wanted))
        ).all()
        facts.suppressed = {h: reason for _, h, reason in rows2}
    facts.seeds = set(
        scope.conn.execute(
            sa.select(seed_addresses.c.channel, seed_addresses.c.address_hash).where(
                seed_addresses.c.workspace_id == ws
            )
        ).all()
    )
    return facts
