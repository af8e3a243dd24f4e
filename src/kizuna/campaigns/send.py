"""Freezing a campaign's audience and queueing its messages, in one transaction, when due.

The audience is the segment's compiled SQL at that moment, written to
``campaign_recipients`` by one ``INSERT … SELECT``: each member's control-group
draw and variant draw are deterministic hashes of the campaign and the customer
(the segment language's random bucket, with their own salts), so a repeated freeze
draws the same. Customers in the workspace's global control group are held out as
well. A second ``INSERT … SELECT`` queues one message per treated member into the
outbox, keyed ``campaign:<campaign_id>:<customer_id>``: a send repeated after a
crash queues nothing twice. The messages are due at the scheduled instant.

Customers carry no time zone of their own in Kizuna (there is no such trait), so a
``local_time`` schedule is that time of day in the workspace's zone for everyone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.campaigns.definition import CampaignSpec, send_instant
from kizuna.delivery.rules import GLOBAL_CONTROL_SALT
from kizuna.delivery.settings import load_delivery_settings
from kizuna.errors import KizunaError
from kizuna.segments.compiler import CompileContext, compile_segment
from kizuna.segments.compiler._context import Builder
from kizuna.segments.compiler._profile import compile_bucket
from kizuna.segments.definition import Bucket
from kizuna.store.campaigns import SavedCampaign, get_campaign, set_campaign
from kizuna.store.database import Database
from kizuna.store.scope import Scope
from kizuna.store.segments import compile_context, get_segment
from kizuna.store.tables import customers, messages
from kizuna.store.tables_campaigns import campaign_recipients, campaigns
from kizuna.store.workspaces import get_workspace

__all__ = ["FreezeReport", "freeze_and_send", "send_due_campaigns"]

log = logging.getLogger(__name__)
_BUCKETS = 10_000  # draws in hundredths of a percent


@dataclass(frozen=True, slots=True)
class FreezeReport:
    """What one freeze wrote."""

    targeted: int
    held_out: int
    queued: int  # messages newly queued by this call
    frozen: bool = True  # False: the campaign was not scheduled (nothing done)


def _share(b: Builder, salt: str, percent: float) -> sa.ColumnElement[bool]:
    """The customer's draw under ``salt`` falls in the first ``percent`` % (hash buckets)."""
    end = round(percent * _BUCKETS / 100)
    if end <= 0:
        return sa.false()
    bucket = Bucket(type="bucket", buckets=_BUCKETS, start=0, end=min(end, _BUCKETS) - 1,
                    salt=salt)  # fmt: skip
    return compile_bucket(bucket, b, "")


def _variant(b: Builder, spec: CampaignSpec, salt: str) -> Any:
    """The variant key drawn by weight (cumulative ranges of one hash)."""
    total = sum(v.weight for v in spec.variants)
    cases, start, running = [], 0, 0.0
    for v in spec.variants[:-1]:
        running += v.weight
        end = round(running / total * _BUCKETS)
        if end > start:
            bucket = Bucket(type="bucket", buckets=_BUCKETS, start=start, end=end - 1, salt=salt)
            cases.append((compile_bucket(bucket, b, ""), v.key))
        start = end
    return (
        sa.case(*cases, else_=spec.variants[-1].key) if cases else sa.literal(spec.variants[-1].key)
    )


def _random_uuid(dialect: str) -> Any:
    """A new random (version 4) UUID per row, as the dialect stores ``Uuid``."""
    if dialect == "postgresql":
        return sa.func.gen_random_uuid()
    hexes = [sa.func.lower(sa.func.hex(sa.func.randomblob(n))) for n in (6, 2, 8)]
    variant = sa.func.substr("89ab", 1 + sa.func.abs(sa.func.random()) % 4, 1)
    return (sa.func.substr(hexes[0], 1, 12) + "4" + sa.func.substr(hexes[1], 1, 3) + variant
            + sa.func.substr(hexes[2], 1, 15))  # fmt: skip


def _uuid_text(column: Any, dialect: str) -> Any:
    """A UUID column as its hyphenated text (as ``str(uuid)`` writes it)."""
    if dialect == "postgresql":
        return sa.cast(column, sa.Text)
    hexed = sa.func.lower(sa.type_coerce(column, sa.String))
    parts = [sa.func.substr(hexed, s, n) for s, n in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]
    text: Any = parts[0]
    for part in parts[1:]:
        text = text + "-" + part
    return text


def _insert(scope: Scope, table: sa.Table) -> Any:
    return (postgresql if scope.conn.dialect.name == "postgresql" else sqlite).insert(table)


