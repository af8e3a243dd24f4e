"""The consent-evidence retention report: per customer and channel, what is kept and until when.

For one address (``address=``) or the whole workspace: each line lists the
consent decisions with their evidence (when, how, wording, from where, which
address), the current consent, the last marketing send, and until when the
evidence must be kept (``None`` while the consent stands) — the same rule the
purge applies (:mod:`kizuna.privacy.retention`). Addresses and IP addresses are
masked unless ``reveal``; a revealed report is written to the operation log with
the customer ids it showed. Times are UTC; the edges show them in the
workspace's zone.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.domain.normalize import normalize_email, normalize_phone
from kizuna.errors import InvalidInput, Problem
from kizuna.privacy.requests import workspace_read
from kizuna.privacy.retention import keep_until, purgeable, retention_cutoff
from kizuna.privacy.settings import load_privacy_settings
from kizuna.security.masking import mask_email, mask_phone
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor, log_operation
from kizuna.store.privacy import addresses_of, erased_customers
from kizuna.store.scope import Scope
from kizuna.store.tables import consent_events, consents, customers, identities, messages

__all__ = ["Evidence", "RetentionLine", "RetentionReport", "retention_report"]

MAX_LINES = 1000
_NOT_RECORDED = "(not recorded)"
_GONE = "(no longer held)"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One consent decision and how it was made."""

    consent_event_id: uuid.UUID
    status: str
    occurred_at: datetime
    method: str | None
    wording: str | None
    source: str | None
    ip: str | None
    address: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class RetentionLine:
    """The evidence of one customer on one channel, and how long it must stay."""

    customer_id: uuid.UUID
    channel: str
    consent: str | None  # the current status
    erased: bool
    evidence_rows: int
    last_decision_at: datetime
    last_sent_at: datetime | None  # last marketing send (to the customer or an address named)
    keep_until: datetime | None  # None: kept while the consent stands
    purgeable: bool
    evidence: list[Evidence] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """Lines of evidence (newest decision first) with the workspace's totals."""

    as_of: datetime
    months: int
    cutoff: datetime
    address: str | None  # masked unless revealed
    revealed: bool
    evidence_rows: int
    lines_total: int
    purgeable_rows: int
    lines: list[RetentionLine]


def _address_keys(scope: Scope, address: str) -> tuple[str, dict[str, bytes]]:
    """The address normalized, and channel -> its lookup hash as that channel stores it."""
    text = address.strip()
    if "@" in text:
        email = normalize_email(text, "address")
        return email, {"email": scope.hash("email", email)}
    with contextlib.suppress(InvalidInput):
        phone = normalize_phone(text, "address")
        return phone, {"sms": scope.hash("phone", phone), "phone": scope.hash("phone", phone)}
    if not text:
        raise InvalidInput(
            Problem("invalid_address", "give an email, phone, LINE id or token", "address")
        )
    keys = {"line": scope.hash("line_user_id", text), "push": scope.hash("device_token", text)}
    return text, keys


def _owners(workspace_id: uuid.UUID, hashes: list[bytes]) -> sa.CompoundSelect[Any]:
    c, i, ce = customers.c, identities.c, consent_events.c
    return sa.union(
        sa.select(c.customer_id).where(
            c.workspace_id == workspace_id,
            sa.or_(c.email_hash.in_(hashes), c.phone_hash.in_(hashes)),
        ),
        sa.select(i.customer_id).where(i.workspace_id == workspace_id, i.value_hash.in_(hashes)),
        sa.select(ce.customer_id).where(
            ce.workspace_id == workspace_id, ce.address_hash.in_(hashes)
        ),
    )


def _filters(scope: Scope, keys: dict[str, bytes] | None) -> list[sa.ColumnElement[bool]]:
    ce = consent_events.c
    where = [ce.workspace_id == scope.workspace_id]
    if keys is not None:
        owners = _owners(scope.workspace_id, sorted(set(keys.values())))
        where += [ce.customer_id.in_(owners), ce.channel.in_(sorted(keys))]
    return where


def _last_sent(g: Any, workspace_id: uuid.UUID) -> sa.ScalarSelect[Any]:
    m, ce = messages.c, consent_events.alias("named")
    named = (
        sa.select(ce.c.address_hash)
        .where(
            ce.c.workspace_id == workspace_id,
            ce.c.customer_id == g.c.customer_id,
            ce.c.channel == g.c.channel,
            ce.c.address_hash.is_not(None),
        )
        .correlate(g)
    )  # two levels down: auto-correlation would read every line's addresses
    return (
        sa.select(sa.func.max(m.sent_at))
        .where(
            m.workspace_id == workspace_id,
            m.channel == g.c.channel,
            m.purpose == "marketing",
            sa.or_(m.customer_id == g.c.customer_id, m.address_hash.in_(named)),
        )
        .correlate(g)
        .scalar_subquery()
    )


def _line_rows(scope: Scope, where: list[sa.ColumnElement[bool]], limit: int) -> list[Any]:
    ce = consent_events.c
    last = sa.func.max(ce.occurred_at)
    g = (
        sa.select(
            ce.customer_id, ce.channel, sa.func.count().label("rows"), last.label("last_decision")
        )
        .where(*where)
        .group_by(ce.customer_id, ce.channel)
        .order_by(last.desc(), ce.customer_id, ce.channel)
        .limit(limit)
        .subquery()
    )
    ws = scope.workspace_id
    status = sa.select(consents.c.status).where(
        consents.c.workspace_id == ws,
        consents.c.customer_id == g.c.customer_id,
        consents.c.channel == g.c.channel,
    )
    query = sa.select(
        g,
        _last_sent(g, ws).label("last_sent"),
        status.scalar_subquery().label("consent"),
        g.c.customer_id.in_(erased_customers(ws)).label("erased"),
    ).order_by(g.c.last_decision.desc(), g.c.customer_id, g.c.channel)
    return list(scope.conn.execute(query))


