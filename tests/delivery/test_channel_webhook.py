"""The webhook channel against a local receiver; the receiver-side signature check."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from kizuna.channels.base import ChannelSender, Outcome, ProviderConfig
from kizuna.channels.webhook import open_channel, verify_webhook_signature
from kizuna.clock import FixedClock, SystemClock
from kizuna.errors import InvalidInput
from tests.delivery.providers import WORKSPACE, outgoing
from tests.delivery.providers._base import Reply, json_reply
from tests.delivery.providers.webhook_server import WebhookServer

SECRET = "whsec-test-secret"


@pytest.fixture
def receiver() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


def _channel(receiver: WebhookServer, **settings: object) -> ChannelSender:
    config = ProviderConfig(
        "webhook",
        "webhook",
        {"url": receiver.url + "/hooks/kizuna", **settings},
        {"signing_secret": SECRET},
    )
    return open_channel(config)


@pytest.fixture
def channel(receiver: WebhookServer) -> Iterator[ChannelSender]:
    sender = _channel(receiver, headers={"X-Shop": "tokyo"})
    yield sender
    sender.close()


def _hook(address: str = "customer-ref", **kw: object):
    kw.setdefault("payload", {"event": "cart_abandoned", "items": [{"sku": "A-1", "qty": 2}]})
    return outgoing(address, channel="webhook", **kw)


def _expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp.body``, hex, as the module documents."""
    return (
        "sha256="
        + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    )


def test_posts_a_signed_json_envelope(receiver, channel):
    message = _hook(headers={"X-Trace": "abc"})
    [handover] = channel.send([message])
    assert handover.message_id == message.message_id
    assert handover.outcome is Outcome.SENT
    [request] = receiver.deliveries("/hooks/kizuna")
    body = request.json()
    assert body["message_id"] == str(message.message_id)
    assert body["workspace_id"] == str(WORKSPACE)
    assert body["customer_id"] == str(message.customer_id)
    assert body["purpose"] == "marketing"
    assert body["payload"] == {"event": "cart_abandoned", "items": [{"sku": "A-1", "qty": 2}]}
    assert "sent_at" in body
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == str(message.message_id)
    assert headers["x-shop"] == "tokyo"
    assert headers["x-trace"] == "abc"
    timestamp = headers["x-kizuna-timestamp"]
    assert headers["x-kizuna-signature"] == _expected_signature(SECRET, timestamp, request.body)
    assert verify_webhook_signature(SECRET, timestamp, request.body, headers["x-kizuna-signature"])


def test_receivers_refuse_forged_tampered_or_stale_deliveries(receiver, channel):
    channel.send([_hook()])
    [request] = receiver.requests
    timestamp = request.headers["x-kizuna-timestamp"]
    signature = request.headers["x-kizuna-signature"]
    assert not verify_webhook_signature("other-secret", timestamp, request.body, signature)
    assert not verify_webhook_signature(SECRET, timestamp, request.body + b" ", signature)
    assert not verify_webhook_signature(SECRET, str(int(timestamp) + 1), request.body, signature)
    assert not verify_webhook_signature(SECRET, "not-a-time", request.body, signature)
    assert not verify_webhook_signature(SECRET, timestamp, request.body, signature.upper())
    later = FixedClock(SystemClock().now() + timedelta(minutes=10))
    assert not verify_webhook_signature(
        SECRET, timestamp, request.body, signature, 300, clock=later
    )
    assert verify_webhook_signature(SECRET, timestamp, request.body, signature, 900, clock=later)


def test_the_address_url_wins_over_the_settings_url(receiver, channel):
    [handover] = channel.send([_hook(receiver.url + "/per-customer")])
    assert handover.outcome is Outcome.SENT
    assert len(receiver.deliveries("/per-customer")) == 1
    assert receiver.deliveries("/hooks/kizuna") == []


def test_no_url_anywhere_fails(receiver):
    sender = open_channel(ProviderConfig("webhook", "webhook", {}, {"signing_secret": SECRET}))
    try:
        [handover] = sender.send([_hook()])
    finally:
        sender.close()
    assert handover.outcome is Outcome.FAILED
    assert "no webhook URL" in (handover.detail or "")


def test_server_errors_are_retried_with_the_same_idempotency_key(receiver, channel):
    receiver.answers["/hooks/kizuna"] = [json_reply(502, {"error": "bad gateway"})]
    message = _hook()
    [first] = channel.send([message])
    [second] = channel.send([message])
    assert first.outcome is Outcome.RETRY
    assert first.detail == 'HTTP 502: {"error": "bad gateway"}'
    assert second.outcome is Outcome.SENT
    keys = {r.headers["idempotency-key"] for r in receiver.requests}
    assert keys == {str(message.message_id)}
    assert len(receiver.requests) == 2


def test_answers_map_to_outcomes(receiver, channel):
    receiver.answers["/ok"] = [Reply(204)]
    receiver.answers["/busy"] = [json_reply(429, {"error": "slow down"}, {"Retry-After": "5"})]
    receiver.answers["/bad"] = [Reply(422, b"unknown event type", {"Content-Type": "text/plain"})]
    receiver.answers["/moved"] = [Reply(302, b"", {"Location": "https://elsewhere.example/"})]
    ok, busy, bad, moved = channel.send(
        [_hook(receiver.url + p) for p in ("/ok", "/busy", "/bad", "/moved")]
    )
    assert ok.outcome is Outcome.SENT
    assert (busy.outcome, busy.retry_after) == (Outcome.RETRY, 5)
    assert (bad.outcome, bad.detail) == (Outcome.FAILED, "HTTP 422: unknown event type")
    assert moved.outcome is Outcome.FAILED  # redirects are not followed
    assert len(receiver.requests) == 4  # nothing went to the redirect's target


def test_a_timeout_is_retried(receiver):
    receiver.slow["/slow"] = 1.0
    sender = _channel(receiver, timeout=0.2)
    try:
        [handover] = sender.send([_hook(receiver.url + "/slow")])
    finally:
        sender.close()
    assert handover.outcome is Outcome.RETRY
    assert "Timeout" in (handover.detail or "")


def test_the_signing_secret_is_required():
    with pytest.raises(InvalidInput) as missing:
        open_channel(ProviderConfig("webhook", "webhook", {"url": "https://x.example"}, {}))
    assert missing.value.problems[0].field == "secrets.signing_secret"


def test_envelope_is_plain_json_for_any_receiver(receiver, channel):
    channel.send([_hook(payload={"message": "ご注文ありがとうございます", "total": 5500})])
    body = json.loads(receiver.requests[0].body)
    assert body["payload"] == {"message": "ご注文ありがとうございます", "total": 5500}
