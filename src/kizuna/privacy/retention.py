"""Consent evidence retention (Specified Electronic Mail Act) and its purge.

The Act asks a sender to keep the record of each consent at least until one
month after the last advertising message sent on it. Kizuna's rule, per
customer and channel (one "line" of evidence):

* while the consent stands (``opted_in``, customer not erased) the evidence is
  kept, whatever its age;
* once it has ended (opted out, or the customer erased) the evidence is kept
  until ``evidence_retention_months`` (default 1, see :mod:`.settings`) after the
  latest of: the last marketing send to the customer on that channel, the last
  marketing send on that channel to any address the evidence names, and the
  last decision recorded (the opt-out itself);
* only then may :func:`purge_evidence` delete it.

Counting the customer's sends as well as the address's is deliberately
conservative: after an erasure the messages keep the customer id but lose the
address hash, and a customer with two addresses keeps both lines of evidence
until the later one is due. The months are calendar months (``dateutil``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta

from kizuna.privacy.requests import workspace_write
from kizuna.privacy.settings import (
    PrivacySettings,
    load_privacy_settings,
    parse_privacy_settings,
    save_privacy_settings,
)
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor, log_operation
from kizuna.store.privacy import erased_customers
from kizuna.store.scope import Scope
from kizuna.store.tables import consent_events, consents, messages

__all__ = [
    "PurgeResult",
    "keep_until",
    "purge_evidence",
    "purge_expired_evidence",
    "purgeable",
    "retention_cutoff",
    "update_privacy_settings",
]


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What a purge deleted (or, in a dry run, would delete)."""

    rows: int
    months: int
    cutoff: datetime
    dry_run: bool


def retention_cutoff(now: datetime, months: int) -> datetime:
    """Evidence whose latest send or decision is at or before this may go (once ended)."""
    return now - relativedelta(months=months)


def keep_until(anchor: datetime, months: int) -> datetime:
    """Until when evidence anchored at ``anchor`` (last send or decision) must be kept."""
    return anchor + relativedelta(months=months)


def _marketing_sent_after(cutoff: datetime) -> list[sa.ColumnElement[bool]]:
    return [messages.c.purpose == "marketing", messages.c.sent_at > cutoff]


def _sent_since(ce: sa.Table, workspace_id: uuid.UUID, cutoff: datetime) -> list[sa.Exists]:
    """Marketing sends after ``cutoff`` to the line's customer, or to an address it names."""
    named = consent_events.alias("named")
    on_channel = [messages.c.workspace_id == workspace_id, messages.c.channel == ce.c.channel,
                  *_marketing_sent_after(cutoff)]  # fmt: skip
    # IMPORTANT: correlated explicitly; two levels down, auto-correlation would add
    # consent_events to this FROM and read every customer's addresses.
    addresses = (
        sa.select(named.c.address_hash)
        .where(named.c.workspace_id == workspace_id, named.c.customer_id == ce.c.customer_id,
               named.c.channel == ce.c.channel, named.c.address_hash.is_not(None))
        .correlate(ce)
    )  # fmt: skip
    to_customer = sa.select(messages.c.message_id).where(
        *on_channel, messages.c.customer_id == ce.c.customer_id
    )
    to_address = sa.select(messages.c.message_id).where(
        *on_channel, messages.c.address_hash.in_(addresses)
    )
    return [sa.exists(to_customer), sa.exists(to_address)]


def _ended(ce: sa.Table, workspace_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """The line's consent ended: opted out on that channel, or the customer erased."""
    opted_out = sa.select(consents.c.customer_id).where(
        consents.c.workspace_id == workspace_id, consents.c.customer_id == ce.c.customer_id,
        consents.c.channel == ce.c.channel, consents.c.status == "opted_out",
    )  # fmt: skip
    return sa.or_(sa.exists(opted_out), ce.c.customer_id.in_(erased_customers(workspace_id)))


def purgeable(
    ce: sa.Table, workspace_id: uuid.UUID, cutoff: datetime, *, assume_ended: bool = False
) -> sa.ColumnElement[bool]:
    """True for evidence rows of ``ce`` (consent_events) whose line is past retention and ended.

    ``assume_ended`` skips the consent test (the caller is erasing the customer).
    """
    later = consent_events.alias("later")
    decided_since = sa.select(later.c.consent_event_id).where(
        later.c.workspace_id == workspace_id, later.c.customer_id == ce.c.customer_id,
        later.c.channel == ce.c.channel, later.c.occurred_at > cutoff,
    )  # fmt: skip
    conditions = [~sa.exists(decided_since), *(~e for e in _sent_since(ce, workspace_id, cutoff))]
    if not assume_ended:
        conditions.append(_ended(ce, workspace_id))
    return sa.and_(*conditions)


def purge_evidence(
    scope: Scope,
    months: int,
    *,
    customer_ids: Collection[uuid.UUID] | None = None,
    assume_ended: bool = False,
    dry_run: bool = False,
) -> int:
    """Delete (or count) evidence past retention whose consent ended; one statement."""
    ce = consent_events
    cutoff = retention_cutoff(scope.now, months)
    where = [
        ce.c.workspace_id == scope.workspace_id,
        purgeable(ce, scope.workspace_id, cutoff, assume_ended=assume_ended),
    ]
    if customer_ids is not None:
        where.append(ce.c.customer_id.in_(list(customer_ids)))
    if dry_run:
        count = sa.select(sa.func.count()).select_from(ce).where(*where)
        return int(scope.conn.execute(count).scalar_one())
    return int(scope.conn.execute(ce.delete().where(*where)).rowcount)


def purge_expired_evidence(
    db: Database, workspace: str, *, actor: Actor, dry_run: bool = False
) -> PurgeResult:
    """Delete every evidence row the retention rule lets go; logged unless a dry run."""
    with workspace_write(db, workspace) as (scope, _):
        months = load_privacy_settings(scope.conn, scope.workspace_id).evidence_retention_months
        rows = purge_evidence(scope, months, dry_run=dry_run)
        cutoff = retention_cutoff(scope.now, months)
        if not dry_run:
            log_operation(
                scope.conn,
                workspace_id=scope.workspace_id,
                at=scope.now,
                actor=actor.name,
                origin=actor.origin,
                action="privacy.retention_purge",
                target=None,
                details={"rows": rows, "months": months, "cutoff": cutoff.isoformat()},
            )
    return PurgeResult(rows, months, cutoff, dry_run)


def update_privacy_settings(
    db: Database, workspace: str, data: object, *, actor: Actor
) -> PrivacySettings:
    """Validate and save a workspace's privacy settings; logged. ``InvalidInput`` names fields."""
    settings = parse_privacy_settings(data)
    with workspace_write(db, workspace) as (scope, _):
        save_privacy_settings(scope.conn, scope.workspace_id, settings)
        log_operation(
            scope.conn,
            workspace_id=scope.workspace_id,
            at=scope.now,
            actor=actor.name,
            origin=actor.origin,
            action="privacy.settings",
            target=None,
            details=settings.model_dump(mode="json"),
        )
    return settings
