"""Seed addresses: where test sends go, and all a development workspace may deliver to."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from kizuna.domain.records import Channel
from kizuna.store.consent import address_hash
from kizuna.store.scope import Scope
from kizuna.store.tables import seed_addresses
from kizuna.store.upsert import upsert

__all__ = ["SeedAddress", "add_seed_address", "is_seed_address", "list_seed_addresses"]


@dataclass(frozen=True, slots=True)
class SeedAddress:
    """A test recipient, decrypted."""

    channel: str
    address: str
    label: str | None
    hash: bytes


def add_seed_address(scope: Scope, channel: str, address: str, label: str | None = None) -> None:
    """Add (or relabel) a test recipient."""
    row = {
        "workspace_id": scope.workspace_id, "channel": channel,
        "address_hash": address_hash(scope.cipher, Channel(channel), address),
        "address_enc": scope.cipher.encrypt(address.strip()), "label": label,
        "created_at": scope.now,
    }  # fmt: skip
    upsert(scope.conn, seed_addresses, [row], ["workspace_id", "channel", "address_hash"])


def list_seed_addresses(scope: Scope, channel: str | None = None) -> list[SeedAddress]:
    """Test recipients of a channel (or all), decrypted, in the order they were added."""
    query = sa.select(seed_addresses).where(seed_addresses.c.workspace_id == scope.workspace_id)
    if channel is not None:
        query = query.where(seed_addresses.c.channel == channel)
    rows = scope.conn.execute(query.order_by(seed_addresses.c.created_at))
    return [
        SeedAddress(r.channel, scope.cipher.decrypt(r.address_enc), r.label, r.address_hash)
        for r in rows
    ]


def is_seed_address(scope: Scope, channel: str, hashed: bytes) -> bool:
    """Whether an address (by its lookup hash) is a test recipient of this workspace."""
    found = scope.conn.execute(
        sa.select(sa.literal(1)).where(
            seed_addresses.c.workspace_id == scope.workspace_id,
            seed_addresses.c.channel == channel,
            seed_addresses.c.address_hash == hashed,
        )
    ).first()
    return found is not None
