"""Feedback API: bounce and complaint messages, Twilio status callbacks, provider events.

Three ways in, all per workspace (``/api/workspaces/{ws}/feedback/…``):

- ``POST …/reports``: one raw RFC 822 message (a DSN or an ARF report) as the
  body, with a token or session holding ``delivery.admin``. A message that is neither answers 400
  ``not_a_report`` saying why.
- ``POST …/twilio``: Twilio's SMS status callback, authenticated by its
  ``X-Twilio-Signature`` (HMAC of the callback URL and the form, keyed with the
  workspace's Twilio auth token). A bad or missing signature answers 403. The
  signed URL is the one Twilio was given: the SMS provider's ``status_callback``
  setting, else ``DeliverySettings.public_url`` plus this path, else the URL
  as this server saw it. A callback for a message sid this workspace does not
  know answers 200 and records nothing on a message (Twilio does not retry 4xx
  answers, so a 404 would only fill its debugger, e.g. with callbacks for
  messages another application sent from the same account); a dead-number code
  (30005/30006) still suppresses the number.
- ``POST …/events``: a generic JSON webhook for providers (or a relay in front of
  one) that report delivered / bounced / complained / failed per message, with
  a token holding ``delivery.admin``.

Each answer lists what was applied per recipient, addresses masked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from kizuna.api.deps import get_db, public, require
from kizuna.api.errors import error_body
from kizuna.channels.base import ProviderConfig
from kizuna.channels.sms import verify_twilio_signature
from kizuna.clock import ensure_utc
from kizuna.delivery.bounces import Verdict
from kizuna.delivery.feedback import (
    Applied,
    Feedback,
    apply_feedback,
    apply_raw_report,
    twilio_feedback,
)
from kizuna.delivery.settings import DeliverySettings, load_delivery_settings
from kizuna.domain.records import Channel
from kizuna.errors import InvalidInput, NotFound, Problem
from kizuna.segments.report import workspace_scope
from kizuna.store.database import Database
from kizuna.store.providers import load_provider

__all__ = ["MAX_REPORT_BYTES", "router"]

log = logging.getLogger(__name__)
MAX_REPORT_BYTES = 10 * 1024 * 1024  # a bounce may carry the whole original message back

router = APIRouter(prefix="/api/workspaces/{workspace}/feedback", tags=["feedback"])
Db = Annotated[Database, Depends(get_db)]
_Admin = [Depends(require("delivery.admin"))]
_SIGNED = [Depends(public("Twilio signs each callback (X-Twilio-Signature), checked here"))]
_VERDICTS = {
    "delivered": Verdict.DELIVERED,
    "complained": Verdict.COMPLAINT,
    "failed": Verdict.FAILED,
}


class AppliedOut(BaseModel):
    """What one recipient's feedback did."""

    verdict: str
    message_id: str | None
    address: str | None  # masked
    events: int
    suppressed: bool
    opted_out: bool
    note: str | None


class ReportOut(BaseModel):
    """A bounce or complaint message, parsed and applied."""

    report_type: str
    original_message_id: str | None
    reporter: str | None
    results: list[AppliedOut]


class CallbackOut(BaseModel):
    """A provider callback, applied (``results`` is empty for a status that is not final)."""

    results: list[AppliedOut]


class ProviderEventIn(BaseModel):
    """One provider event about one message (or, without a message id, one address)."""

    type: Literal["delivered", "bounced", "complained", "failed"]
    provider: str = Field(min_length=1, max_length=32, examples=["smtp"])
    provider_message_id: str | None = Field(default=None, max_length=200)
    channel: Literal["email", "sms", "line", "push", "webhook"] = "email"
    recipient: str | None = Field(default=None, max_length=320)
    bounce_type: Literal["hard", "soft"] = "hard"
    status: str | None = Field(default=None, max_length=64, examples=["5.1.1"])
    diagnostic: str | None = Field(default=None, max_length=2000)
    occurred_at: datetime | None = None

    @model_validator(mode="after")
    def _names_something(self) -> ProviderEventIn:
        if not self.provider_message_id and not self.recipient:
            raise ValueError("give provider_message_id, recipient or both")
        return self


class ProviderEventsIn(BaseModel):
    """A batch of provider events."""

    events: list[ProviderEventIn] = Field(min_length=1, max_length=1000)


def _out(applied: Applied) -> AppliedOut:
    return AppliedOut(
        verdict=applied.verdict.value,
        message_id=str(applied.message_id) if applied.message_id else None,
        address=applied.address,
        events=applied.events,
        suppressed=applied.suppressed,
        opted_out=applied.opted_out,
        note=applied.note,
    )


async def _read_capped(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidInput(Problem("too_large", f"the message exceeds {limit} bytes", "body"))
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/reports",
    response_model=ReportOut,
    dependencies=_Admin,
    summary="Apply a raw bounce (DSN) or complaint (ARF) message",
    openapi_extra={"requestBody": {"content": {"message/rfc822": {"schema": {"type": "string"}}}}},
)
async def post_report(workspace: str, request: Request, db: Db) -> ReportOut:
    """Parse the RFC 822 body and apply it; 400 ``not_a_report`` when it is neither kind."""
    raw = await _read_capped(request, MAX_REPORT_BYTES)
    if not raw.strip():
        raise InvalidInput(Problem("not_a_report", "the body is empty: send one RFC 822 message"))
    return await run_in_threadpool(_apply_report, db, workspace, raw)


