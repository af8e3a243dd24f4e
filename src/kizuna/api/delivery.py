"""Delivery API: providers, delivery rules, seed addresses, send intents and the message log.

Provider secrets go in and never come out. Seed addresses are listed masked.
Send intents are checked whole before any is written: one bad intent answers 400
naming it (``intents[2]``), and nothing of the request is queued.

Reading needs ``delivery.read``; rules, providers and seeds ``delivery.admin``;
queueing messages ``messages.send``; test sends ``messages.test``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field

from kizuna.api.deps import get_db, require
from kizuna.delivery.settings import (
    DeliverySettings,
    load_delivery_settings,
    parse_delivery_settings,
    save_delivery_settings,
)
from kizuna.delivery.test_sends import queue_test_send
from kizuna.security.masking import mask_email, mask_phone
from kizuna.segments.report import workspace_scope
from kizuna.store.database import Database
from kizuna.store.messages import MessageRecord, SendIntent, enqueue, get_message, list_messages
from kizuna.store.profiles import find_customer_id
from kizuna.store.providers import configure_provider, list_providers
from kizuna.store.seed_addresses import add_seed_address, list_seed_addresses

__all__ = ["router"]

router = APIRouter(prefix="/api/workspaces/{workspace}", tags=["delivery"])
Db = Annotated[Database, Depends(get_db)]
_READ = [Depends(require("delivery.read"))]
_ADMIN = [Depends(require("delivery.admin"))]
_SEND = [Depends(require("messages.send"))]
_TEST = [Depends(require("messages.test"))]


class ProviderIn(BaseModel):
    """How a channel reaches its provider."""

    provider: str = Field(examples=["smtp"])
    settings: dict[str, Any] = Field(default_factory=dict, examples=[{"host": "127.0.0.1"}])
    secrets: dict[str, Any] = Field(default_factory=dict, examples=[{"password": "…"}])


class ProviderOut(BaseModel):
    """A configured channel, without its secrets."""

    channel: str
    provider: str
    settings: dict[str, Any]
    paused_until: datetime | None
    error_streak: int


class SeedIn(BaseModel):
    """A test recipient."""

    channel: str = Field(examples=["email"])
    address: str = Field(examples=["qa@example.com"])
    label: str | None = None


class SeedOut(BaseModel):
    """A test recipient, masked."""

    channel: str
    address: str
    label: str | None


class IntentIn(BaseModel):
    """A request to send one customer one template (e.g. an order confirmation)."""

    customer: str = Field(description="Kizuna id, shop customer id, email or phone")
    channel: str = Field(examples=["email"])
    template_key: str | None = None
    idempotency_key: str = Field(description="The same key is sent once", examples=["order:A-1"])
    purpose: str = Field(default="transactional", examples=["transactional"])
    topic: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    not_before: datetime | None = None


class MessageOut(BaseModel):
    """One message of the log."""

    message_id: uuid.UUID
    customer_id: uuid.UUID
    channel: str
    purpose: str
    template_key: str | None
    source: str
    source_id: str | None
    status: str
    reason: str | None
    attempts: int
    provider: str | None
    provider_message_id: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None


def _message_out(m: MessageRecord) -> MessageOut:
    return MessageOut(
        message_id=m.message_id, customer_id=m.customer_id, channel=m.channel,
        purpose=m.purpose, template_key=m.template_key, source=m.source_kind,
        source_id=m.source_id, status=m.status, reason=m.reason, attempts=m.attempts,
        provider=m.provider, provider_message_id=m.provider_message_id,
        created_at=m.created_at, sent_at=m.sent_at, delivered_at=m.delivered_at,
    )  # fmt: skip


@router.get(
    "/delivery/settings",
    dependencies=_READ,
    response_model=DeliverySettings,
    summary="Delivery rules",
)
def get_settings(workspace: str, db: Db) -> DeliverySettings:
    """Frequency caps, quiet hours, sender (legal footer), topics, retries, tracking."""
    with workspace_scope(db, workspace) as scope:
        return load_delivery_settings(scope.conn, scope.workspace_id)


@router.put(
    "/delivery/settings",
    dependencies=_ADMIN,
    response_model=DeliverySettings,
    summary="Set delivery rules",
)
def put_settings(
    workspace: str, db: Db, body: Annotated[dict[str, Any], Body()]
) -> DeliverySettings:
    """Replace the delivery rules; 400 names each bad field."""
    parsed = parse_delivery_settings(body)
    with workspace_scope(db, workspace, write=True) as scope:
        save_delivery_settings(scope.conn, scope.workspace_id, parsed)
    return parsed


@router.get(
    "/delivery/providers", dependencies=_READ, response_model=list[ProviderOut], summary="Providers"
)
def get_providers(workspace: str, db: Db) -> list[ProviderOut]:
    """Each channel's provider and health (secrets are never returned)."""
    with workspace_scope(db, workspace) as scope:
        return [ProviderOut(**p) for p in list_providers(scope.conn, scope.workspace_id)]


