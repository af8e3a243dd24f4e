"""Read API: customer profiles and timelines (operator token required)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from kizuna.api.deps import get_db, require_api_token
from kizuna.api.schemas import ProfileOut, TimelineEntryOut, TimelineOut
from kizuna.profiles import customer_profile, customer_timeline, profile_view
from kizuna.store.database import Database

__all__ = ["router"]

router = APIRouter(
    prefix="/api/workspaces/{workspace}/customers",
    tags=["customers"],
    dependencies=[Depends(require_api_token)],
)
Db = Annotated[Database, Depends(get_db)]


@router.get("/{ref}", response_model=ProfileOut, summary="Read a customer profile")
def get_customer(
    workspace: str,
    ref: str,
    db: Db,
    reveal: Annotated[bool, Query(description="Show personal data in clear")] = False,
) -> ProfileOut:
    """A profile by Kizuna id, shop customer id, email or phone; personal data masked by default."""
    _, profile = customer_profile(db, workspace, ref)
    return ProfileOut.model_validate(profile_view(profile, reveal=reveal))


@router.get("/{ref}/timeline", response_model=TimelineOut, summary="Read a customer timeline")
def get_timeline(
    workspace: str,
    ref: str,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TimelineOut:
    """Events, orders and consent changes, newest first."""
    ws, customer_id, entries = customer_timeline(db, workspace, ref, limit)
    return TimelineOut(
        customer_id=customer_id,
        time_zone=ws.time_zone,
        entries=[TimelineEntryOut.model_validate(e, from_attributes=True) for e in entries],
    )
