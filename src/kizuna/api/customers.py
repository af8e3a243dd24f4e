"""Read API: customer profiles and timelines (``customers.read``; in clear also
``personal_data.read``, and every clear view is written to the operation log)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from kizuna.api.deps import get_db, require
from kizuna.api.schemas import ProfileOut, TimelineEntryOut, TimelineOut
from kizuna.profiles import customer_profile, customer_timeline, profile_view
from kizuna.security.access import Caller, log_event
from kizuna.store.database import Database

__all__ = ["router"]

router = APIRouter(prefix="/api/workspaces/{workspace}/customers", tags=["customers"])
Db = Annotated[Database, Depends(get_db)]


@router.get("/{ref}", response_model=ProfileOut, summary="Read a customer profile")
def get_customer(
    workspace: str,
    ref: str,
    db: Db,
    caller: Annotated[Caller, Depends(require("customers.read", reveal="query"))],
    reveal: Annotated[bool, Query(description="Show personal data in clear (logged)")] = False,
) -> ProfileOut:
    """A profile by Kizuna id, shop customer id, email or phone; personal data masked by default."""
    ws, profile = customer_profile(db, workspace, ref)
    if reveal:
        with db.write() as conn:
            log_event(conn, db.clock.now(), caller.actor(), "customer.reveal",
                      workspace_id=ws.workspace_id, target=str(profile.customer_id))  # fmt: skip
    return ProfileOut.model_validate(profile_view(profile, reveal=reveal))


@router.get(
    "/{ref}/timeline",
    response_model=TimelineOut,
    summary="Read a customer timeline",
    dependencies=[Depends(require("customers.read"))],
)
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
