"""Store side of data-subject requests: the request record and the reads that decrypt.

Everything here is scoped to one workspace (``Scope``) and to one customer
group: a live customer plus the tombstones of records merged into it. Personal
values are decrypted only here; the privacy services above receive plain values.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.store.customers import PII_TRAITS
from kizuna.store.scope import Scope
from kizuna.store.tables import customers, identities
from kizuna.store.tables_privacy import privacy_requests

__all__ = [
    "ADDRESS_KINDS",
    "PrivacyRequest",
    "address_hashes",
    "addresses_of",
    "channel_addresses",
    "customer_group",
    "decrypted_identities",
    "erased_customers",
    "is_erased",
    "known_values",
    "list_requests",
    "record_request",
]

# Channel -> the identity kind its address is stored as (and the lookup hash's kind).
ADDRESS_KINDS = {
    "email": "email",
    "sms": "phone",
    "phone": "phone",
    "line": "line_user_id",
    "push": "device_token",
}
_PROFILE_ADDRESS = {"email": ("email_enc", "email_hash"), "phone": ("phone_enc", "phone_hash")}


@dataclass(frozen=True, slots=True)
class PrivacyRequest:
    """One data-subject request as recorded (no personal data in it)."""

    request_id: uuid.UUID
    customer_id: uuid.UUID | None
    kind: str
    requested_by: str
    origin: str | None
    status: str
    created_at: datetime
    completed_at: datetime | None
    details: dict[str, Any]


def record_request(
    scope: Scope,
    *,
    request_id: uuid.UUID,
    customer_id: uuid.UUID | None,
    kind: str,
    requested_by: str,
    origin: str | None,
    details: dict[str, Any],
) -> PrivacyRequest:
    """Write a completed request (received and carried out in the same transaction)."""
    request = PrivacyRequest(
        request_id, customer_id, kind, requested_by, origin, "completed", scope.now, scope.now,
        details,
    )  # fmt: skip
    row = {f: getattr(request, f) for f in PrivacyRequest.__slots__}
    scope.conn.execute(privacy_requests.insert().values(workspace_id=scope.workspace_id, **row))
    return request


def list_requests(
    scope: Scope,
    *,
    customer_id: uuid.UUID | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[PrivacyRequest]:
    """The workspace's requests, newest first, optionally of one customer or kind."""
    r = privacy_requests.c
    query = sa.select(privacy_requests).where(r.workspace_id == scope.workspace_id)
    if customer_id is not None:
        query = query.where(r.customer_id == customer_id)
    if kind is not None:
        query = query.where(r.kind == kind)
    rows = scope.conn.execute(query.order_by(r.created_at.desc(), r.request_id.desc()).limit(limit))
    fields = PrivacyRequest.__slots__
    return [PrivacyRequest(**{f: row._mapping[f] for f in fields}) for row in rows]


def erased_customers(workspace_id: uuid.UUID) -> sa.Select[Any]:
    """A select of the ids of erased customers (for ``IN`` and ``EXISTS`` tests)."""
    r = privacy_requests.c
    return sa.select(r.customer_id).where(
        r.workspace_id == workspace_id, r.kind == "erase", r.status == "completed"
    )


def is_erased(scope: Scope, customer_id: uuid.UUID) -> bool:
    """Whether the customer's personal data was erased by a request."""
    query = erased_customers(scope.workspace_id).where(
        privacy_requests.c.customer_id == customer_id
    )
    return scope.conn.execute(query.limit(1)).first() is not None


def customer_group(scope: Scope, customer_id: uuid.UUID) -> list[uuid.UUID]:
    """The live customer first, then every record merged into it (tombstones)."""
    merged = scope.conn.execute(
        sa.select(customers.c.customer_id)
        .where(customers.c.workspace_id == scope.workspace_id)
        .where(customers.c.merged_into == customer_id)
        .order_by(customers.c.customer_id)
    ).scalars()
    return [customer_id, *merged]


