"""What a customer chose in the preference centre: channel consent and topic subscriptions.

Topics are opt-out: a customer receives marketing of every topic until they
leave it, so only choices are stored (``preferences`` rows); a topic the
workspace adds later reaches everyone who is opted in on the channel. Channel
consent stays in ``consents`` with its evidence (:func:`set_channel_consents`
goes through :func:`kizuna.store.consent.record_consents`).

The send pipeline asks :func:`unsubscribed_topics` (or :func:`subscribed_topics`)
once per batch: one query for the batch's customers, never a loop over all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from kizuna.domain.records import ConsentRecord, Identifiers
from kizuna.errors import InvalidInput, NotFound, Problem
from kizuna.security.masking import mask_email, mask_phone
from kizuna.store.consent import record_consents
from kizuna.store.identity import IdentityResolver
from kizuna.store.scope import Scope
from kizuna.store.tables import consents, customers, identities, preferences
from kizuna.store.upsert import upsert

__all__ = [
    "PREFERENCE_CHANNELS",
    "ConsentEvidence",
    "CustomerPreferences",
    "live_customer_id",
    "read_preferences",
    "set_channel_consents",
    "set_preferences",
    "subscribed_topics",
    "unsubscribed_topics",
]

PREFERENCE_CHANNELS = ("email", "line", "sms", "push")  # the channels a person can choose
_IDENTITY_KIND = {"line": "line_user_id", "push": "device_token"}
_STRONGEST_FIRST = ("user_id", "email", "phone", "line_user_id", "device_token", "anonymous_id")


@dataclass(frozen=True, slots=True)
class ConsentEvidence:
    """How a consent decision was made, as the Specified Electronic Mail Act asks to keep it."""

    method: str  # "one-click unsubscribe", "unsubscribe page", "preference centre" …
    wording: str | None = None  # the text the person saw
    source: str | None = None  # e.g. "message:<id>"
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerPreferences:
    """A live customer's channels (masked addresses, consent status) and topic choices."""

    customer_id: uuid.UUID
    channels: dict[str, str | None]  # channel -> opted_in | opted_out | None (never asked)
    addresses: dict[str, str] = field(default_factory=dict)  # channel -> masked address
    left_topics: frozenset[str] = frozenset()

    def subscribed(self, topic: str) -> bool:
        """Whether the customer still receives ``topic``."""
        return topic not in self.left_topics