def _mask_address(channel: str, value: str, reveal: bool) -> str:
    if reveal:
        return value
    if channel == "email":
        return mask_email(value)
    if channel in ("sms", "phone"):
        return mask_phone(value)
    return value[:2] + "***"


def _mask_ip(value: str | None, reveal: bool) -> str | None:
    if value is None or reveal:
        return value
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return "***"
    if ip.version == 4:
        return ".".join(value.split(".")[:3]) + ".*"
    return ":".join(ip.exploded.split(":")[:3]) + ":*"


def _shown(r: Any, clear: dict[bytes, str], reveal: bool) -> tuple[str, str | None]:
    """(the address as shown, the source as shown): masked, and masked inside the source too."""
    if r.address_hash is None:
        return _NOT_RECORDED, r.source
    address = clear.get(bytes(r.address_hash))
    if address is None:
        return _GONE, r.source
    shown = _mask_address(r.channel, address, reveal)
    source = r.source
    if source and not reveal:  # a signup URL may carry the address (?email=…)
        source = re.sub(re.escape(address), shown, source, flags=re.IGNORECASE)
    return shown, source


def _evidence(scope: Scope, rows: list[Any], reveal: bool) -> dict[tuple[Any, str], list[Evidence]]:
    ce = consent_events.c
    wanted = {(r.customer_id, r.channel) for r in rows}
    found = list(
        scope.conn.execute(
            sa.select(consent_events)
            .where(
                ce.workspace_id == scope.workspace_id,
                ce.customer_id.in_(sorted({c for c, _ in wanted})),
            )
            .order_by(ce.occurred_at, ce.consent_event_id)
        )
    )
    clear = addresses_of(scope, [r.address_hash for r in found if r.address_hash is not None])
    lines: dict[tuple[Any, str], list[Evidence]] = {}
    for r in found:
        if (r.customer_id, r.channel) not in wanted:
            continue
        address, source = _shown(r, clear, reveal)
        lines.setdefault((r.customer_id, r.channel), []).append(
            Evidence(
                r.consent_event_id,
                r.status,
                r.occurred_at,
                r.method,
                r.wording,
                source,
                _mask_ip(r.ip, reveal),
                address,
                r.recorded_at,
            )
        )
    return lines


def _line(row: Any, evidence: list[Evidence], months: int, cutoff: datetime) -> RetentionLine:
    anchor = max(t for t in (row.last_decision, row.last_sent) if t is not None)
    erased = bool(row.erased)
    standing = row.consent == "opted_in" and not erased
    until = None if standing else keep_until(anchor, months)
    ended = erased or row.consent == "opted_out"
    return RetentionLine(
        row.customer_id,
        row.channel,
        row.consent,
        erased,
        int(row.rows),
        row.last_decision,
        row.last_sent,
        until,
        ended and anchor <= cutoff,
        evidence,
    )


def _totals(scope: Scope, where: list[sa.ColumnElement[bool]], cutoff: datetime) -> tuple[int, ...]:
    ce = consent_events
    lines = sa.select(ce.c.customer_id, ce.c.channel).where(*where).distinct().subquery()
    rows = sa.select(sa.func.count()).select_from(ce).where(*where)
    due = rows.where(purgeable(ce, scope.workspace_id, cutoff))
    line_count = sa.select(sa.func.count()).select_from(lines)
    return tuple(int(scope.conn.execute(q).scalar_one()) for q in (rows, line_count, due))


def _log_reveal(
    db: Database, workspace_id: uuid.UUID, now: datetime, actor: Actor, lines: list[RetentionLine]
) -> None:
    details = {"revealed": True, "lines": len(lines),
               "customers": sorted({str(line.customer_id) for line in lines})}  # fmt: skip
    with db.write() as conn:
        log_operation(conn, workspace_id=workspace_id, at=now, actor=actor.name,
                      origin=actor.origin, action="privacy.retention_report", target=None,
                      details=details)  # fmt: skip


def retention_report(
    db: Database,
    workspace: str,
    *,
    actor: Actor,
    address: str | None = None,
    reveal: bool = False,
    limit: int = 100,
) -> RetentionReport:
    """The retention report; ``InvalidInput`` for a bad address or limit, ``NotFound``."""
    if not 1 <= limit <= MAX_LINES:
        raise InvalidInput(Problem("out_of_range", f"must be 1 to {MAX_LINES}", "limit"))
    with workspace_read(db, workspace) as scope:
        months = load_privacy_settings(scope.conn, scope.workspace_id).evidence_retention_months
        cutoff = retention_cutoff(scope.now, months)
        normalized, keys = (None, None) if address is None else _address_keys(scope, address)
        where = _filters(scope, keys)
        rows = _line_rows(scope, where, limit)
        evidence = _evidence(scope, rows, reveal)
        evidence_rows, lines_total, purgeable_rows = _totals(scope, where, cutoff)
        workspace_id, now = scope.workspace_id, scope.now
    lines = [_line(r, evidence.get((r.customer_id, r.channel), []), months, cutoff) for r in rows]
    shown = None
    if normalized is not None and keys is not None:
        shown = _mask_address(next(iter(keys)), normalized, reveal)
    if reveal:
        _log_reveal(db, workspace_id, now, actor, lines)
    return RetentionReport(
        now, months, cutoff, shown, reveal, evidence_rows, lines_total, purgeable_rows, lines
    )
