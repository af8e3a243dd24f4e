"""The LINE channel against a local server that speaks the Messaging API."""

from __future__ import annotations

import dataclasses
import socket
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from kizuna.channels.base import ChannelSender, Outcome, ProviderConfig
from kizuna.channels.line import open_channel, retry_key
from kizuna.channels.registry import open_channel as open_registered
from kizuna.errors import InvalidInput
from tests.delivery.providers import WORKSPACE, outgoing
from tests.delivery.providers._base import json_reply
from tests.delivery.providers.line_server import MULTICAST, PUSH, LineServer, user_id


@pytest.fixture
def line() -> Iterator[LineServer]:
    with LineServer() as server:
        yield server


def _channel(server: LineServer, **settings: object) -> ChannelSender:
    config = ProviderConfig(
        "line", "line", {"base_url": server.url, **settings}, {"channel_access_token": server.token}
    )
    return open_channel(config)


@pytest.fixture
def channel(line: LineServer) -> Iterator[ChannelSender]:
    sender = _channel(line)
    yield sender
    sender.close()


def _line(address: str, text: str = "こんにちは", **kw: object):
    return outgoing(address, channel="line", text=text, **kw)


def test_push_sends_text_with_token_and_a_stable_retry_key(line, channel):
    message = _line(user_id(1), "山田様、春のセールのお知らせです")
    [handover] = channel.send([message])
    assert handover.message_id == message.message_id
    assert handover.outcome is Outcome.SENT
    [request] = line.requests
    assert request.path == PUSH
    assert request.headers["authorization"] == f"Bearer {line.token}"
    assert request.json() == {
        "to": user_id(1),
        "messages": [{"type": "text", "text": "山田様、春のセールのお知らせです"}],
    }
    key = request.headers["x-line-retry-key"]
    assert key == retry_key(WORKSPACE, [message.idempotency_key])
    assert uuid.UUID(key).version == 5
    # the provider id is the id LINE gave the sent message
    assert handover.provider_message_id is not None
    assert handover.provider_message_id.isdigit()


def test_retry_key_depends_on_workspace_and_keys_only():
    other = uuid.uuid4()
    assert retry_key(WORKSPACE, ["a", "b"]) == retry_key(WORKSPACE, ["b", "a"])
    assert retry_key(WORKSPACE, ["a"]) != retry_key(WORKSPACE, ["b"])
    assert retry_key(WORKSPACE, ["a"]) != retry_key(other, ["a"])


def test_payload_messages_are_sent_as_given(line, channel):
    objects = [
        {"type": "sticker", "packageId": "446", "stickerId": "1988"},
        {"type": "text", "text": "ご購入ありがとうございました"},
    ]
    [handover] = channel.send([_line(user_id(2), payload={"messages": objects})])
    assert handover.outcome is Outcome.SENT
    assert line.requests[0].json()["messages"] == objects
    # two message objects, two LINE message ids
    assert len(handover.provider_message_id.split(",")) == 2


def test_identical_content_goes_by_multicast_personalized_by_push(line, channel):
    same = [_line(user_id(n), "週末限定クーポン") for n in range(3)]
    personal = [_line(user_id(10), "田中様へ"), _line(user_id(11), "佐藤様へ")]
    group_chat = _line("C" + "a" * 32, "週末限定クーポン")
    handovers = channel.send([*same, *personal, group_chat])
    assert {h.outcome for h in handovers} == {Outcome.SENT}
    assert sorted(h.message_id for h in handovers) == sorted(
        m.message_id for m in [*same, *personal, group_chat]
    )
    paths = Counter(r.path for r in line.requests)
    assert paths == {MULTICAST: 1, PUSH: 3}
    [multicast] = [r for r in line.requests if r.path == MULTICAST]
    assert sorted(multicast.json()["to"]) == [user_id(n) for n in range(3)]
    expected_key = retry_key(WORKSPACE, [m.idempotency_key for m in same])
    assert multicast.headers["x-line-retry-key"] == expected_key
    assert Counter(d.to for d in line.deliveries) == Counter(
        [user_id(0), user_id(1), user_id(2), user_id(10), user_id(11), "C" + "a" * 32]
    )


def test_multicast_is_split_at_500_ids(line, channel):
    batch = [_line(user_id(n), "新商品のお知らせ") for n in range(501)]
    handovers = channel.send(batch)
    assert len(handovers) == 501
    assert {h.outcome for h in handovers} == {Outcome.SENT}
    sizes = sorted(len(r.json()["to"]) if r.path == MULTICAST else 1 for r in line.requests)
    assert sizes == [1, 500]
    assert len({d.to for d in line.deliveries}) == 501


def test_one_user_twice_with_the_same_text_gets_both(line, channel):
    batch = [
        _line(user_id(1), "同じ文面"),
        _line(user_id(1), "同じ文面"),
        _line(user_id(2), "同じ文面"),
    ]
    handovers = channel.send(batch)
    assert {h.outcome for h in handovers} == {Outcome.SENT}
    assert Counter(d.to for d in line.deliveries) == {user_id(1): 2, user_id(2): 1}


