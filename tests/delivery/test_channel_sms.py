"""The SMS channel against a local server speaking Twilio's Messages API; signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator

import pytest

from kizuna.channels.base import ChannelSender, Outcome, ProviderConfig
from kizuna.channels.sms import open_channel, twilio_signature, verify_twilio_signature
from kizuna.errors import InvalidInput
from tests.delivery.providers import outgoing
from tests.delivery.providers.twilio_server import TwilioServer, twilio_error


@pytest.fixture
def twilio() -> Iterator[TwilioServer]:
    with TwilioServer() as server:
        yield server


def _channel(server: TwilioServer, **settings: object) -> ChannelSender:
    config = ProviderConfig(
        "sms",
        "twilio",
        {"base_url": server.url, "from_number": "+815012345678", **settings},
        {"account_sid": server.account_sid, "auth_token": server.auth_token},
    )
    return open_channel(config)


@pytest.fixture
def channel(twilio: TwilioServer) -> Iterator[ChannelSender]:
    sender = _channel(twilio)
    yield sender
    sender.close()


def _sms(to: str, text: str = "【ショップ】ご注文の商品を発送しました"):
    return outgoing(to, channel="sms", text=text)


def test_sends_a_form_with_basic_auth_and_keeps_the_sid(twilio, channel):
    message = _sms("+819012345678")
    [handover] = channel.send([message])
    assert handover.message_id == message.message_id
    assert handover.outcome is Outcome.SENT
    [stored] = twilio.messages
    assert stored["To"] == "+819012345678"
    assert stored["From"] == "+815012345678"
    assert stored["Body"] == "【ショップ】ご注文の商品を発送しました"
    assert handover.provider_message_id == stored["sid"]
    assert handover.provider_message_id.startswith("SM")
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


def test_messaging_service_and_status_callback(twilio):
    sender = _channel(
        twilio,
        from_number=None,
        messaging_service_sid="MG" + "2" * 32,
        status_callback="https://shop.example.jp/v1/feedback/twilio",
    )
    try:
        [handover] = sender.send([_sms("+819011112222")])
    finally:
        sender.close()
    assert handover.outcome is Outcome.SENT
    [stored] = twilio.messages
    assert stored["MessagingServiceSid"] == "MG" + "2" * 32
    assert "From" not in stored
    assert stored["StatusCallback"] == "https://shop.example.jp/v1/feedback/twilio"


def test_dead_numbers_are_unreachable(twilio, channel):
    twilio.fail["+819000000001"] = twilio_error(21614)
    twilio.fail["+819000000002"] = twilio_error(21610)
    invalid, landline, stopped = channel.send(
        [_sms("090-1234-5678"), _sms("+819000000001"), _sms("+819000000002")]
    )
    assert invalid.outcome is Outcome.UNREACHABLE
    assert '"code": 21211' in (invalid.detail or "")
    # Twilio echoes the number; the log keeps it masked
    assert "090-1234-5678" not in (invalid.detail or "")
    assert "The 'To' number 090-****-5678 is not a valid phone number." in (invalid.detail or "")
    assert landline.outcome is Outcome.UNREACHABLE
    assert stopped.outcome is Outcome.UNREACHABLE
    assert twilio.messages == []


def test_other_client_errors_fail_with_twilios_body_verbatim(channel):
    [handover] = channel.send([_sms("+819012345678", "あ" * 1601)])
    assert handover.outcome is Outcome.FAILED
    assert handover.detail == (
        'HTTP 400: {"code": 21617, "message": "The concatenated message body exceeds the 1600 '
        'character limit.", "more_info": "https://www.twilio.com/docs/errors/21617", '
        '"status": 400}'
    )


def test_rate_limits_server_errors_and_refused_credentials_are_retried(twilio):
    twilio.fail["+819000000003"] = twilio_error(20429, 429, {"Retry-After": "7"})
    twilio.fail["+819000000004"] = twilio_error(20500, 500)
    sender = _channel(twilio)
    wrong = open_channel(
        ProviderConfig(
            "sms",
            "twilio",
            {"base_url": twilio.url, "from_number": "+815012345678"},
            {"account_sid": twilio.account_sid, "auth_token": "wrong"},
        )
    )
    try:
        rate, error = sender.send([_sms("+819000000003"), _sms("+819000000004")])
        [refused] = wrong.send([_sms("+819012345678")])
    finally:
        sender.close()
        wrong.close()
    assert (rate.outcome, rate.retry_after) == (Outcome.RETRY, 7)
    assert error.outcome is Outcome.RETRY
    assert refused.outcome is Outcome.RETRY
    assert '"code": 20003' in (refused.detail or "")
    assert twilio.messages == []


def test_a_batch_is_sent_concurrently_one_handover_each(twilio, channel):
    batch = [_sms(f"+8190{n:08d}", f"{n}") for n in range(30)]
    handovers = channel.send(batch)
    assert sorted(h.message_id for h in handovers) == sorted(m.message_id for m in batch)
    assert {h.outcome for h in handovers} == {Outcome.SENT}
    assert len({m["sid"] for m in twilio.messages}) == 30


def test_settings_need_a_sender_and_credentials():
    with pytest.raises(InvalidInput) as no_sender:
        open_channel(ProviderConfig("sms", "twilio", {}, {"account_sid": "AC", "auth_token": "t"}))
    assert no_sender.value.problems[0].field == "settings"
    with pytest.raises(InvalidInput) as no_token:
        open_channel(
            ProviderConfig("sms", "twilio", {"from_number": "+815012345678"}, {"account_sid": "AC"})
        )
    assert no_token.value.problems[0].field == "secrets.auth_token"


# --- signatures ------------------------------------------------------------------


URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def _documented_algorithm(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's steps, spelled out: URL, then each name+value sorted by name; HMAC-SHA1; base64."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_signature_matches_the_documented_algorithm_and_example():
    expected = _documented_algorithm("12345", URL, PARAMS)
    assert twilio_signature("12345", URL, PARAMS) == expected
    # the value Twilio's own documentation gives for this example
    assert expected == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert verify_twilio_signature("12345", URL, PARAMS, expected)


def test_a_status_callback_verifies_and_tampering_fails():
    url = "https://shop.example.jp/v1/feedback/twilio"
    params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered", "To": "+819012345678"}
    signature = _documented_algorithm("secret-token", url, params)
    assert verify_twilio_signature("secret-token", url, params, signature)
    assert not verify_twilio_signature("other-token", url, params, signature)
    assert not verify_twilio_signature(
        "secret-token", url, {**params, "MessageStatus": "failed"}, signature
    )
    assert not verify_twilio_signature("secret-token", url, {**params, "Extra": "x"}, signature)
    assert not verify_twilio_signature("secret-token", url + "?x=1", params, signature)
    assert not verify_twilio_signature("secret-token", url, params, "")
    assert not verify_twilio_signature("secret-token", url, params, signature[:-2] + "AA")


def test_signature_accepts_the_url_with_or_without_its_default_port():
    params = {"MessageStatus": "sent"}
    signed_with_port = _documented_algorithm("t", "https://shop.example.jp:443/cb", params)
    assert verify_twilio_signature("t", "https://shop.example.jp/cb", params, signed_with_port)
    signed_without = _documented_algorithm("t", "https://shop.example.jp/cb", params)
    assert verify_twilio_signature("t", "https://shop.example.jp:443/cb", params, signed_without)
    assert not verify_twilio_signature(
        "t", "https://shop.example.jp:8443/cb", params, signed_without
    )


def test_repeated_parameters_sign_each_value_in_order():
    token, url = "t", "https://shop.example.jp/cb"
    data = url + "Mediaa" + "Mediab" + "To+81"
    expected = base64.b64encode(hmac.new(b"t", data.encode(), hashlib.sha1).digest()).decode()
    assert twilio_signature(token, url, {"To": "+81", "Media": ["b", "a"]}) == expected
