"""Consent and reachability per channel.

Email and SMS reach the profile's own address (``email_hash`` / ``phone_hash``);
LINE and app push reach any of the customer's LINE ids / device tokens. An address
is suppressed when its hash is on the channel's suppression list (hard bounce,
complaint, blacklist). *Reachable* = opted in and at least one unsuppressed address.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from kizuna.segments.compiler._context import Builder
from kizuna.segments.definition import ChannelState
from kizuna.store.tables import consents, customers, identities, suppressions

__all__ = ["CHANNELS", "STATES", "channel_state", "compile_channel"]

CHANNELS = ("email", "line", "sms", "push")
STATES = ("opted_in", "opted_out", "has_address", "suppressed", "reachable")
_PROFILE_ADDRESS = {"email": "email_hash", "sms": "phone_hash"}
_IDENTITY_KIND = {"line": "line_user_id", "push": "device_token"}


def compile_channel(node: ChannelState, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """The customer is in ``node.state`` on ``node.channel``."""
    return channel_state(b, node.channel, node.state)


def channel_state(b: Builder, channel: str, state: str) -> sa.ColumnElement[bool]:
    """One channel state of the customers row as a boolean expression."""
    if state in ("opted_in", "opted_out"):
        return _consent(b, channel, state)
    if state == "has_address":
        return _addressed(b, channel, unsuppressed=False)
    if state == "suppressed":
        return _suppressed(b, channel)
    return sa.and_(_consent(b, channel, "opted_in"), _addressed(b, channel, unsuppressed=True))


def _present(sub: sa.Subquery) -> sa.ColumnElement[bool]:
    return sub.c.customer_id.is_not(None)


def _consent(b: Builder, channel: str, status: str) -> sa.ColumnElement[bool]:
    query = sa.select(consents.c.customer_id).where(
        *b.scoped(consents), consents.c.channel == channel, consents.c.status == status
    )
    return _present(b.join(query, f"consent_{channel}"))


def _suppression_of(b: Builder, channel: str, address: Any) -> sa.ColumnElement[bool]:
    return sa.and_(
        suppressions.c.workspace_id == b.ctx.workspace.workspace_id,
        suppressions.c.channel == channel,
        suppressions.c.address_hash == address,
    )


def _addressed(b: Builder, channel: str, *, unsuppressed: bool) -> sa.ColumnElement[bool]:
    if channel in _PROFILE_ADDRESS:
        address = customers.c[_PROFILE_ADDRESS[channel]]
        if not unsuppressed:
            return address.is_not(None)
        return sa.and_(address.is_not(None), sa.not_(_suppressed(b, channel)))
    i = identities.c
    query = sa.select(i.customer_id).where(*b.scoped(identities), i.kind == _IDENTITY_KIND[channel])
    if unsuppressed:
        query = query.where(~sa.exists().where(_suppression_of(b, channel, i.value_hash)))
    return _present(b.join(query.distinct(), f"address_{channel}"))


def _suppressed(b: Builder, channel: str) -> sa.ColumnElement[bool]:
    if channel in _PROFILE_ADDRESS:
        # Driven from the (short) suppression list through the profile's address index.
        owner = customers.alias("owner")
        address = owner.c[_PROFILE_ADDRESS[channel]]
        query = (
            sa.select(owner.c.customer_id)
            .select_from(suppressions.join(owner, _suppression_of(b, channel, address)))
            .where(*b.scoped(owner), owner.c.workspace_id == suppressions.c.workspace_id)
        )
    else:
        i = identities.c
        query = (
            sa.select(i.customer_id)
            .where(
                *b.scoped(identities),
                i.kind == _IDENTITY_KIND[channel],
                sa.exists().where(_suppression_of(b, channel, i.value_hash)),
            )
            .distinct()
        )
    return _present(b.join(query, f"suppressed_{channel}"))
