"""A campaign's way from draft to send: check, test-send, submit, approve, cancel.

``draft`` → :func:`submit_campaign` → ``awaiting_approval`` → :func:`approve_campaign`
(``campaigns.publish``; the checks run again and any refusal stops it) →
``scheduled`` with its ``send_at`` → the worker freezes and sends it
(:func:`kizuna.campaigns.send.send_due_campaigns`). :func:`cancel_campaign` stops it
at any point before it is sent. Submitting, approving and cancelling are written to
the operation log with who did it.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from kizuna.campaigns.checks import CheckReport, check_campaign_spec
from kizuna.campaigns.definition import send_instant
from kizuna.delivery.test_sends import queue_test_send
from kizuna.errors import Conflict, InvalidInput, Problem
from kizuna.security.access import log_event
from kizuna.segments.compiler import compile_segment
from kizuna.store.campaigns import SavedCampaign, get_campaign, set_campaign
from kizuna.store.operation_log import Actor
from kizuna.store.scope import Scope
from kizuna.store.segments import compile_context, get_segment
from kizuna.store.tables import customers
from kizuna.store.tables_campaigns import campaign_recipients
from kizuna.store.workspaces import get_workspace

__all__ = [
    "approve_campaign",
    "cancel_campaign",
    "check_campaign",
    "queue_campaign_test_send",
    "recipient_counts",
    "submit_campaign",
]


def _log(scope: Scope, actor: Actor, action: str, saved: SavedCampaign, **details: Any) -> None:
    log_event(scope.conn, scope.now, actor, f"campaign.{action}", workspace_id=scope.workspace_id,
              target=f"campaign:{saved.key}", campaign_id=str(saved.campaign_id),
              **details)  # fmt: skip


def check_campaign(scope: Scope, key: str) -> CheckReport:
    """Run the pre-send checks on the campaign now and store them in ``campaigns.checks``."""
    saved = get_campaign(scope, key)
    report = check_campaign_spec(scope, saved.spec)
    set_campaign(scope, saved.campaign_id, checks=report.document())
    return report


def _refuse(report: CheckReport, what: str) -> None:
    if report.refused:
        problems = [Problem(f.code, f.message) for f in report.findings if f.severity == "refusal"]
        raise InvalidInput([Problem("refused", f"cannot {what}: the checks refuse it"), *problems])


def _require(saved: SavedCampaign, action: str, *allowed: str) -> None:
    if saved.status not in allowed:
        raise Conflict(f"cannot {action} campaign {saved.key!r}: it is {saved.status}, not "
                       f"{' or '.join(allowed)}")  # fmt: skip


def submit_campaign(scope: Scope, key: str, actor: Actor) -> CheckReport:
    """Ask for approval of a draft; the checks run first and a refusal stops it."""
    saved = get_campaign(scope, key, lock=True)
    _require(saved, "submit", "draft")
    report = check_campaign_spec(scope, saved.spec)
    _refuse(report, "submit")
    set_campaign(scope, saved.campaign_id, status="awaiting_approval", submitted_by=actor.name,
                 checks=report.document())  # fmt: skip
    _log(scope, actor, "submit", saved, findings=[f.code for f in report.findings])
    return report


def approve_campaign(scope: Scope, key: str, actor: Actor) -> SavedCampaign:
    """Approve the production send: checks again, then schedule it for its time.

    ``Conflict`` unless awaiting approval; ``InvalidInput`` when a check refuses.
    """
    saved = get_campaign(scope, key, lock=True)
    _require(saved, "approve", "awaiting_approval")
    report = check_campaign_spec(scope, saved.spec)
    _refuse(report, "approve")
    zone = get_workspace(scope.conn, scope.workspace_id).time_zone
    send_at = max(send_instant(saved.spec, scope.now, zone), scope.now)
    set_campaign(scope, saved.campaign_id, status="scheduled", approved_by=actor.name,
                 approved_at=scope.now, send_at=send_at, checks=report.document())  # fmt: skip
    _log(scope, actor, "approve", saved, send_at=send_at.isoformat(), members=report.members,
         findings=[f.code for f in report.findings])  # fmt: skip
    return get_campaign(scope, key)


def cancel_campaign(scope: Scope, key: str, actor: Actor) -> SavedCampaign:
    """Cancel a campaign before it is sent (``Conflict`` once sent or cancelled)."""
    saved = get_campaign(scope, key, lock=True)
    _require(saved, "cancel", "draft", "awaiting_approval", "approved", "scheduled")
    set_campaign(scope, saved.campaign_id, status="cancelled")
    _log(scope, actor, "cancel", saved, was=saved.status)
    return get_campaign(scope, key)


def _sample_member(scope: Scope, segment: str) -> uuid.UUID:
    query = compile_segment(get_segment(scope, segment).condition, compile_context(scope))
    found = scope.conn.execute(query.order_by(customers.c.customer_id).limit(1)).scalar()
    if found is None:
        raise InvalidInput(Problem("segment_empty", f"segment {segment!r} has no members to "
                                   "render the test for; name a customer", "customer"))  # fmt: skip
    return uuid.UUID(str(found))


def queue_campaign_test_send(
    scope: Scope, key: str, *, variant: str | None = None, customer_id: uuid.UUID | None = None
) -> dict[str, list[uuid.UUID]]:
    """Send the variant (or every variant) to the seed list, rendered for a sample member.

    The sample is ``customer_id`` or the segment's first member. Returns the queued
    test messages per variant; ``NotFound`` when the channel has no seed addresses.
    """
    saved = get_campaign(scope, key)
    chosen = [saved.spec.variant(variant)] if variant else saved.spec.variants
    who = customer_id or _sample_member(scope, saved.spec.segment)
    return {v.key: queue_test_send(scope, v.template, who) for v in chosen}


def recipient_counts(scope: Scope, key: str) -> list[dict[str, Any]]:
    """The frozen audience by group and variant: group, variant, customers, messages."""
    saved = get_campaign(scope, key)
    r = campaign_recipients.c
    rows = scope.conn.execute(
        sa.select(r.held_out, r.variant, sa.func.count(), sa.func.count(r.message_id))
        .where(r.workspace_id == scope.workspace_id, r.campaign_id == saved.campaign_id)
        .group_by(r.held_out, r.variant)
        .order_by(r.held_out, r.variant)
    ).all()
    return [{"group": "control" if held else "treatment", "variant": variant,
             "customers": int(n), "messages": int(m)} for held, variant, n, m in rows]  # fmt: skip
