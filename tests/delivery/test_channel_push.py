"""The push channel against a local FCM HTTP v1 API and OAuth token endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kizuna.channels.base import ChannelSender, Outcome, ProviderConfig
from kizuna.channels.push import FCM_SCOPE, open_channel
from kizuna.clock import Clock, FixedClock, SystemClock
from kizuna.errors import InvalidInput
from tests.delivery.providers import outgoing
from tests.delivery.providers.fcm_server import FcmServer, fcm_error

PROJECT = "kizuna-shop-test"
EMAIL = "push@kizuna-shop-test.iam.gserviceaccount.com"


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fcm(key) -> Iterator[FcmServer]:
    with FcmServer(PROJECT, EMAIL, key.public_key()) as server:
        yield server


def _account(server: FcmServer, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "k1",
        "private_key": _pem(key),
        "client_email": EMAIL,
        "token_uri": server.token_uri,
    }


def _channel(
    server: FcmServer, key: rsa.RSAPrivateKey, clock: Clock | None = None
) -> ChannelSender:
    config = ProviderConfig(
        "push", "fcm", {"base_url": server.url}, {"service_account": _account(server, key)}
    )
    return open_channel(config, clock=clock)


@pytest.fixture
def channel(fcm, key) -> Iterator[ChannelSender]:
    sender = _channel(fcm, key)
    yield sender
    sender.close()


def _push(token: str, **kw: Any):
    kw.setdefault("subject", "カートに商品が残っています")
    kw.setdefault("text", "お買い忘れはありませんか？")
    return outgoing(token, channel="push", **kw)


def test_sends_notification_and_string_data(fcm, channel):
    message = _push(
        "device-token-1",
        payload={
            "url": "https://shop.example.jp/cart",
            "count": 2,
            "android": {"priority": "high"},
        },
    )
    [handover] = channel.send([message])
    assert handover.message_id == message.message_id
    assert handover.outcome is Outcome.SENT
    [sent] = fcm.messages
    assert handover.provider_message_id == sent["name"]
    assert sent["name"].startswith(f"projects/{PROJECT}/messages/")
    assert sent["token"] == "device-token-1"
    assert sent["notification"] == {
        "title": "カートに商品が残っています",
        "body": "お買い忘れはありませんか？",
    }
    assert sent["data"] == {
        "url": "https://shop.example.jp/cart",
        "count": "2",
        "kizuna_message_id": str(message.message_id),
    }
    assert sent["android"] == {"priority": "high"}


def test_payload_data_is_used_when_given(fcm, channel):
    channel.send(
        [_push("device-token-2", subject=None, text="", payload={"data": {"coupon": "SPRING"}})]
    )
    [sent] = fcm.messages
    assert "notification" not in sent
    assert sent["data"]["coupon"] == "SPRING"


def test_access_token_comes_from_a_signed_assertion_and_is_cached(fcm, channel):
    first = channel.send([_push(f"device-{n}") for n in range(5)])
    second = channel.send([_push("device-9")])
    assert {h.outcome for h in [*first, *second]} == {Outcome.SENT}
    [claims] = fcm.assertions  # one grant for both batches
    assert claims["iss"] == EMAIL
    assert claims["aud"] == fcm.token_uri
    assert claims["scope"] == FCM_SCOPE
    grant = next(r for r in fcm.requests if r.path == "/token")
    assertion = dict(p.split("=", 1) for p in grant.body.decode().split("&"))["assertion"]
    assert jwt.get_unverified_header(assertion)["kid"] == "k1"


def test_token_is_renewed_shortly_before_it_expires(key):
    clock = FixedClock(SystemClock().now())
    with FcmServer(PROJECT, EMAIL, key.public_key(), clock) as server:
        sender = _channel(server, key, clock)
        try:
            sender.send([_push("device-1")])
            clock.advance(timedelta(minutes=50))
            sender.send([_push("device-2")])
            assert len(server.assertions) == 1  # still fresh
            clock.advance(timedelta(minutes=6))  # within five minutes of expiry
            [late] = sender.send([_push("device-3")])
        finally:
            sender.close()
    assert late.outcome is Outcome.SENT
    assert len(server.assertions) == 2


def test_a_refused_token_is_refreshed_once_and_the_message_sent(fcm, channel):
    channel.send([_push("device-1")])
    fcm.revoke_tokens()
    [handover] = channel.send([_push("device-2")])
    assert handover.outcome is Outcome.SENT
    assert len(fcm.assertions) == 2
    paths = [r.path for r in fcm.requests]
    assert paths.count("/token") == 2
    assert len(fcm.messages) == 2


def test_unregistered_tokens_are_unreachable(fcm, channel):
    fcm.unregistered.add("old-device")
    [handover] = channel.send([_push("old-device")])
    assert handover.outcome is Outcome.UNREACHABLE
    assert handover.detail is not None
    assert handover.detail.startswith("HTTP 404: ")
    assert (
        json.loads(handover.detail.removeprefix("HTTP 404: "))["error"]["details"][0]["errorCode"]
        == "UNREGISTERED"
    )


def test_unregistered_in_a_400_is_unreachable_too(fcm, channel):
    fcm.fail["gone"] = fcm_error(400, "INVALID_ARGUMENT", "not registered", "UNREGISTERED")
    [handover] = channel.send([_push("gone")])
    assert handover.outcome is Outcome.UNREACHABLE


def test_invalid_requests_fail_and_quota_or_outage_retry(fcm, channel):
    fcm.fail["busy"] = fcm_error(
        429, "RESOURCE_EXHAUSTED", "Quota exceeded", "QUOTA_EXCEEDED", {"Retry-After": "12"}
    )
    fcm.fail["down"] = fcm_error(
        503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"
    )
    fcm.fail["mismatch"] = fcm_error(
        403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"
    )
    invalid, busy, down, mismatch = channel.send(
        [_push("bad-token"), _push("busy"), _push("down"), _push("mismatch")]
    )
    assert invalid.outcome is Outcome.FAILED
    assert "not a valid FCM registration token" in (invalid.detail or "")
    assert (busy.outcome, busy.retry_after) == (Outcome.RETRY, 12)
    assert down.outcome is Outcome.RETRY
    assert mismatch.outcome is Outcome.FAILED  # a wrong project must not drop tokens
    assert fcm.messages == []


def test_a_failing_token_endpoint_retries_every_message(fcm):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sender = _channel(fcm, stranger)  # signs with a key Google does not know
    try:
        handovers = sender.send([_push("device-1"), _push("device-2")])
    finally:
        sender.close()
    assert {h.outcome for h in handovers} == {Outcome.RETRY}
    assert all("token endpoint: HTTP 400" in (h.detail or "") for h in handovers)
    assert all("invalid_grant" in (h.detail or "") for h in handovers)
    assert fcm.messages == []


def test_service_account_is_checked_when_opening(fcm, key):
    account = _account(fcm, key)
    as_text = open_channel(
        ProviderConfig(
            "push", "fcm", {"base_url": fcm.url}, {"service_account": json.dumps(account)}
        )
    )
    try:
        assert as_text.send([_push("device-1")])[0].outcome is Outcome.SENT
    finally:
        as_text.close()
    with pytest.raises(InvalidInput) as broken:
        open_channel(
            ProviderConfig(
                "push", "fcm", {}, {"service_account": {**account, "private_key": "nope"}}
            )
        )
    assert broken.value.problems[0].field == "secrets.service_account"
    with pytest.raises(InvalidInput) as no_project:
        open_channel(
            ProviderConfig("push", "fcm", {}, {"service_account": {**account, "project_id": None}})
        )
    assert no_project.value.problems[0].field == "settings.project_id"
