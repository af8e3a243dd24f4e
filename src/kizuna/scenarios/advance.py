"""Advancing a batch of runs: load what the walks need in a few queries, walk, write it all.

One transaction per batch: the runs' new states, their steps, the send intents
(the outbox) and profile updates commit together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from kizuna.delivery.rules import cap_reached, cap_window
from kizuna.delivery.settings import DeliverySettings
from kizuna.domain.records import CustomerTraits
from kizuna.scenarios.definition import Branch
from kizuna.scenarios.loaded import VersionCache
from kizuna.scenarios.walk import Facts, Walk, walk
from kizuna.segments.compiler import compile_segment
from kizuna.store.customers import apply_traits_many
from kizuna.store.messages import enqueue
from kizuna.store.outbox import sent_counts
from kizuna.store.scenario_runs import RunRecord, record_steps, update_runs
from kizuna.store.scope import Scope
from kizuna.store.segments import compile_context
from kizuna.store.tables import consents, customers, events, suppressions
from kizuna.store.workspaces import Workspace

__all__ = ["advance_runs", "write_walks"]

_RESPONSES = ("Message Opened", "Message Clicked")


def _opted_out(scope: Scope, ids: list[uuid.UUID]) -> set[tuple[uuid.UUID, str]]:
    rows = scope.conn.execute(
        sa.select(consents.c.customer_id, consents.c.channel).where(
            consents.c.workspace_id == scope.workspace_id,
            consents.c.customer_id.in_(ids),
            consents.c.status == "opted_out",
        )
    ).all()
    return {(c, ch) for c, ch in rows}


def _blacklisted(scope: Scope, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    s, c = suppressions.c, customers.c
    by_address = (
        sa.select(c.customer_id)
        .join(
            suppressions,
            sa.and_(
                s.workspace_id == c.workspace_id, s.address_hash.in_([c.email_hash, c.phone_hash])
            ),
        )
        .where(c.workspace_id == scope.workspace_id, c.customer_id.in_(ids))
        .where(s.reason == "blacklist")
    )
    by_owner = sa.select(s.customer_id).where(
        s.workspace_id == scope.workspace_id, s.customer_id.in_(ids), s.reason == "blacklist"
    )
    return set(scope.conn.execute(sa.union(by_address, by_owner)).scalars())


def _responded(
    scope: Scope, runs: Sequence[RunRecord], keys: dict[uuid.UUID, str]
) -> set[uuid.UUID]:
    """Customers who opened (not a machine) or clicked a message of their run's scenario."""
    since = min(r.entered_at for r in runs)
    e = events.c
    rows = scope.conn.execute(
        sa.select(e.customer_id, e.properties).where(
            e.workspace_id == scope.workspace_id,
            e.customer_id.in_({r.customer_id for r in runs}),
            e.name.in_(_RESPONSES),
            e.occurred_at >= since,
        )
    ).all()
    wanted = {(r.customer_id, keys[r.scenario_id]) for r in runs}
    return {
        c for c, props in rows
        if (c, props.get("source_id")) in wanted and not props.get("machine")
    }  # fmt: skip


class _Branches:
    """Branch answers for a batch: one query per branch node, for every customer at once."""

    def __init__(self, scope: Scope, ids: list[uuid.UUID]) -> None:
        self._scope, self._ids = scope, ids
        self._answers: dict[int, set[uuid.UUID]] = {}

    def __call__(self, customer_id: uuid.UUID, node: Branch) -> bool:
        key = id(node)
        if key not in self._answers:
            ctx = compile_context(self._scope, customer_ids=self._ids)
            query = compile_segment(node.condition, ctx)
            self._answers[key] = set(self._scope.conn.execute(query).scalars())
        return customer_id in self._answers[key]


class _Caps:
    def __init__(self, scope: Scope, ids: list[uuid.UUID], settings: DeliverySettings) -> None:
        self._scope, self._ids, self._settings = scope, ids, settings
        self._sent: dict[uuid.UUID, list[Any]] | None = None

    def __call__(self, customer_id: uuid.UUID, channel: str) -> bool:
        caps = self._settings.frequency_caps
        if not caps:
            return False
        if self._sent is None:
            since = self._scope.now - cap_window(caps)
            self._sent = sent_counts(self._scope.conn, self._scope.workspace_id, self._ids, since)
        sent = self._sent.get(customer_id, [])
        return cap_reached(caps, channel, sent, self._scope.now) is not None


def advance_runs(
    scope: Scope,
    runs: Sequence[RunRecord],
    versions: VersionCache,
    workspace: Workspace,
    settings: DeliverySettings,
) -> list[Walk]:
    """Walk every run as far as it goes now, and write the results."""
    if not runs:
        return []
    loaded = {r.run_id: versions.get(scope.conn, scope.workspace_id, r.scenario_id, r.version)
              for r in runs}  # fmt: skip
    ids = sorted({r.customer_id for r in runs})
    needs_responses = [r for r in runs if loaded[r.run_id].spec.exits.no_response_after_sends]
    keys = {s.scenario_id: s.spec.key for s in loaded.values()}
    facts = Facts(
        now=scope.now, time_zone=workspace.time_zone,
        opted_out=_opted_out(scope, ids), blacklisted=_blacklisted(scope, ids),
        responded=_responded(scope, needs_responses, keys) if needs_responses else set(),
        branch=_Branches(scope, ids), capped=_Caps(scope, ids, settings),
    )  # fmt: skip
    walks = [walk(r, loaded[r.run_id], facts) for r in runs]
    write_walks(scope, walks)
    return walks


def write_walks(scope: Scope, walks: Sequence[Walk]) -> None:
    """Persist walks: runs, steps, send intents and profile changes, in this transaction."""
    intents = [i for w in walks for i in w.intents]
    if intents:
        enqueue(scope, intents)
    update_runs(scope.conn, scope.workspace_id, [w.update for w in walks], scope.now)
    record_steps(scope.conn, [s for w in walks for s in w.steps], scope.now)
    _update_profiles(scope, walks)


def _update_profiles(scope: Scope, walks: Sequence[Walk]) -> None:
    changed = [w for w in walks if w.attributes or w.tags[0] or w.tags[1]]
    if not changed:
        return
    ids = [w.customer_id for w in changed]
    current = dict(scope.conn.execute(
        sa.select(customers.c.customer_id, customers.c.attributes).where(
            customers.c.workspace_id == scope.workspace_id, customers.c.customer_id.in_(ids))
    ).all())  # fmt: skip
    updates = []
    for w in changed:
        customer = w.customer_id
        attributes = dict(w.attributes)
        if w.tags[0] or w.tags[1]:
            tags = [t for t in (current.get(customer) or {}).get("tags", []) if t not in w.tags[1]]
            attributes["tags"] = tags + [t for t in w.tags[0] if t not in tags]
        updates.append((customer, CustomerTraits(attributes=attributes)))
    apply_traits_many(scope, updates)
