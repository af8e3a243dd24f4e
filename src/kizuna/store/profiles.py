"""Reading a customer's profile and timeline; the only place profiles are decrypted."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.domain.normalize import normalize_email, normalize_phone
from kizuna.errors import InvalidInput, NotFound
from kizuna.security.pii import PiiCipher
from kizuna.store.customers import PII_TRAITS
from kizuna.store.tables import consent_events, consents, customers, events, identities, orders

__all__ = ["Profile", "TimelineEntry", "find_customer_id", "read_profile", "read_timeline"]


@dataclass(frozen=True, slots=True)
class Profile:
    """A customer as the marketer sees them, personal fields decrypted."""

    customer_id: uuid.UUID
    shop_customer_id: str | None
    traits: dict[str, Any]
    attributes: dict[str, Any]
    identities: dict[str, list[str]]
    consents: dict[str, dict[str, Any]]
    first_seen_at: datetime
    last_seen_at: datetime
    order_count: int = 0
    revenue: float = 0.0
    merged_from: list[uuid.UUID] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing that happened to a customer: an event, an order or a consent change."""

    at: datetime
    kind: str  # event | order | consent
    title: str
    detail: dict[str, Any]


def _live(conn: Connection, workspace_id: uuid.UUID, customer_id: uuid.UUID) -> uuid.UUID:
    row = conn.execute(
        sa.select(customers.c.merged_into).where(
            customers.c.workspace_id == workspace_id, customers.c.customer_id == customer_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no customer {customer_id}")
    return row.merged_into or customer_id


def find_customer_id(
    conn: Connection, cipher: PiiCipher, workspace_id: uuid.UUID, ref: str
) -> uuid.UUID:
    """Resolve a reference (Kizuna id, shop customer id, email or phone) to a live customer id."""
    ref = ref.strip()
    try:
        return _live(conn, workspace_id, uuid.UUID(ref))
    except ValueError:
        pass
    candidates = [("user_id", ref)]
    if "@" in ref:
        candidates.append(("email", normalize_email(ref, "customer")))
    else:
        with contextlib.suppress(InvalidInput):
            candidates.append(("phone", normalize_phone(ref, "customer")))
    for kind, value in candidates:
        owner = conn.execute(
            sa.select(identities.c.customer_id).where(
                identities.c.workspace_id == workspace_id,
                identities.c.kind == kind,
                identities.c.value_hash == cipher.lookup_hash(kind, value),
            )
        ).scalar()
        if owner is not None:
            return _live(conn, workspace_id, owner)
    raise NotFound(f"no customer matches {ref!r}")


def read_profile(
    conn: Connection, cipher: PiiCipher, workspace_id: uuid.UUID, customer_id: uuid.UUID
) -> Profile:
    """The decrypted profile of a live customer; raises NotFound."""
    customer_id = _live(conn, workspace_id, customer_id)
    row = (
        conn.execute(
            sa.select(customers).where(
                customers.c.workspace_id == workspace_id, customers.c.customer_id == customer_id
            )
        )
        .one()
        ._mapping
    )
    traits: dict[str, Any] = {
        name: cipher.decrypt_optional(row[column]) for name, column in PII_TRAITS.items()
    }
    for name in ("gender", "prefecture", "city", "membership_rank", "registered_at"):
        traits[name] = row[name]
    totals = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(orders.c.total), 0.0)).where(
            orders.c.workspace_id == workspace_id,
            orders.c.customer_id == customer_id,
            orders.c.status == "placed",
        )
    ).one()
    return Profile(
        customer_id=customer_id,
        shop_customer_id=row["shop_customer_id"],
        traits=traits,
        attributes=dict(row["attributes"] or {}),
        identities=_identities(conn, cipher, workspace_id, customer_id),
        consents=_consents(conn, workspace_id, customer_id),
        first_seen_at=row["first_seen_at"],
        last_seen_at=row["last_seen_at"],
        order_count=int(totals[0]),
        revenue=float(totals[1]),
        merged_from=list(
            conn.execute(
                sa.select(customers.c.customer_id).where(
                    customers.c.workspace_id == workspace_id,
                    customers.c.merged_into == customer_id,
                )
            ).scalars()
        ),
    )


def _identities(
    conn: Connection, cipher: PiiCipher, workspace_id: uuid.UUID, customer_id: uuid.UUID
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for kind, value_enc in conn.execute(
        sa.select(identities.c.kind, identities.c.value_enc)
        .where(identities.c.workspace_id == workspace_id, identities.c.customer_id == customer_id)
        .order_by(identities.c.kind, identities.c.first_seen_at)
    ):
        found.setdefault(kind, []).append(cipher.decrypt(value_enc))
    return found


def _consents(
    conn: Connection, workspace_id: uuid.UUID, customer_id: uuid.UUID
) -> dict[str, dict[str, Any]]:
    return {
        r.channel: {"status": r.status, "changed_at": r.changed_at}
        for r in conn.execute(
            sa.select(consents).where(
                consents.c.workspace_id == workspace_id, consents.c.customer_id == customer_id
            )
        )
    }


def read_timeline(
    conn: Connection, workspace_id: uuid.UUID, customer_id: uuid.UUID, limit: int = 100
) -> list[TimelineEntry]:
    """Events, orders and consent changes of a customer, newest first."""
    customer_id = _live(conn, workspace_id, customer_id)
    owned = {"workspace_id": workspace_id, "customer_id": customer_id}
    entries = [
        TimelineEntry(
            r.occurred_at,
            "event",
            r.name or r.type,
            {"type": r.type, "properties": r.properties, "message_id": r.message_id},
        )
        for r in conn.execute(
            sa.select(events).filter_by(**owned).order_by(events.c.occurred_at.desc()).limit(limit)
        )
    ]
    entries += [
        TimelineEntry(
            r.ordered_at,
            "order",
            f"Order {r.order_id}",
            {
                "order_id": r.order_id,
                "total": r.total,
                "status": r.status,
                "channel": r.channel,
                "currency": r.currency,
            },
        )
        for r in conn.execute(
            sa.select(orders).filter_by(**owned).order_by(orders.c.ordered_at.desc()).limit(limit)
        )
    ]
    entries += [
        TimelineEntry(
            r.occurred_at,
            "consent",
            f"{r.channel} {r.status}",
            {
                "channel": r.channel,
                "status": r.status,
                "method": r.method,
                "source": r.source,
                "wording": r.wording,
            },
        )
        for r in conn.execute(
            sa.select(consent_events)
            .filter_by(**owned)
            .order_by(consent_events.c.occurred_at.desc())
            .limit(limit)
        )
    ]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]