def live_customer_id(scope: Scope, customer_id: uuid.UUID) -> uuid.UUID:
    """The customer a (possibly merged) id now names; NotFound if there is none."""
    row = scope.conn.execute(
        sa.select(customers.c.merged_into).where(
            customers.c.workspace_id == scope.workspace_id, customers.c.customer_id == customer_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no customer {customer_id}")
    return row.merged_into or customer_id


def _customer_row(scope: Scope, customer_id: uuid.UUID) -> sa.RowMapping:
    return (
        scope.conn.execute(
            sa.select(customers.c.email_enc, customers.c.phone_enc).where(
                customers.c.workspace_id == scope.workspace_id,
                customers.c.customer_id == customer_id,
            )
        )
        .one()
        ._mapping
    )


def _consent_status(scope: Scope, customer_id: uuid.UUID) -> dict[str, str]:
    return dict(
        scope.conn.execute(
            sa.select(consents.c.channel, consents.c.status).where(
                consents.c.workspace_id == scope.workspace_id,
                consents.c.customer_id == customer_id,
            )
        ).all()
    )


def _identity_kinds(scope: Scope, customer_id: uuid.UUID) -> set[str]:
    return set(
        scope.conn.execute(
            sa.select(identities.c.kind)
            .distinct()
            .where(
                identities.c.workspace_id == scope.workspace_id,
                identities.c.customer_id == customer_id,
            )
        ).scalars()
    )


def read_preferences(scope: Scope, customer_id: uuid.UUID) -> CustomerPreferences:
    """The channels a customer can be reached on or has decided about, and their topic choices.

    Addresses come back masked: the preference centre is reached by a link, not a login.
    """
    customer_id = live_customer_id(scope, customer_id)
    row = _customer_row(scope, customer_id)
    status = _consent_status(scope, customer_id)
    kinds = _identity_kinds(scope, customer_id)
    addresses: dict[str, str] = {}
    if row["email_enc"] is not None:
        addresses["email"] = mask_email(scope.cipher.decrypt(row["email_enc"]))
    if row["phone_enc"] is not None:
        addresses["sms"] = mask_phone(scope.cipher.decrypt(row["phone_enc"]))
    reachable = set(addresses) | {c for c, kind in _IDENTITY_KIND.items() if kind in kinds}
    channels = {c: status.get(c) for c in PREFERENCE_CHANNELS if c in reachable or c in status}
    left = unsubscribed_topics(scope, [customer_id]).get(customer_id, frozenset())
    return CustomerPreferences(customer_id, channels, addresses, left)


def _identifiers(scope: Scope, customer_id: uuid.UUID) -> Identifiers:
    """One identifier that resolves to the customer, for record_consents' resolver."""
    rows = dict(
        scope.conn.execute(
            sa.select(identities.c.kind, identities.c.value_enc).where(
                identities.c.workspace_id == scope.workspace_id,
                identities.c.customer_id == customer_id,
            )
        ).all()
    )
    for kind in _STRONGEST_FIRST:
        if kind in rows:
            return Identifiers.model_validate({kind: scope.cipher.decrypt(rows[kind])})
    raise NotFound(f"customer {customer_id} has no identifier")


_ADDRESS_KIND = {"email": "email", "sms": "phone", "line": "line_user_id", "push": "device_token"}


def _address(
    scope: Scope, customer_id: uuid.UUID, channel: str, hashed: bytes | None
) -> str | None:
    """The address a channel consent covers: the one a message went to, else the profile's."""
    if hashed is not None:
        found = scope.conn.execute(
            sa.select(identities.c.value_enc).where(
                identities.c.workspace_id == scope.workspace_id,
                identities.c.kind == _ADDRESS_KIND[channel],
                identities.c.value_hash == hashed,
            )
        ).scalar()
        if found is not None:
            return scope.cipher.decrypt(found)
    column = {"email": "email_enc", "sms": "phone_enc"}.get(channel)
    if column is None:
        return None
    return scope.cipher.decrypt_optional(_customer_row(scope, customer_id)[column])


def set_channel_consents(
    scope: Scope,
    customer_id: uuid.UUID,
    choices: Mapping[str, bool],
    evidence: ConsentEvidence,
    address_hashes: Mapping[str, bytes | None] | None = None,
) -> dict[str, str]:
    """Opt a customer in or out per channel, with evidence; returns the channels that changed.

    A choice equal to the current status writes nothing (a second click on an
    unsubscribe link adds no evidence row). Takes effect for the next send.
    ``address_hashes`` names the address a channel's decision is about (the
    one a message went to); otherwise the profile's email or phone is recorded.
    """
    unknown = sorted(set(choices) - set(PREFERENCE_CHANNELS))
    if unknown:
        raise InvalidInput(Problem("unknown_channel", f"unknown channel {unknown[0]!r}", "channel"))
    customer_id = live_customer_id(scope, customer_id)
    current = _consent_status(scope, customer_id)
    wanted = {c: "opted_in" if on else "opted_out" for c, on in choices.items()}
    changed = {c: s for c, s in sorted(wanted.items()) if current.get(c) != s}
    if not changed:
        return {}
    who = _identifiers(scope, customer_id)
    records = [
        ConsentRecord(
            customer=who, channel=channel, status=status, occurred_at=scope.now,
            method=evidence.method, wording=evidence.wording, source=evidence.source,
            ip=evidence.ip,
            address=_address(scope, customer_id, channel, (address_hashes or {}).get(channel)),
        )
        for channel, status in changed.items()
    ]  # fmt: skip
    record_consents(scope, IdentityResolver(scope), records)
    return changed


def set_preferences(
    scope: Scope, customer_id: uuid.UUID, topics: Mapping[str, bool], source: str | None = None
) -> list[str]:
    """Subscribe or unsubscribe a customer per topic; returns the topics whose choice changed."""
    customer_id = live_customer_id(scope, customer_id)
    stored: dict[str, bool] = dict(
        scope.conn.execute(
            sa.select(preferences.c.topic, preferences.c.subscribed).where(
                preferences.c.workspace_id == scope.workspace_id,
                preferences.c.customer_id == customer_id,
            )
        ).all()
    )
    # A topic never chosen counts as subscribed, so subscribing it again changes nothing.
    changed = sorted(t for t, on in topics.items() if stored.get(t, True) != on)
    rows: list[dict[str, Any]] = [
        {
            "workspace_id": scope.workspace_id, "customer_id": customer_id, "topic": topic,
            "subscribed": bool(topics[topic]), "changed_at": scope.now, "source": source,
        }
        for topic in changed
    ]  # fmt: skip
    upsert(scope.conn, preferences, rows, ["workspace_id", "customer_id", "topic"])
    return changed


def unsubscribed_topics(
    scope: Scope, customer_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, frozenset[str]]:
    """The topics each customer left (customers who left none are absent); one query."""
    wanted = list(set(customer_ids))
    if not wanted:
        return {}
    left: dict[uuid.UUID, set[str]] = {}
    for customer_id, topic in scope.conn.execute(
        sa.select(preferences.c.customer_id, preferences.c.topic).where(
            preferences.c.workspace_id == scope.workspace_id,
            preferences.c.customer_id.in_(wanted),
            preferences.c.subscribed.is_(False),
        )
    ).all():
        left.setdefault(customer_id, set()).add(topic)
    return {c: frozenset(t) for c, t in left.items()}


def subscribed_topics(
    scope: Scope, customer_ids: Iterable[uuid.UUID], topics: Iterable[str]
) -> dict[uuid.UUID, frozenset[str]]:
    """Which of ``topics`` each customer still receives (every customer is in the answer)."""
    wanted = list(set(customer_ids))
    every = frozenset(topics)
    left = unsubscribed_topics(scope, wanted)
    return {c: every - left.get(c, frozenset()) for c in wanted}
