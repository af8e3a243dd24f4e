"""Saved campaigns and their life cycle.

Statuses: ``draft`` → ``awaiting_approval`` (submitted) → ``scheduled`` (approved,
with its ``send_at``) → ``sent`` (audience frozen, messages queued); ``cancelled``
from any status before ``sent``. Saving creates a draft, or replaces the draft (or
the submitted definition, which goes back to draft) of the campaign with that key;
a campaign past approval cannot be edited. Approval, cancelling and submitting are
written to the operation log (see :mod:`kizuna.campaigns.flow`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.campaigns.definition import CampaignSpec, campaign_problems, parse_campaign
from kizuna.errors import Conflict, InvalidInput, NotFound
from kizuna.store.scope import Scope
from kizuna.store.tables_campaigns import campaigns
from kizuna.store.types import new_id

__all__ = [
    "EDITABLE",
    "SavedCampaign",
    "get_campaign",
    "list_campaigns",
    "save_campaign",
    "set_campaign",
]

EDITABLE = ("draft", "awaiting_approval")


@dataclass(frozen=True, slots=True)
class SavedCampaign:
    """A campaign as stored."""

    campaign_id: uuid.UUID
    key: str
    name: str
    status: str
    spec: CampaignSpec
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


def _mine(scope: Scope) -> sa.ColumnElement[bool]:
    return campaigns.c.workspace_id == scope.workspace_id


def _saved(row: sa.Row[Any]) -> SavedCampaign:
    m = row._mapping
    return SavedCampaign(
        campaign_id=m["campaign_id"], key=m["key"], name=m["name"], status=m["status"],
        spec=parse_campaign(m["spec"]), checks=dict(m["checks"] or {}),
        created_by=m["created_by"], created_at=m["created_at"], submitted_by=m["submitted_by"],
        approved_by=m["approved_by"], approved_at=m["approved_at"], send_at=m["send_at"],
        frozen_at=m["frozen_at"], targeted=m["targeted"], held_out=m["held_out"],
        updated_at=m["updated_at"],
    )  # fmt: skip


def get_campaign(scope: Scope, key: str, *, lock: bool = False) -> SavedCampaign:
    """One campaign by key; ``NotFound``. ``lock`` holds its row until the transaction ends."""
    query = sa.select(campaigns).where(_mine(scope), campaigns.c.key == key)
    row = scope.conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no campaign {key!r} in this workspace")
    return _saved(row)


def list_campaigns(scope: Scope, *, status: str | None = None) -> list[SavedCampaign]:
    """The workspace's campaigns, newest first (optionally of one status)."""
    query = sa.select(campaigns).where(_mine(scope))
    if status is not None:
        query = query.where(campaigns.c.status == status)
    rows = scope.conn.execute(query.order_by(campaigns.c.created_at.desc(), campaigns.c.key))
    return [_saved(row) for row in rows]


def save_campaign(scope: Scope, spec: CampaignSpec, actor: str) -> SavedCampaign:
    """Create the campaign as a draft, or replace the definition of a draft with this key.

    Names are checked first (``InvalidInput``: segment, templates, topic). A submitted
    campaign edited goes back to draft (it must be submitted again); one approved,
    sent or cancelled cannot be edited (``Conflict``).
    """
    problems = campaign_problems(scope, spec)
    if problems:
        raise InvalidInput(problems)
    document = spec.model_dump(mode="json")
    existing = scope.conn.execute(
        sa.select(campaigns.c.campaign_id, campaigns.c.status)
        .where(_mine(scope), campaigns.c.key == spec.key)
        .with_for_update()
    ).first()
    if existing is None:
        scope.conn.execute(
            campaigns.insert().values(
                workspace_id=scope.workspace_id, campaign_id=new_id(), key=spec.key,
                name=spec.name, status="draft", spec=document, checks={}, created_by=actor,
                created_at=scope.now, updated_at=scope.now,
            )
        )  # fmt: skip
    elif existing.status not in EDITABLE:
        raise Conflict(f"campaign {spec.key!r} is {existing.status}: it can no longer be edited "
                       "(save it under a new key)")  # fmt: skip
    else:
        set_campaign(scope, existing.campaign_id, name=spec.name, spec=document, status="draft",
                     checks={}, submitted_by=None)  # fmt: skip
    return get_campaign(scope, spec.key)


def set_campaign(scope: Scope, campaign_id: uuid.UUID, **values: Any) -> None:
    """Update columns of one campaign (``updated_at`` set to now)."""
    scope.conn.execute(
        campaigns.update()
        .where(_mine(scope), campaigns.c.campaign_id == campaign_id)
        .values(updated_at=scope.now, **values)
    )