@router.put(
    "/delivery/providers/{channel}", dependencies=_ADMIN, summary="Set a channel's provider"
)
def put_provider(workspace: str, channel: str, db: Db, body: ProviderIn) -> dict[str, str]:
    """Point a channel at a provider (smtp, line, twilio, fcm, webhook, null)."""
    with workspace_scope(db, workspace, write=True) as scope:
        configure_provider(scope, channel, body.provider, body.settings, body.secrets)
    return {"channel": channel, "provider": body.provider}


@router.get(
    "/delivery/seeds", dependencies=_READ, response_model=list[SeedOut], summary="Seed addresses"
)
def get_seeds(workspace: str, db: Db) -> list[SeedOut]:
    """Test recipients, masked."""
    with workspace_scope(db, workspace) as scope:
        return [
            SeedOut(channel=s.channel, address=_mask(s.channel, s.address), label=s.label)
            for s in list_seed_addresses(scope)
        ]


@router.post("/delivery/seeds", dependencies=_ADMIN, status_code=201, summary="Add a seed address")
def post_seed(workspace: str, db: Db, body: SeedIn) -> dict[str, str]:
    """Add a test recipient (test sends go there; a development workspace sends only there)."""
    with workspace_scope(db, workspace, write=True) as scope:
        add_seed_address(scope, body.channel, body.address, body.label)
    return {"channel": body.channel, "address": _mask(body.channel, body.address)}


def _mask(channel: str, address: str) -> str:
    if channel == "email":
        return mask_email(address)
    if channel == "sms":
        return mask_phone(address)
    return address[:4] + "…"


@router.post("/messages", dependencies=_SEND, status_code=202, summary="Queue messages")
def post_messages(workspace: str, db: Db, body: list[IntentIn]) -> dict[str, list[uuid.UUID]]:
    """Queue send intents (all or none); a repeated idempotency key returns its message."""
    with workspace_scope(db, workspace, write=True) as scope:
        intents = [
            SendIntent(
                customer_id=find_customer_id(scope.conn, scope.cipher, scope.workspace_id,
                                             i.customer),
                channel=i.channel, template_key=i.template_key,
                idempotency_key=i.idempotency_key, purpose=i.purpose, topic=i.topic,
                params=i.params, source_kind="api", not_before=i.not_before,
            )
            for i in body
        ]  # fmt: skip
        return {"message_ids": enqueue(scope, intents)}


class TestSendIn(BaseModel):
    """Which template to render for which customer, for the seed list."""

    template_key: str
    customer: str = Field(description="Render for this customer: id, shop id, email or phone")


@router.post(
    "/delivery/test-send", dependencies=_TEST, status_code=202, summary="Test send to the seed list"
)
def post_test_send(workspace: str, db: Db, body: TestSendIn) -> dict[str, list[uuid.UUID]]:
    """Queue the template, rendered for the customer, to every seed address of its channel."""
    with workspace_scope(db, workspace, write=True) as scope:
        customer_id = find_customer_id(scope.conn, scope.cipher, scope.workspace_id, body.customer)
        return {"message_ids": queue_test_send(scope, body.template_key, customer_id)}


@router.get(
    "/messages", dependencies=_READ, response_model=list[MessageOut], summary="The message log"
)
def get_messages(
    workspace: str,
    db: Db,
    status: Annotated[str | None, Query(description="e.g. failed, skipped, dead")] = None,
    customer: Annotated[str | None, Query(description="id, shop id, email or phone")] = None,
    source_id: Annotated[str | None, Query(description="a campaign or scenario")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[MessageOut]:
    """The newest messages, filtered; reasons say why a message was skipped or failed."""
    with workspace_scope(db, workspace) as scope:
        customer_id = (
            find_customer_id(scope.conn, scope.cipher, scope.workspace_id, customer)
            if customer
            else None
        )
        found = list_messages(scope, status=status, customer_id=customer_id,
                              source_id=source_id, limit=limit)  # fmt: skip
        return [_message_out(m) for m in found]


@router.get(
    "/messages/{message_id}", dependencies=_READ, response_model=MessageOut, summary="One message"
)
def get_one_message(workspace: str, message_id: uuid.UUID, db: Db) -> MessageOut:
    """One message with its status, reason and provider id."""
    with workspace_scope(db, workspace) as scope:
        return _message_out(get_message(scope, message_id))
