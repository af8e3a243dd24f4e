"""Consent per channel with its evidence and history, and suppression lists."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from kizuna.domain.normalize import normalize_email, normalize_phone
from kizuna.domain.records import Channel, ConsentRecord, SuppressionRecord
from kizuna.security.pii import PiiCipher
from kizuna.store.identity import IdentityResolver
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import address_owners, enqueue_changes
from kizuna.store.tables import consent_events, consents, suppressions
from kizuna.store.upsert import insert_ignoring, upsert

__all__ = ["address_hash", "record_consents", "suppress", "suppress_hashes"]

_CONSENT_NS = uuid.UUID("6f1f7f55-5e1b-4b7e-9a51-2f4c8e0c7d11")


def address_hash(cipher: PiiCipher, channel: Channel, address: str) -> bytes:
    """The lookup hash of a channel address, normalized as its identity would be."""
    if channel is Channel.EMAIL:
        return cipher.lookup_hash("email", normalize_email(address))
    if channel in (Channel.SMS, Channel.PHONE):
        return cipher.lookup_hash("phone", normalize_phone(address))
    kind = {Channel.LINE: "line_user_id", Channel.PUSH: "device_token"}.get(channel, channel.value)
    return cipher.lookup_hash(kind, address.strip())


def record_consents(
    scope: Scope, resolver: IdentityResolver, records: Sequence[ConsentRecord]
) -> int:
    """Append consent evidence and move each channel's status to the latest decision.

    Evidence rows are keyed by their content, so re-importing the same file adds
    nothing. Returns how many new evidence rows were written.
    """
    if not records:
        return 0
    resolver.prefetch(r.customer for r in records)
    history: list[dict[str, Any]] = []
    latest: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
    for r in records:
        customer_id = resolver.resolve(r.customer, r.occurred_at)
        fingerprint = f"{customer_id}|{r.channel}|{r.status}|{r.occurred_at.isoformat()}|{r.source}"
        history.append(
            {
                "workspace_id": scope.workspace_id,
                "customer_id": customer_id,
                "consent_event_id": uuid.uuid5(_CONSENT_NS, fingerprint),
                "channel": r.channel.value,
                "status": r.status.value,
                "occurred_at": r.occurred_at,
                "method": r.method,
                "wording": r.wording,
                "source": r.source,
                "ip": r.ip,
                "address_hash": address_hash(scope.cipher, r.channel, r.address)
                if r.address
                else None,
                "recorded_at": scope.now,
            }
        )
        key = (customer_id, r.channel.value)
        if key not in latest or latest[key]["changed_at"] <= r.occurred_at:
            latest[key] = {
                "workspace_id": scope.workspace_id,
                "customer_id": customer_id,
                "channel": r.channel.value,
                "status": r.status.value,
                "changed_at": r.occurred_at,
                "updated_at": scope.now,
            }
    resolver.flush()
    written = insert_ignoring(
        scope.conn,
        consent_events,
        history,
        ["workspace_id", "customer_id", "consent_event_id"],
        consent_events.c.consent_event_id,
    )
    _keep_latest(scope, list(latest.values()))
    enqueue_changes(scope, {customer_id: ("consent",) for customer_id, _ in latest})
    return len(written)


def _keep_latest(scope: Scope, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    current = {
        (r.customer_id, r.channel): r.changed_at
        for r in scope.conn.execute(
            sa.select(consents.c.customer_id, consents.c.channel, consents.c.changed_at).where(
                consents.c.workspace_id == scope.workspace_id,
                consents.c.customer_id.in_({r["customer_id"] for r in rows}),
            )
        )
    }
    newer = [
        r
        for r in rows
        if (r["customer_id"], r["channel"]) not in current
        or current[(r["customer_id"], r["channel"])] <= r["changed_at"]
    ]
    upsert(scope.conn, consents, newer, ["workspace_id", "customer_id", "channel"])


def suppress(
    scope: Scope, records: Sequence[SuppressionRecord], customer_id: uuid.UUID | None = None
) -> None:
    """Put addresses on the suppression list (the latest reason wins)."""
    for r in records:
        hashed = address_hash(scope.cipher, r.channel, r.address)
        suppress_hashes(scope, r.channel.value, [hashed], r.reason.value, r.note, customer_id)


def suppress_hashes(
    scope: Scope,
    channel: str,
    hashes: Sequence[bytes],
    reason: str,
    note: str | None = None,
    customer_id: uuid.UUID | None = None,
) -> None:
    """Suppress addresses known only by their lookup hash (bounces, dead numbers)."""
    rows = [
        {
            "workspace_id": scope.workspace_id, "channel": channel, "address_hash": h,
            "reason": reason, "customer_id": customer_id, "note": note, "created_at": scope.now,
        }
        for h in hashes
    ]  # fmt: skip
    upsert(scope.conn, suppressions, rows, ["workspace_id", "channel", "address_hash"],
           keep=["created_at"])  # fmt: skip
    owners = address_owners(scope, hashes)
    if customer_id is not None:
        owners.add(customer_id)
    enqueue_changes(scope, dict.fromkeys(owners, ("consent",)))
