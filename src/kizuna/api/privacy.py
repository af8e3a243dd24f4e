"""Data-subject requests (APPI) and consent-evidence retention over HTTP.

Every route needs ``privacy.manage``; answers carrying personal data in clear (a
disclosure, a revealed retention report) also need ``personal_data.read``.

IMPORTANT: the person is named in the JSON body (``ref``: Kizuna id, shop
customer id, email or phone), never in the URL, so no access log or proxy
records an email address. Each request is recorded and written to the
operation log with the customer's id and the caller.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kizuna.api.deps import get_db, require
from kizuna.errors import InvalidInput, Problem
from kizuna.privacy import (
    PrivacySettings,
    correct_profile,
    disclose_customer,
    erase_customer,
    purge_expired_evidence,
    retention_report,
    stop_use,
    update_privacy_settings,
)
from kizuna.privacy.requests import workspace_read
from kizuna.privacy.settings import load_privacy_settings
from kizuna.security.access import Caller
from kizuna.store.database import Database
from kizuna.store.privacy import PrivacyRequest, list_requests
from kizuna.store.tables_privacy import REQUEST_KINDS

__all__ = ["router"]

router = APIRouter(prefix="/api/workspaces/{workspace}/privacy", tags=["privacy"])
Db = Annotated[Database, Depends(get_db)]
Manager = Annotated[Caller, Depends(require("privacy.manage"))]
Revealer = Annotated[Caller, Depends(require("privacy.manage", reveal="body"))]
_KINDS = "^(" + "|".join(REQUEST_KINDS) + ")$"
_REF = Field(
    min_length=1, max_length=320, description="Kizuna id, shop customer id, email or phone"
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefIn(_In):
    """Names the person a request is about."""

    ref: str = _REF


class DiscloseIn(RefIn):
    """A disclosure: a zip (JSON + one CSV per table) or the JSON bundle alone."""

    format: Literal["zip", "json"] = "zip"


class CorrectIn(RefIn):
    """Fields to set; an empty string or null removes the field."""

    fields: dict[str, str | None]


class EraseIn(RefIn):
    """An erasure; ``confirm`` must be true (it cannot be undone)."""

    confirm: bool = False


class ReportIn(_In):
    """A retention report for one address (email, phone, LINE id) or the whole workspace."""

    address: str | None = Field(default=None, max_length=320)
    reveal: bool = False
    limit: int = Field(default=100, ge=1, le=1000)


class PurgeIn(_In):
    """``dry_run``: count what would go without deleting it."""

    dry_run: bool = False


class RequestOut(BaseModel):
    """A recorded request (field names and row counts only, never values)."""

    model_config = ConfigDict(from_attributes=True)

    request_id: uuid.UUID
    customer_id: uuid.UUID | None
    kind: str
    requested_by: str
    origin: str | None
    status: str
    created_at: datetime
    completed_at: datetime | None
    details: dict[str, Any]


class EraseOut(RequestOut):
    """An erasure, and whether SQLite's files were compacted (null on PostgreSQL)."""

    compacted: bool | None


class PurgeOut(BaseModel):
    """What the purge deleted (or would delete)."""

    model_config = ConfigDict(from_attributes=True)

    rows: int
    months: int
    cutoff: datetime
    dry_run: bool


def _out(request: PrivacyRequest) -> RequestOut:
    return RequestOut.model_validate(request)


@router.post("/disclose", summary="Disclose everything held about a person")
def post_disclose(workspace: str, body: DiscloseIn, db: Db, caller: Revealer) -> Response:
    """A zip of ``disclosure.json`` and one CSV per table (or the JSON); logged."""
    caller.check_reveal(True)
    disclosure = disclose_customer(db, workspace, body.ref, actor=caller.actor())
    if body.format == "json":
        return JSONResponse(disclosure.bundle)
    headers = {"Content-Disposition": f'attachment; filename="{disclosure.filename}"'}
    return Response(disclosure.to_zip(), media_type="application/zip", headers=headers)


@router.post("/correct", response_model=RequestOut, summary="Correct a person's profile")
def post_correct(workspace: str, body: CorrectIn, db: Db, caller: Manager) -> RequestOut:
    """Set or remove profile fields; 400 names each bad field, 409 for another's email."""
    return _out(correct_profile(db, workspace, body.ref, body.fields, actor=caller.actor()))


@router.post("/stop", response_model=RequestOut, summary="Stop all marketing to a person")
def post_stop(workspace: str, body: RefIn, db: Db, caller: Manager) -> RequestOut:
    """Opt out everywhere (with evidence), suppress their addresses, exit their runs."""
    return _out(stop_use(db, workspace, body.ref, actor=caller.actor()))


@router.post("/erase", response_model=EraseOut, summary="Erase a person's personal data")
def post_erase(workspace: str, body: EraseIn, db: Db, caller: Manager) -> EraseOut:
    """Remove personal data, keep anonymous aggregates; needs ``confirm: true``."""
    if not body.confirm:
        message = "erasure cannot be undone; send confirm: true"
        raise InvalidInput(Problem("confirmation_required", message, "confirm"))
    erasure = erase_customer(db, workspace, body.ref, actor=caller.actor())
    return EraseOut(**_out(erasure.request).model_dump(), compacted=erasure.compacted)


@router.get("/requests", response_model=list[RequestOut], summary="List data-subject requests")
def get_requests(
    workspace: str,
    db: Db,
    _caller: Manager,
    customer_id: uuid.UUID | None = None,
    kind: Annotated[str | None, Query(pattern=_KINDS)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RequestOut]:
    """The workspace's requests, newest first."""
    with workspace_read(db, workspace) as scope:
        found = list_requests(scope, customer_id=customer_id, kind=kind, limit=limit)
    return [_out(r) for r in found]


@router.post("/retention/report", summary="Consent evidence and how long it is kept")
def post_retention_report(
    workspace: str, body: ReportIn, db: Db, caller: Revealer
) -> dict[str, Any]:
    """Per customer and channel: evidence, last send, keep-until; masked unless revealed."""
    caller.check_reveal(body.reveal)
    report = retention_report(
        db,
        workspace,
        actor=caller.actor(),
        address=body.address,
        reveal=body.reveal,
        limit=body.limit,
    )
    plain: dict[str, Any] = _plain(report)
    return plain


@router.post("/retention/purge", response_model=PurgeOut, summary="Purge evidence past retention")
def post_retention_purge(workspace: str, body: PurgeIn, db: Db, caller: Manager) -> PurgeOut:
    """Delete evidence past retention whose consent ended (opted out or erased); logged."""
    result = purge_expired_evidence(db, workspace, actor=caller.actor(), dry_run=body.dry_run)
    return PurgeOut.model_validate(result)


@router.get("/settings", response_model=PrivacySettings, summary="Read privacy settings")
def get_settings(workspace: str, db: Db, _caller: Manager) -> PrivacySettings:
    """How long consent evidence is kept after the last send (months)."""
    with workspace_read(db, workspace) as scope:
        return load_privacy_settings(scope.conn, scope.workspace_id)


@router.put("/settings", response_model=PrivacySettings, summary="Change privacy settings")
def put_settings(workspace: str, body: dict[str, Any], db: Db, caller: Manager) -> PrivacySettings:
    """Replace the privacy settings; 400 names each bad field; logged."""
    return update_privacy_settings(db, workspace, body, actor=caller.actor())


def _plain(value: Any) -> Any:
    """A dataclass tree as JSON-ready values (times as ISO 8601 UTC)."""
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
