"""Webhooks: a signed JSON POST per message to the shop's own endpoint.

Settings: ``url`` (where to post when the message's address is not itself an
``http(s)`` URL), ``headers`` (fixed extra headers), ``timeout``,
``concurrency``. Secret: ``signing_secret``.

The body is ``{"message_id", "workspace_id", "customer_id", "purpose",
"sent_at", "payload"}`` with ``payload`` = ``Content.payload``. Headers:
``Content-Type: application/json``, ``Idempotency-Key`` (the message id, the
same on every retry: receivers should drop a second delivery of one id),
``X-Kizuna-Timestamp`` (Unix seconds) and ``X-Kizuna-Signature:
sha256=<hex>``, the HMAC-SHA256 under the signing secret of the timestamp, a
dot, and the raw body bytes.

A receiver checks a delivery with::

    from kizuna.channels.webhook import verify_webhook_signature

    ok = verify_webhook_signature(
        secret, request.headers["X-Kizuna-Timestamp"], raw_body,
        request.headers["X-Kizuna-Signature"], tolerance=300,
    )

which compares in constant time and refuses timestamps more than ``tolerance``
seconds away from now (a replayed old delivery). Sign the raw bytes received,
never re-serialized JSON.

Answers: 2xx → SENT; 401, 408, 429, 5xx, timeouts and connection errors →
RETRY (``Retry-After`` kept); redirects are not followed and, like other 4xx,
→ FAILED with the body verbatim.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import Field

from kizuna.channels.base import ChannelSender, Handover, Outcome, Outgoing, ProviderConfig
from kizuna.channels.http import (
    HttpChannelSettings,
    HttpPool,
    handovers,
    response_detail,
    retry_after,
    status_outcome,
)
from kizuna.channels.settings import parse_settings, require_secret
from kizuna.clock import Clock, SystemClock

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookChannel",
    "WebhookSettings",
    "open_channel",
    "verify_webhook_signature",
    "webhook_signature",
]

SIGNATURE_HEADER = "X-Kizuna-Signature"
TIMESTAMP_HEADER = "X-Kizuna-Timestamp"


class WebhookSettings(HttpChannelSettings):
    """A workspace's webhook settings."""

    base_url: str = ""
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``timestamp.body`` under ``secret``."""
    signed = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_webhook_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    tolerance: float = 300,
    *,
    clock: Clock | None = None,
) -> bool:
    """Whether ``header`` signs ``body`` at ``timestamp``, within ``tolerance`` seconds of now."""
    try:
        at = int(timestamp)
    except (TypeError, ValueError):
        return False
    now = (clock or SystemClock()).now().timestamp()
    if abs(now - at) > tolerance:
        return False
    expected = webhook_signature(secret, str(at), body)
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def _destination(message: Outgoing, default: str | None) -> str | None:
    if message.address.startswith(("https://", "http://")):
        return message.address
    return default


class WebhookChannel:
    """Posts each message, signed, to its webhook URL; a few in flight."""

    provider = "webhook"
    max_batch = 200

    def __init__(self, settings: WebhookSettings, secret: str, clock: Clock) -> None:
        self._settings = settings
        self._secret = secret
        self._clock = clock
        self._http = HttpPool(settings, settings.headers)

    def send(self, batch: Sequence[Outgoing]) -> list[Handover]:
        """Post each message; one Handover each."""
        return self._http.run(self._deliver, [[m] for m in batch])

    def close(self) -> None:
        """Close connections."""
        self._http.close()

    def _body(self, message: Outgoing, sent_at: str) -> bytes:
        envelope: dict[str, Any] = {
            "message_id": str(message.message_id),
            "workspace_id": str(message.workspace_id),
            "customer_id": str(message.customer_id),
            "purpose": message.purpose,
            "sent_at": sent_at,
            "payload": dict(message.content.payload),
        }
        return orjson.dumps(envelope)

    def _deliver(self, group: Sequence[Outgoing]) -> list[Handover]:
        message = group[0]
        url = _destination(message, self._settings.url)
        if url is None:
            return handovers(group, Outcome.FAILED, detail="no webhook URL: set settings.url")
        now = self._clock.now()
        timestamp = str(int(now.timestamp()))
        body = self._body(message, now.isoformat())
        headers = {
            **message.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": str(message.message_id),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: webhook_signature(self._secret, timestamp, body),
        }
        response = self._http.client.post(url, content=body, headers=headers)
        outcome = status_outcome(response.status_code)
        if outcome is Outcome.SENT:
            return handovers(group, outcome)
        wait = retry_after(response, self._clock) if outcome is Outcome.RETRY else None
        return handovers(group, outcome, detail=response_detail(response), retry_after=wait)


def open_channel(config: ProviderConfig, *, clock: Clock | None = None) -> ChannelSender:
    """A webhook channel from a workspace's settings and ``signing_secret``."""
    settings = parse_settings(WebhookSettings, config.settings)
    secret = require_secret(config.secrets, "signing_secret")
    return WebhookChannel(settings, secret, clock or SystemClock())
