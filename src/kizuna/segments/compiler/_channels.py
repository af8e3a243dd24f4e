"""Consent and reachability per channel.

Email and SMS reach the profile's own address (``email_hash`` / ``phone_hash``);
LINE and app push reach any of the customer's LINE ids / device tokens. An address
is suppressed when its hash is on the channel's suppression list (hard bounce,
complaint, blacklist). *Reachable* = opted in and at least one unsuppressed address.

A state is read from four facts per channel (:func:`_state`). A condition probes the
facts it needs per customer (``EXISTS``); :func:`reach_counts` joins them once for
every matched customer, so a count of a large segment is a few hash joins rather
than twenty probes per member.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from kizuna.segments.compiler._context import Builder
from kizuna.segments.definition import ChannelState
from kizuna.store.tables import consents, customers, identities, suppressions

__all__ = ["CHANNELS", "STATES", "channel_state", "compile_channel", "reach_counts"]

CHANNELS = ("email", "line", "sms", "push")
STATES = ("opted_in", "opted_out", "has_address", "suppressed", "reachable")
_PROFILE_ADDRESS = {"email": "email_hash", "sms": "phone_hash"}
_IDENTITY_KIND = {"line": "line_user_id", "push": "device_token"}

# A fact of one channel: opted_in, opted_out, has_address, suppressed (an address is
# suppressed), unsuppressed (an address is not).
Fact = Callable[[str], sa.ColumnElement[bool]]


def _state(state: str, fact: Fact) -> sa.ColumnElement[bool]:
    if state == "reachable":
        return sa.and_(fact("opted_in"), fact("unsuppressed"))
    return fact(state)


def compile_channel(node: ChannelState, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """The customer is in ``node.state`` on ``node.channel``."""
    return channel_state(b, node.channel, node.state)


def channel_state(b: Builder, channel: str, state: str) -> sa.ColumnElement[bool]:
    """One channel state of the customers row as a boolean expression (facts probed)."""
    return _state(state, lambda fact: _probed(b, channel, fact))


def _probed(b: Builder, channel: str, fact: str) -> sa.ColumnElement[bool]:
    if fact in ("opted_in", "opted_out"):
        c = consents.c
        return b.probe(consents, c.channel == channel, c.status == fact)
    if channel in _PROFILE_ADDRESS:
        address = customers.c[_PROFILE_ADDRESS[channel]]
        listed = _suppression_of(b, channel, address)
        return {"has_address": address.is_not(None), "suppressed": listed,
                "unsuppressed": sa.and_(address.is_not(None), sa.not_(listed))}[fact]  # fmt: skip
    i = identities.c
    tests = {"has_address": [], "suppressed": [_suppression_of(b, channel, i.value_hash)],
             "unsuppressed": [~_suppression_of(b, channel, i.value_hash)]}[fact]  # fmt: skip
    return b.probe(identities, i.kind == _IDENTITY_KIND[channel], *tests)


def _suppression_of(b: Builder, channel: str, address: Any) -> sa.ColumnElement[bool]:
    return sa.exists().where(
        suppressions.c.workspace_id == b.ctx.workspace.workspace_id,
        suppressions.c.channel == channel,
        suppressions.c.address_hash == address,
    )


def reach_counts(b: Builder, matched: sa.Select[Any]) -> sa.Select[Any]:
    """One row: ``customers`` in ``matched`` and each ``{state}_{channel}`` count among them.

    ``matched`` selects ``customer_id``, ``email_hash`` and ``phone_hash``; the facts are
    LEFT JOINed to it on unique keys (or per customer aggregates), so no row repeats.
    """
    m = matched.cte("matched")
    said = _consent_columns(b, m)
    held = _identity_columns(b, m)
    source = m.outerjoin(said, said.c.customer_id == m.c.customer_id).outerjoin(
        held, held.c.customer_id == m.c.customer_id
    )
    columns: list[Any] = [sa.func.count().label("customers")]
    for channel in CHANNELS:
        if channel in _PROFILE_ADDRESS:
            listed = suppressions.alias(f"suppressed_{channel}")
            address = m.c[_PROFILE_ADDRESS[channel]]
            on = sa.and_(listed.c.workspace_id == b.ctx.workspace.workspace_id,
                         listed.c.channel == channel, listed.c.address_hash == address)  # fmt: skip
            source = source.outerjoin(listed, on)
            facts = _profile_facts(said.c[channel], address, listed.c.address_hash.is_not(None))
        else:
            facts = _identity_facts(said.c[channel], held, channel)
        for state in STATES:
            test = _state(state, facts)
            columns.append(sa.func.coalesce(sa.func.sum(sa.case((test, 1), else_=0)), 0)
                           .label(f"{state}_{channel}"))  # fmt: skip
    return sa.select(*columns).select_from(source)


def _profile_facts(status: Any, address: Any, listed: sa.ColumnElement[bool]) -> Fact:
    facts = {"opted_in": status == "opted_in", "opted_out": status == "opted_out",
             "has_address": address.is_not(None), "suppressed": listed,
             "unsuppressed": sa.and_(address.is_not(None), sa.not_(listed))}  # fmt: skip
    return lambda fact: sa.func.coalesce(facts[fact], sa.false())


def _identity_facts(status: Any, held: sa.Subquery, channel: str) -> Fact:
    facts = {"opted_in": status == "opted_in", "opted_out": status == "opted_out",
             "has_address": held.c[f"{channel}_has_address"] == 1,
             "suppressed": held.c[f"{channel}_suppressed"] == 1,
             "unsuppressed": held.c[f"{channel}_unsuppressed"] == 1}  # fmt: skip
    return lambda fact: sa.func.coalesce(facts[fact], sa.false())


# The fact subqueries are joined from the matched rows (not filtered with IN): the
# planner then sizes them from the join, and picks index probes for a small segment
# and hash joins for a large one.


def _consent_columns(b: Builder, m: sa.CTE) -> sa.Subquery:
    """Per matched customer with any consent: the status on each channel (NULL: none)."""
    c = consents.c
    on = sa.and_(*b.scoped(consents), c.customer_id == m.c.customer_id, c.channel.in_(CHANNELS))
    statuses = [sa.func.max(sa.case((c.channel == ch, c.status))).label(ch) for ch in CHANNELS]
    return (
        sa.select(m.c.customer_id, *statuses)
        .select_from(m.join(consents, on))
        .group_by(m.c.customer_id)
        .subquery("consent_facts")
    )


def _identity_columns(b: Builder, m: sa.CTE) -> sa.Subquery:
    """Per matched customer with a LINE id or device token: which address facts hold."""
    i = identities.c
    mine = sa.and_(*b.scoped(identities), i.customer_id == m.c.customer_id,
                   i.kind.in_(list(_IDENTITY_KIND.values())))  # fmt: skip
    listed = suppressions.alias("listed")
    channel_of = sa.case(*((i.kind == kind, channel) for channel, kind in _IDENTITY_KIND.items()))
    on = sa.and_(listed.c.workspace_id == b.ctx.workspace.workspace_id,
                 listed.c.channel == channel_of, listed.c.address_hash == i.value_hash)  # fmt: skip
    is_listed = listed.c.address_hash.is_not(None)
    columns = []
    for channel, kind in _IDENTITY_KIND.items():
        for fact, test in (("has_address", sa.true()), ("suppressed", is_listed),
                           ("unsuppressed", sa.not_(is_listed))):  # fmt: skip
            hit = sa.case((sa.and_(i.kind == kind, test), 1), else_=0)
            columns.append(sa.func.max(hit).label(f"{channel}_{fact}"))
    return (
        sa.select(m.c.customer_id, *columns)
        .select_from(m.join(identities, mine).outerjoin(listed, on))
        .group_by(m.c.customer_id)
        .subquery("address_facts")
    )
