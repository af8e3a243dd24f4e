"""Campaigns API: save, check, test-send, submit, approve, cancel; the frozen audience.

Bodies are parsed by the campaign language itself (not by FastAPI), so a bad
definition answers 400 with every problem at its field's path
(``variants[1].template``). Reading needs ``campaigns.read``; saving, checking and
submitting ``campaigns.write``; test sends ``messages.test``; approving and
cancelling ``campaigns.publish`` (written to the operation log with the caller).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field

from kizuna.api.deps import get_db, require
from kizuna.campaigns.checks import CheckReport
from kizuna.campaigns.definition import campaign_schema, parse_campaign
from kizuna.campaigns.flow import (
    approve_campaign,
    cancel_campaign,
    check_campaign,
    queue_campaign_test_send,
    recipient_counts,
    submit_campaign,
)
from kizuna.errors import InvalidInput, Problem
from kizuna.security.access import Caller
from kizuna.segments.report import workspace_scope
from kizuna.store.campaigns import SavedCampaign, get_campaign, list_campaigns, save_campaign
from kizuna.store.database import Database
from kizuna.store.profiles import find_customer_id

__all__ = ["router"]

router = APIRouter(prefix="/api/workspaces/{workspace}/campaigns", tags=["campaigns"])
Db = Annotated[Database, Depends(get_db)]
_READ = [Depends(require("campaigns.read"))]
_WRITE = [Depends(require("campaigns.write"))]
Writer = Annotated[Caller, Depends(require("campaigns.write"))]
Publisher = Annotated[Caller, Depends(require("campaigns.publish"))]
_EXAMPLE = {
    "key": "spring-sale", "name": "春のセール", "segment": "active-buyers", "channel": "email",
    "topic": "sale",
    "variants": [{"key": "A", "template": "spring-a", "weight": 50},
                 {"key": "B", "template": "spring-b", "weight": 50}],
    "control_percent": 10,
    "schedule": {"kind": "local_time", "date": "2026-04-03", "local_time": "10:00"},
}  # fmt: skip
SpecBody = Annotated[
    dict[str, Any],
    Body(description="A campaign definition: key, name, segment, channel, variants, "
                     "control_percent, schedule, goal, window_days (see /schema)",
         openapi_examples={"spring-sale": {"value": _EXAMPLE}}),
]  # fmt: skip


class FindingOut(BaseModel):
    """One refusal or warning of the pre-send checks, with its number."""

    code: str
    severity: str
    message: str
    message_ja: str
    number: float | int | None
    details: dict[str, Any]


class ChecksOut(BaseModel):
    """The pre-send checks: refused when any finding is a refusal."""

    checked_at: datetime
    refused: bool
    members: int
    reachable: int
    treatment: int
    control: int
    findings: list[FindingOut]


class CampaignOut(BaseModel):
    """A campaign: its status, definition, last checks and frozen audience's size."""

    key: str
    name: str
    status: str
    spec: dict[str, Any]
    checks: dict[str, Any]
    created_by: str
    created_at: datetime
    submitted_by: str | None
    approved_by: str | None
    approved_at: datetime | None
    send_at: datetime | None
    frozen_at: datetime | None
    targeted: int | None
    held_out: int | None
    updated_at: datetime


class TestSendIn(BaseModel):
    """Which variant to test (none: every variant), rendered for which customer."""

    variant: str | None = None
    customer: str | None = Field(
        default=None, description="Render for this customer (id, shop id, email or phone); "
        "default: the segment's first member"
    )  # fmt: skip


class RecipientsOut(BaseModel):
    """The frozen audience of one group and variant."""

    group: str
    variant: str | None
    customers: int
    messages: int


def _out(saved: SavedCampaign) -> CampaignOut:
    fields = {k: v for k, v in asdict(saved).items() if k in CampaignOut.model_fields}
    return CampaignOut(
        **{**fields, "spec": saved.spec.model_dump(mode="json", exclude_defaults=True)}
    )


def _checks(report: CheckReport) -> ChecksOut:
    return ChecksOut.model_validate(report.document())


@router.get("", dependencies=_READ, response_model=list[CampaignOut], summary="List campaigns")
def get_campaigns(workspace: str, db: Db) -> list[CampaignOut]:
    """The workspace's campaigns, newest first."""
    with workspace_scope(db, workspace) as scope:
        return [_out(c) for c in list_campaigns(scope)]


