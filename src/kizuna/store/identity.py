"""Identity resolution: find, create or merge the customer that a set of identifiers names.

Rules:
- Identifiers are looked up by keyed hash; the strongest match wins
  (user_id > email > phone > line_user_id > device_token > anonymous_id).
- Other customers the same message names are merged into the winner, unless
  both carry a different shop customer id (two people sharing a device or an
  address): those stay apart and the identifier stays where it was.
- ``alias`` merges explicitly, whatever the ids say.

One resolver serves one transaction; it prefetches a batch's identifiers in one
query and buffers inserts, so a 100-event batch costs a handful of statements.
Each identifier is hashed once per resolver.

Concurrency (PostgreSQL, where several transactions of a workspace may resolve at
once): buffered rows are written sorted by key so crossing transactions lock rows
in the same order; two transactions creating the same identity collide on its
primary key (a unique violation, for the caller to retry); a merge locks both
customers first, and the last-seen update skips merged customers and raises
:class:`ConcurrentChangeError` when it finds one, so no row is left on a merged customer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.domain.records import Identifiers
from kizuna.store.merge import merge_customers
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import CUSTOMER_CHANGED, enqueue_changes
from kizuna.store.tables import customers, identities
from kizuna.store.types import new_id

__all__ = ["ConcurrentChangeError", "IdentityResolver"]

_Key = tuple[str, bytes]


class ConcurrentChangeError(Exception):
    """A concurrent transaction merged a customer this one resolved; retry the transaction."""


class IdentityResolver:
    """Resolves identifiers to customer ids within one workspace transaction."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        self._owner: dict[_Key, uuid.UUID] = {}
        self._looked_up: set[bytes] = set()  # hashes already queried (found or not)
        self._shop_id: dict[uuid.UUID, str | None] = {}
        self._new_customers: dict[uuid.UUID, dict[str, Any]] = {}
        self._new_identities: list[dict[str, Any]] = []
        self._seen: dict[uuid.UUID, datetime] = {}
        self._shop_id_updates: dict[uuid.UUID, str] = {}
        self._digests: dict[tuple[str, str], bytes] = {}
        self.merges = 0

    def _digest(self, kind: str, value: str) -> bytes:
        digest = self._digests.get((kind, value))
        if digest is None:
            digest = self._digests[(kind, value)] = self._scope.hash(kind, value)
        return digest

    def _keys(self, ids: Identifiers) -> list[tuple[str, str, bytes]]:
        return [(kind, value, self._digest(kind, value)) for kind, value in ids.present().items()]

    def prefetch(self, batch: Iterable[Identifiers]) -> None:
        """Load the owners of every identifier in ``batch`` with one query."""
        self._fetch([(kind, h) for ids in batch for kind, _, h in self._keys(ids)])

    def _fetch(self, keys: list[_Key]) -> None:
        wanted = {h for _, h in keys} - self._looked_up
        if not wanted:
            return
        kinds = sorted({kind for kind, h in keys if h in wanted})  # lets the primary key serve
        self._looked_up |= wanted
        query = (
            sa.select(
                identities.c.kind,
                identities.c.value_hash,
                identities.c.customer_id,
                customers.c.shop_customer_id,
            )
            .join(
                customers,
                sa.and_(
                    customers.c.workspace_id == identities.c.workspace_id,
                    customers.c.customer_id == identities.c.customer_id,
                ),
            )
            .where(identities.c.workspace_id == self._scope.workspace_id)
            .where(identities.c.kind.in_(kinds))
            .where(identities.c.value_hash.in_(list(wanted)))
        )
        for row in self._scope.conn.execute(query):
            self._owner[(row.kind, row.value_hash)] = row.customer_id
            self._shop_id[row.customer_id] = row.shop_customer_id

    def resolve(self, ids: Identifiers, at: datetime) -> uuid.UUID:
        """Return the customer these identifiers name, creating or merging as the rules say."""
        keys = self._keys(ids)
        if not keys:
            raise ValueError("resolve() needs at least one identifier")
        self._fetch([(kind, digest) for kind, _, digest in keys])
        matched: list[uuid.UUID] = []
        for kind, _, digest in keys:
            owner = self._owner.get((kind, digest))
            if owner is not None and owner not in matched:
                matched.append(owner)
        incoming = ids.user_id
        if incoming is not None:
            # A known shop customer never absorbs another known one by a shared identifier.
            matched = [c for c in matched if self._shop_id.get(c) in (None, incoming)]
        target = matched[0] if matched else self._create(incoming, at)
        for other in matched[1:]:
            theirs, ours = self._shop_id.get(other), self._shop_id.get(target)
            if theirs and ours and theirs != ours:
                continue
            self._merge(other, target, "identifiers matched")
        self._attach(target, keys, at)
        return target

    def alias(self, previous_id: str, user_id: str, at: datetime) -> uuid.UUID:
        """Merge whatever ``previous_id`` named (anonymous or an old user id) into ``user_id``."""
        target = self.resolve(Identifiers(user_id=user_id), at)
        for kind in ("user_id", "anonymous_id"):
            key = (kind, self._digest(kind, previous_id))
            self._fetch([key])
            owner = self._owner.get(key)
            if owner is not None and owner != target:
                self._merge(owner, target, "alias")
        digest = self._digest("anonymous_id", previous_id)
        self._attach(target, [("anonymous_id", previous_id, digest)], at)
        return target

    def _create(self, shop_id: str | None, at: datetime) -> uuid.UUID:
        customer_id = new_id()
        self._new_customers[customer_id] = {
            "workspace_id": self._scope.workspace_id,
            "customer_id": customer_id,
            "shop_customer_id": shop_id,
            "attributes": {},
            "first_seen_at": at,
            "last_seen_at": at,
            "updated_at": self._scope.now,
        }
        self._shop_id[customer_id] = shop_id
        return customer_id

    def _attach(
        self, customer_id: uuid.UUID, keys: list[tuple[str, str, bytes]], at: datetime
    ) -> None:
        for kind, value, digest in keys:
            if (kind, digest) in self._owner:
                continue
            self._owner[(kind, digest)] = customer_id
            self._new_identities.append(
                {
                    "workspace_id": self._scope.workspace_id,
                    "kind": kind,
                    "value_hash": digest,
                    "customer_id": customer_id,
                    "value_enc": self._scope.cipher.encrypt(value),
                    "first_seen_at": at,
                    "last_seen_at": at,
                }
            )
            if kind == "user_id" and not self._shop_id.get(customer_id):
                self._shop_id[customer_id] = value
                if customer_id in self._new_customers:
                    self._new_customers[customer_id]["shop_customer_id"] = value
                else:
                    self._shop_id_updates[customer_id] = value
        previous = self._seen.get(customer_id)
        self._seen[customer_id] = at if previous is None or at > previous else previous

    def _merge(self, loser: uuid.UUID, winner: uuid.UUID, reason: str) -> None:
        self.flush()
        self._lock_for_merge(loser, winner)
        merge_customers(self._scope, loser, winner, reason)
        self.merges += 1
        for key, owner in list(self._owner.items()):
            if owner == loser:
                self._owner[key] = winner
        if not self._shop_id.get(winner):
            self._shop_id[winner] = self._shop_id.get(loser)
        self._seen.pop(loser, None)

    def _lock_for_merge(self, loser: uuid.UUID, winner: uuid.UUID) -> None:
        """PostgreSQL: lock both customers before moving rows; neither may be merged already."""
        if self._scope.conn.dialect.name != "postgresql":
            return  # SQLite has one writer at a time
        query = (
            sa.select(customers.c.customer_id, customers.c.merged_into)
            .where(customers.c.workspace_id == self._scope.workspace_id)
            .where(customers.c.customer_id.in_([loser, winner]))
            .order_by(customers.c.customer_id)
            .with_for_update(key_share=True)
        )
        if any(row.merged_into is not None for row in self._scope.conn.execute(query)):
            raise ConcurrentChangeError("a customer to merge was merged by another transaction")

    def flush(self) -> None:
        """Write buffered customers, identities and last-seen times, each sorted by key."""
        conn = self._scope.conn
        if self._new_customers:
            conn.execute(
                customers.insert(), [self._new_customers[c] for c in sorted(self._new_customers)]
            )
            # A new record can enter segments no event names ("never ordered").
            enqueue_changes(self._scope, dict.fromkeys(self._new_customers, (CUSTOMER_CHANGED,)))
            self._new_customers.clear()
        if self._new_identities:
            self._new_identities.sort(key=lambda r: (r["kind"], r["value_hash"]))
            conn.execute(identities.insert(), self._new_identities)
            self._new_identities.clear()
        if self._shop_id_updates:
            conn.execute(
                customers.update()
                .where(customers.c.workspace_id == self._scope.workspace_id)
                .where(customers.c.customer_id == sa.bindparam("cid"))
                .values(shop_customer_id=sa.bindparam("sid")),
                [{"cid": c, "sid": s} for c, s in sorted(self._shop_id_updates.items())],
            )
            self._shop_id_updates.clear()
        if self._seen:
            self._flush_seen()

    def _flush_seen(self) -> None:
        """Move last/first-seen times; a customer merged meanwhile is a ConcurrentChangeError."""
        seen_at = sa.bindparam("at", type_=customers.c.last_seen_at.type)
        stmt = (
            customers.update()
            .where(customers.c.workspace_id == self._scope.workspace_id)
            .where(customers.c.customer_id == sa.bindparam("cid"))
            .where(customers.c.merged_into.is_(None))
            .values(
                last_seen_at=sa.case(
                    (customers.c.last_seen_at < seen_at, seen_at), else_=customers.c.last_seen_at
                ),
                first_seen_at=sa.case(
                    (customers.c.first_seen_at > seen_at, seen_at), else_=customers.c.first_seen_at
                ),
            )
        )
        params = [{"cid": c, "at": at} for c, at in sorted(self._seen.items())]
        result = self._scope.conn.execute(stmt, params)
        self._seen.clear()
        if self._scope.conn.dialect.name == "postgresql" and result.rowcount != len(params):
            raise ConcurrentChangeError("a customer was merged by another transaction")