def decrypted_identities(scope: Scope, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    """The customer's identifiers in clear, with when each was first and last seen."""
    i = identities.c
    rows = scope.conn.execute(
        sa.select(i.kind, i.value_enc, i.first_seen_at, i.last_seen_at)
        .where(i.workspace_id == scope.workspace_id, i.customer_id == customer_id)
        .order_by(i.kind, i.first_seen_at)
    )
    return [
        {
            "kind": r.kind,
            "value": scope.cipher.decrypt(r.value_enc),
            "first_seen_at": r.first_seen_at,
            "last_seen_at": r.last_seen_at,
        }
        for r in rows
    ]


def known_values(scope: Scope, group: Collection[uuid.UUID]) -> set[str]:
    """Every personal value stored for these customers, in clear (profile and identifiers)."""
    found: set[str] = set()
    columns = [customers.c[column] for column in PII_TRAITS.values()]
    for row in scope.conn.execute(
        sa.select(*columns).where(
            customers.c.workspace_id == scope.workspace_id, customers.c.customer_id.in_(group)
        )
    ):
        found.update(scope.cipher.decrypt(value) for value in row if value is not None)
    for (value_enc,) in scope.conn.execute(
        sa.select(identities.c.value_enc).where(
            identities.c.workspace_id == scope.workspace_id, identities.c.customer_id.in_(group)
        )
    ):
        found.add(scope.cipher.decrypt(value_enc))
    return found


def _identity_rows(scope: Scope, group: Collection[uuid.UUID]) -> list[Any]:
    i = identities.c
    return list(
        scope.conn.execute(
            sa.select(i.kind, i.value_hash, i.value_enc)
            .where(i.workspace_id == scope.workspace_id, i.customer_id.in_(group))
            .order_by(i.last_seen_at.desc())  # the newest address of a kind comes first
        )
    )


def _profile_rows(scope: Scope, group: Collection[uuid.UUID]) -> list[Any]:
    c = customers.c
    return list(
        scope.conn.execute(
            sa.select(c.email_enc, c.email_hash, c.phone_enc, c.phone_hash).where(
                c.workspace_id == scope.workspace_id, c.customer_id.in_(group)
            )
        )
    )


def address_hashes(scope: Scope, group: Collection[uuid.UUID]) -> dict[str, set[bytes]]:
    """Channel -> lookup hashes of every address these customers have on it."""
    by_kind: dict[str, set[bytes]] = {}
    for row in _identity_rows(scope, group):
        by_kind.setdefault(row.kind, set()).add(bytes(row.value_hash))
    for row in _profile_rows(scope, group):
        for kind, (_, hashed) in _PROFILE_ADDRESS.items():
            if row._mapping[hashed] is not None:
                by_kind.setdefault(kind, set()).add(bytes(row._mapping[hashed]))
    return {channel: by_kind[kind] for channel, kind in ADDRESS_KINDS.items() if by_kind.get(kind)}


def channel_addresses(scope: Scope, customer_id: uuid.UUID) -> dict[str, str]:
    """Channel -> the address a decision on that channel covers: the profile's, else the newest."""
    clear: dict[str, str] = {}
    for row in _profile_rows(scope, [customer_id]):
        for kind, (enc, _) in _PROFILE_ADDRESS.items():
            if row._mapping[enc] is not None:
                clear[kind] = scope.cipher.decrypt(row._mapping[enc])
    for row in _identity_rows(scope, [customer_id]):
        clear.setdefault(row.kind, scope.cipher.decrypt(row.value_enc))
    return {channel: clear[kind] for channel, kind in ADDRESS_KINDS.items() if kind in clear}


def addresses_of(scope: Scope, hashes: Iterable[bytes]) -> dict[bytes, str]:
    """Lookup hash -> the address in clear, for the hashes still held by a customer or identity."""
    wanted = list({bytes(h) for h in hashes})
    if not wanted:
        return {}
    i, c = identities.c, customers.c
    kinds = sorted(set(ADDRESS_KINDS.values()))  # lets the identities' primary key serve
    found = {
        bytes(h): scope.cipher.decrypt(enc)
        for h, enc in scope.conn.execute(
            sa.select(i.value_hash, i.value_enc).where(
                i.workspace_id == scope.workspace_id, i.kind.in_(kinds), i.value_hash.in_(wanted)
            )
        )
    }
    for enc, hashed in _PROFILE_ADDRESS.values():
        missing = [h for h in wanted if h not in found]
        if not missing:
            break
        for h, value in scope.conn.execute(
            sa.select(c[hashed], c[enc]).where(
                c.workspace_id == scope.workspace_id, c[hashed].in_(missing), c[enc].is_not(None)
            )
        ):
            found.setdefault(bytes(h), scope.cipher.decrypt(value))
    return found