@pytest.mark.parametrize("size", [1, 3])
def test_a_lost_answer_is_retried_with_the_same_key_and_sent_once(line, channel, size):
    batch = [_line(user_id(n), "お知らせ") for n in range(size)]
    line.lose_answer.add(user_id(0))
    first = channel.send(batch)
    assert {h.outcome for h in first} == {Outcome.RETRY}
    assert "HTTP 500" in (first[0].detail or "")
    # the pipeline retries the same messages later
    retried = [dataclasses.replace(m) for m in batch]
    second = channel.send(retried)
    assert {h.outcome for h in second} == {Outcome.SENT}
    assert all(h.provider_message_id for h in second)
    assert (
        line.requests[-1].headers["x-line-retry-key"]
        == line.requests[0].headers["x-line-retry-key"]
    )
    assert Counter(d.to for d in line.deliveries) == {user_id(n): 1 for n in range(size)}


def test_rate_limit_and_server_errors_are_retried(line, channel):
    line.fail[user_id(1)] = json_reply(429, {"message": "Too Many Requests"}, {"Retry-After": "30"})
    line.fail[user_id(2)] = json_reply(503, {"message": "Service Unavailable"})
    limited, unavailable = channel.send([_line(user_id(1), "a"), _line(user_id(2), "b")])
    assert limited.outcome is Outcome.RETRY
    assert limited.retry_after == 30
    assert limited.detail == 'HTTP 429: {"message": "Too Many Requests"}'
    assert unavailable.outcome is Outcome.RETRY
    assert unavailable.retry_after is None
    assert line.deliveries == []


def test_invalid_content_fails_with_lines_answer_verbatim(line, channel):
    [handover] = channel.send([_line(user_id(1), "x" * 5001)])
    assert handover.outcome is Outcome.FAILED
    assert handover.detail is not None
    assert handover.detail.startswith("HTTP 400: ")
    assert '"property": "messages[0].text"' in handover.detail


def test_a_bad_id_in_a_multicast_fails_alone(line, channel):
    good = [_line(user_id(n), "全員へ") for n in range(3)]
    bad = _line("Unot-a-user", "全員へ")
    handovers = {h.message_id: h for h in channel.send([*good, bad])}
    assert handovers[bad.message_id].outcome is Outcome.FAILED
    assert "to" in (handovers[bad.message_id].detail or "")
    assert {handovers[m.message_id].outcome for m in good} == {Outcome.SENT}
    assert sorted(d.to for d in line.deliveries) == [user_id(n) for n in range(3)]


def test_multicast_can_be_turned_off(line):
    sender = _channel(line, multicast=False)
    try:
        sender.send([_line(user_id(n), "同じ") for n in range(3)])
    finally:
        sender.close()
    assert {r.path for r in line.requests} == {PUSH}
    assert len({r.headers["x-line-retry-key"] for r in line.requests}) == 3


def test_a_refused_token_is_retried_not_failed(line):
    config = ProviderConfig("line", "line", {"base_url": line.url}, {"channel_access_token": "x"})
    sender = open_channel(config)
    try:
        [handover] = sender.send([_line(user_id(1))])
    finally:
        sender.close()
    assert handover.outcome is Outcome.RETRY
    assert handover.detail is not None and handover.detail.startswith("HTTP 401: ")


def test_connection_errors_become_retry_handovers():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ProviderConfig(
        "line",
        "line",
        {"base_url": f"http://127.0.0.1:{port}", "timeout": 2},
        {"channel_access_token": "t"},
    )
    sender = open_channel(config)
    try:
        handovers = sender.send([_line(user_id(1)), _line(user_id(2), "other")])
    finally:
        sender.close()
    assert {h.outcome for h in handovers} == {Outcome.RETRY}
    assert all("ConnectError" in (h.detail or "") for h in handovers)


def test_many_pushes_run_concurrently_one_handover_each(line, channel):
    batch = [_line(user_id(n), f"{n}番目のお客様へ") for n in range(40)]
    handovers = channel.send(batch)
    assert sorted(h.message_id for h in handovers) == sorted(m.message_id for m in batch)
    assert {h.outcome for h in handovers} == {Outcome.SENT}
    assert len(line.deliveries) == 40


def test_configuration_is_checked_when_opening(line):
    with pytest.raises(InvalidInput) as missing:
        open_channel(ProviderConfig("line", "line", {}, {}))
    assert missing.value.problems[0].field == "secrets.channel_access_token"
    with pytest.raises(InvalidInput) as bad:
        open_channel(
            ProviderConfig("line", "line", {"multicast_limit": 900}, {"channel_access_token": "t"})
        )
    assert bad.value.problems[0].field == "settings.multicast_limit"
    registered = open_registered(
        ProviderConfig("line", "line", {"base_url": line.url}, {"channel_access_token": line.token})
    )
    try:
        assert registered.provider == "line"
        assert registered.send([_line(user_id(3))])[0].outcome is Outcome.SENT
    finally:
        registered.close()


def test_unencodable_content_fails_alone(line, channel):
    broken = _line(user_id(1), payload={"messages": [{"type": "text", "text": object()}]})
    fine = [_line(user_id(n), "ok") for n in (2, 3)]
    handovers = {h.message_id: h for h in channel.send([broken, *fine])}
    assert handovers[broken.message_id].outcome is Outcome.FAILED
    assert "TypeError" in (handovers[broken.message_id].detail or "")
    assert {handovers[m.message_id].outcome for m in fine} == {Outcome.SENT}