def _freeze(scope: Scope, saved: SavedCampaign, ctx: CompileContext, send_at: datetime) -> None:
    spec, dialect = saved.spec, scope.conn.dialect.name
    settings = load_delivery_settings(scope.conn, scope.workspace_id)
    members = compile_segment(get_segment(scope, spec.segment).condition, ctx)
    b = Builder(ctx)
    salt = f"kizuna:campaign:{saved.campaign_id}"
    held = sa.or_(_share(b, GLOBAL_CONTROL_SALT, settings.global_control_percent),
                  _share(b, f"{salt}:control", spec.control_percent))  # fmt: skip
    message_id = sa.case((held, sa.null()), else_=sa.type_coerce(_random_uuid(dialect), sa.Uuid))
    audience = members.with_only_columns(
        sa.literal(scope.workspace_id, sa.Uuid), sa.literal(saved.campaign_id, sa.Uuid),
        customers.c.customer_id, held, _variant(b, spec, f"{salt}:variant"), message_id,
        sa.literal(send_at, campaign_recipients.c.send_at.type), sa.literal(0),
        sa.literal(0.0),
    )  # fmt: skip
    columns = ["workspace_id", "campaign_id", "customer_id", "held_out", "variant", "message_id",
               "send_at", "conversions", "revenue"]  # fmt: skip
    scope.conn.execute(
        _insert(scope, campaign_recipients)
        .from_select(columns, audience)
        .on_conflict_do_nothing(index_elements=["workspace_id", "campaign_id", "customer_id"])
    )


def _queue(scope: Scope, saved: SavedCampaign) -> int:
    spec, r, dialect = saved.spec, campaign_recipients.c, scope.conn.dialect.name
    template = sa.case(*((r.variant == v.key, v.template) for v in spec.variants), else_=None)
    key = f"campaign:{saved.campaign_id}:"
    treated = sa.select(
        r.workspace_id, r.message_id, r.customer_id,
        sa.literal(key) + _uuid_text(r.customer_id, dialect), sa.literal(spec.channel),
        sa.literal(spec.purpose), sa.literal(spec.topic, sa.String), template,
        sa.literal({}, messages.c.params.type), sa.literal("campaign"),
        sa.literal(str(saved.campaign_id)), r.variant, sa.literal("queued"), sa.literal(0),
        r.send_at, sa.literal(scope.now, messages.c.created_at.type),
        sa.literal(scope.now, messages.c.updated_at.type),
    ).where(r.workspace_id == scope.workspace_id, r.campaign_id == saved.campaign_id,
            r.held_out.is_(False), r.message_id.is_not(None))  # fmt: skip
    columns = ["workspace_id", "message_id", "customer_id", "idempotency_key", "channel",
               "purpose", "topic", "template_key", "params", "source_kind", "source_id",
               "variant", "status", "attempts", "not_before", "created_at",
               "updated_at"]  # fmt: skip
    stmt = _insert(scope, messages).from_select(columns, treated)
    done = scope.conn.execute(
        stmt.on_conflict_do_nothing(index_elements=["workspace_id", "idempotency_key"])
    )
    return max(int(done.rowcount or 0), 0)


def freeze_and_send(scope: Scope, key: str) -> FreezeReport:
    """Freeze the audience of a scheduled campaign and queue its messages (one transaction).

    Run it inside a write transaction; a campaign not ``scheduled`` (sent, cancelled, or
    sent by another worker meanwhile) is left alone and reports zeros.
    """
    saved = get_campaign(scope, key, lock=True)
    if saved.status != "scheduled":
        return FreezeReport(0, 0, 0, frozen=False)
    zone = get_workspace(scope.conn, scope.workspace_id).time_zone
    send_at = saved.send_at or send_instant(saved.spec, scope.now, zone)
    _freeze(scope, saved, compile_context(scope), send_at)
    queued = _queue(scope, saved)
    r = campaign_recipients.c
    targeted, held_out = scope.conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((r.held_out, 1),
                                                                        else_=0)), 0))
        .where(r.workspace_id == scope.workspace_id, r.campaign_id == saved.campaign_id)
    ).one()  # fmt: skip
    set_campaign(scope, saved.campaign_id, status="sent", frozen_at=scope.now,
                 targeted=int(targeted), held_out=int(held_out))  # fmt: skip
    return FreezeReport(int(targeted), int(held_out), queued)


def send_due_campaigns(db: Database) -> int:
    """Freeze and send every scheduled campaign whose time has come; returns how many were sent.

    Each campaign is its own transaction; one that cannot be sent (its segment archived
    since approval) becomes ``failed`` with the reason in ``checks.send_error`` — nothing
    of it was written — and the others go on.
    """
    now = db.clock.now()
    with db.read() as conn:
        due = conn.execute(
            sa.select(campaigns.c.workspace_id, campaigns.c.key)
            .where(campaigns.c.status == "scheduled", campaigns.c.send_at <= now)
            .order_by(campaigns.c.send_at)
        ).all()
    sent = 0
    for workspace_id, key in due:
        try:
            with db.write() as conn:
                scope = Scope(conn, db.cipher, workspace_id, db.clock.now())
                report = freeze_and_send(scope, key)
        except KizunaError as exc:
            log.warning("campaign %s could not be sent: %s", key, exc)
            _mark_failed(db, workspace_id, key, str(exc))
            continue
        if report.frozen:
            sent += 1
            log.info("campaign %s sent: %d targeted, %d held out, %d queued", key,
                     report.targeted, report.held_out, report.queued)  # fmt: skip
    return sent


def _mark_failed(db: Database, workspace_id: Any, key: str, reason: str) -> None:
    with db.write() as conn:
        scope = Scope(conn, db.cipher, workspace_id, db.clock.now())
        saved = get_campaign(scope, key, lock=True)
        if saved.status == "scheduled":
            set_campaign(scope, saved.campaign_id, status="failed",
                         checks={**saved.checks, "send_error": reason})  # fmt: skip