@router.get("/schema", dependencies=_READ, summary="JSON Schema of a campaign definition")
def get_schema(workspace: str, db: Db) -> dict[str, Any]:
    """The JSON Schema of a campaign definition (for editors)."""
    with workspace_scope(db, workspace):
        return campaign_schema()


@router.post("", response_model=CampaignOut, summary="Save a campaign")
def post_campaign(workspace: str, db: Db, caller: Writer, spec: SpecBody) -> CampaignOut:
    """Create a draft, or replace the draft with this key (names checked first)."""
    parsed = parse_campaign(spec)
    with workspace_scope(db, workspace, write=True) as scope:
        return _out(save_campaign(scope, parsed, caller.name))


@router.put("/{key}", response_model=CampaignOut, summary="Save a campaign under its key")
def put_campaign(workspace: str, key: str, db: Db, caller: Writer, spec: SpecBody) -> CampaignOut:
    """As POST, for the campaign at ``key`` (the body's key must match)."""
    parsed = parse_campaign(spec)
    if parsed.key != key:
        raise InvalidInput(Problem("key_mismatch", f"the body's key {parsed.key!r} is not "
                                   f"{key!r}", "key"))  # fmt: skip
    with workspace_scope(db, workspace, write=True) as scope:
        return _out(save_campaign(scope, parsed, caller.name))


@router.get("/{key}", dependencies=_READ, response_model=CampaignOut, summary="Read a campaign")
def get_one(workspace: str, key: str, db: Db) -> CampaignOut:
    """One campaign with its definition and last checks."""
    with workspace_scope(db, workspace) as scope:
        return _out(get_campaign(scope, key))


@router.post(
    "/{key}/check", dependencies=_WRITE, response_model=ChecksOut, summary="Run the pre-send checks"
)
def post_check(workspace: str, key: str, db: Db) -> ChecksOut:
    """Check the campaign on its segment as it is now (stored with the campaign)."""
    with workspace_scope(db, workspace, write=True) as scope:
        return _checks(check_campaign(scope, key))


@router.post(
    "/{key}/test-send",
    dependencies=[Depends(require("messages.test"))],
    status_code=202,
    summary="Test send to the seed list",
)
def post_test_send(
    workspace: str, key: str, db: Db, body: TestSendIn
) -> dict[str, dict[str, list[uuid.UUID]]]:
    """Queue the variant (or every variant) to the seed addresses of the campaign's channel."""
    with workspace_scope(db, workspace, write=True) as scope:
        customer_id = (
            find_customer_id(scope.conn, scope.cipher, scope.workspace_id, body.customer)
            if body.customer else None
        )  # fmt: skip
        sent = queue_campaign_test_send(scope, key, variant=body.variant, customer_id=customer_id)
    return {"message_ids": sent}


@router.post("/{key}/submit", response_model=ChecksOut, summary="Ask for approval")
def post_submit(workspace: str, key: str, db: Db, caller: Writer) -> ChecksOut:
    """Submit a draft for approval (400 with the numbers when a check refuses it)."""
    with workspace_scope(db, workspace, write=True) as scope:
        return _checks(submit_campaign(scope, key, caller.actor()))


@router.post("/{key}/approve", response_model=CampaignOut, summary="Approve the send")
def post_approve(workspace: str, key: str, db: Db, caller: Publisher) -> CampaignOut:
    """Approve and schedule the production send (the checks run again)."""
    with workspace_scope(db, workspace, write=True) as scope:
        return _out(approve_campaign(scope, key, caller.actor()))


@router.post("/{key}/cancel", response_model=CampaignOut, summary="Cancel the campaign")
def post_cancel(workspace: str, key: str, db: Db, caller: Publisher) -> CampaignOut:
    """Cancel before it is sent (409 once sent)."""
    with workspace_scope(db, workspace, write=True) as scope:
        return _out(cancel_campaign(scope, key, caller.actor()))


@router.get(
    "/{key}/recipients",
    dependencies=_READ,
    response_model=list[RecipientsOut],
    summary="The frozen audience by group and variant",
)
def get_recipients(workspace: str, key: str, db: Db) -> list[RecipientsOut]:
    """Customers and messages per group (treatment, control) and variant."""
    with workspace_scope(db, workspace) as scope:
        return [RecipientsOut.model_validate(r) for r in recipient_counts(scope, key)]
