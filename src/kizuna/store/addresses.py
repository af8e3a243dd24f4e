"""Where each customer is reached on each channel, decrypted for the send pipeline only."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa

from kizuna.store.scope import Scope
from kizuna.store.tables import customers, identities

__all__ = ["Address", "drop_identity", "load_addresses"]

# Channels whose address is an identity; the newest one seen wins (the device in use).
_IDENTITY_KIND = {"line": "line_user_id", "push": "device_token"}


@dataclass(frozen=True, slots=True)
class Address:
    """One customer's address on one channel, with its lookup hash (suppression key)."""

    value: str
    hash: bytes


def load_addresses(
    scope: Scope, channel: str, customer_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Address]:
    """The address of each customer that has one on ``channel`` (email, sms, line, push)."""
    if not customer_ids:
        return {}
    ids = list(set(customer_ids))
    if channel in ("email", "sms"):
        enc, hashed = (
            (customers.c.email_enc, customers.c.email_hash)
            if channel == "email"
            else (customers.c.phone_enc, customers.c.phone_hash)
        )
        rows = scope.conn.execute(
            sa.select(customers.c.customer_id, enc, hashed).where(
                customers.c.workspace_id == scope.workspace_id,
                customers.c.customer_id.in_(ids),
                enc.is_not(None),
            )
        ).all()
        return {cid: Address(scope.cipher.decrypt(e), h) for cid, e, h in rows}
    kind = _IDENTITY_KIND.get(channel)
    if kind is None:
        return {}
    rows = scope.conn.execute(
        sa.select(identities.c.customer_id, identities.c.value_enc, identities.c.value_hash)
        .where(
            identities.c.workspace_id == scope.workspace_id,
            identities.c.kind == kind,
            identities.c.customer_id.in_(ids),
        )
        .order_by(identities.c.last_seen_at)  # later rows overwrite: the newest wins
    ).all()
    return {cid: Address(scope.cipher.decrypt(e), h) for cid, e, h in rows}


def drop_identity(scope: Scope, channel: str, hashed: bytes) -> int:
    """Forget a dead LINE id or device token (the provider said it no longer exists)."""
    kind = _IDENTITY_KIND.get(channel)
    if kind is None:
        return 0
    result = scope.conn.execute(
        identities.delete().where(
            identities.c.workspace_id == scope.workspace_id,
            identities.c.kind == kind,
            identities.c.value_hash == hashed,
        )
    )
    return result.rowcount