def _apply_report(db: Database, workspace: str, raw: bytes) -> ReportOut:
    with workspace_scope(db, workspace, write=True) as scope:
        settings = load_delivery_settings(scope.conn, scope.workspace_id)
        outcome = apply_raw_report(scope, raw, settings)
        report = outcome.report
        if report.report_type is None:
            raise InvalidInput(Problem("not_a_report", report.problem or "not a report", "body"))
        return ReportOut(
            report_type=report.report_type,
            original_message_id=report.original_message_id,
            reporter=report.reporter,
            results=[_out(a) for a in outcome.applied],
        )


@router.post(
    "/twilio",
    response_model=CallbackOut,
    dependencies=_SIGNED,
    summary="Twilio SMS status callback (signed with X-Twilio-Signature)",
    responses={403: {"description": "The signature does not match"}},
)
async def post_twilio(workspace: str, request: Request, db: Db) -> CallbackOut | JSONResponse:
    """Verify the signature, then record delivered / failed / bounced for the message."""
    body = await _read_capped(request, 64 * 1024)
    params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    signature = request.headers.get("X-Twilio-Signature", "")
    seen = str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    result = await run_in_threadpool(
        _apply_twilio, db, workspace, params, signature, (request.url.path + query, seen)
    )
    if result is None:
        message = "the X-Twilio-Signature is not this workspace's Twilio account's"
        return JSONResponse(error_body("invalid_signature", message), status_code=403)
    return result


def _apply_twilio(
    db: Database,
    workspace: str,
    params: Mapping[str, str],
    signature: str,
    where: tuple[str, str],
) -> CallbackOut | None:
    account = _twilio_account(db, workspace)
    # IMPORTANT: nothing is written for a request whose signature does not check.
    if account is None or not _signed(*account, params, signature, where):
        return None
    item = twilio_feedback(params)
    if item is None:
        return CallbackOut(results=[])
    with workspace_scope(db, workspace, write=True) as scope:
        applied = apply_feedback(scope, [item], account[1])
    if applied[0].message_id is None:
        log.warning("Twilio callback for unknown sid %s in %s", item.provider_message_id, workspace)
    return CallbackOut(results=[_out(a) for a in applied])


def _twilio_account(db: Database, workspace: str) -> tuple[ProviderConfig, DeliverySettings] | None:
    """The workspace's Twilio configuration; None (answered 403) when it has none."""
    try:
        with workspace_scope(db, workspace) as scope:
            config = load_provider(scope, "sms")
            settings = load_delivery_settings(scope.conn, scope.workspace_id)
    except NotFound as exc:
        # Answered like a bad signature, so unsigned callers cannot probe workspace names.
        log.warning("Twilio callback for %s refused: %s", workspace, exc)
        return None
    if config.provider != "twilio" or not config.secrets.get("auth_token"):
        log.warning("Twilio callback for %s refused: its SMS provider is not Twilio", workspace)
        return None
    return config, settings


def _signed(
    config: ProviderConfig,
    settings: DeliverySettings,
    params: Mapping[str, str],
    signature: str,
    where: tuple[str, str],
) -> bool:
    """Whether Twilio signed the request for any URL it may have been given."""
    path, seen = where
    token = str(config.secrets["auth_token"])
    urls = (
        str(config.settings.get("status_callback") or ""),
        settings.public_url.rstrip("/") + path,
        seen,
    )
    return any(verify_twilio_signature(token, u, params, signature) for u in urls if u)


@router.post(
    "/events",
    response_model=CallbackOut,
    dependencies=_Admin,
    summary="Apply provider events (delivered, bounced, complained, failed)",
)
def post_events(workspace: str, db: Db, body: Annotated[ProviderEventsIn, Body()]) -> CallbackOut:
    """Apply each event in order; unknown message ids still suppress a named recipient."""
    items = [_feedback(e) for e in body.events]
    with workspace_scope(db, workspace, write=True) as scope:
        settings = load_delivery_settings(scope.conn, scope.workspace_id)
        applied = apply_feedback(scope, items, settings)
    return CallbackOut(results=[_out(a) for a in applied])


def _feedback(event: ProviderEventIn) -> Feedback:
    if event.type == "bounced":
        verdict = Verdict.HARD_BOUNCE if event.bounce_type == "hard" else Verdict.SOFT_BOUNCE
    else:
        verdict = _VERDICTS[event.type]
    details = {k: v for k, v in (("status", event.status), ("diagnostic", event.diagnostic)) if v}
    return Feedback(
        verdict, Channel(event.channel), event.provider, event.provider_message_id,
        event.recipient, ensure_utc(event.occurred_at) if event.occurred_at else None,
        details=details,
        reason=event.diagnostic or event.status,
        evidence=f"{event.provider} event webhook",
    )  # fmt: skip
