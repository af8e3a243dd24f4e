"""A local LINE Messaging API: push and multicast, with retry keys, as documented.

Checks what LINE checks: the bearer token (401), a JSON body, ``to`` (a user,
group or room id for push; 1–500 user ids for multicast), 1–5 message objects
with a type (text needs 1–5,000 characters), and ``X-Line-Retry-Key`` (a UUID;
a key already accepted answers 409 with ``x-line-accepted-request-id`` and,
for push, the original ``sentMessages``). ``deliveries`` lists each accepted
(recipient, messages) pair.

Tell it to misbehave per recipient: ``fail[user_id] = Reply`` answers that
instead of accepting; ``lose_answer`` accepts the request but answers 500 once
(a lost answer, so the retry must get 409).
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass
from typing import Any

from tests.delivery.providers._base import ProviderServer, Received, Reply, json_reply

__all__ = ["Delivery", "LineServer", "user_id"]

PUSH = "/v2/bot/message/push"
MULTICAST = "/v2/bot/message/multicast"
_USER = re.compile(r"^U[0-9a-f]{32}$")
_ANY_TARGET = re.compile(r"^[UCR][0-9a-f]{32}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def user_id(n: int) -> str:
    """A well-formed LINE user id."""
    return f"U{n:032x}"


@dataclass(frozen=True)
class Delivery:
    """One message LINE accepted for one recipient."""

    to: str
    messages: list[Any]
    endpoint: str
    retry_key: str | None


class LineServer(ProviderServer):
    """The local LINE platform."""

    def __init__(self, token: str = "line-test-token") -> None:
        super().__init__()
        self.token = token
        self.deliveries: list[Delivery] = []
        self.fail: dict[str, Reply] = {}
        self.lose_answer: set[str] = set()
        self._accepted: dict[str, tuple[str, list[dict[str, str]]]] = {}
        self._ids = itertools.count(468789577898262530)

    def handle(self, received: Received) -> Reply:
        """Answer a push or multicast request."""
        endpoint = received.path
        if received.method != "POST" or endpoint not in (PUSH, MULTICAST):
            return json_reply(404, {"message": "Not found"})
        if received.headers.get("authorization") != f"Bearer {self.token}":
            return json_reply(
                401, {"message": "Authentication failed. Confirm that the access token is valid."}
            )
        if not received.headers.get("content-type", "").startswith("application/json"):
            return json_reply(415, {"message": "Unsupported Media Type"})
        try:
            body = received.json()
        except ValueError:
            return json_reply(400, {"message": "The request body could not be parsed as JSON"})
        key = received.headers.get("x-line-retry-key")
        if key is not None and not _UUID.match(key):
            return json_reply(400, {"message": "The value of X-Line-Retry-Key is invalid"})
        with self._lock:
            return self._answer(endpoint, body, key)

    def _answer(self, endpoint: str, body: Any, key: str | None) -> Reply:
        if key is not None and key in self._accepted:
            request_id, sent = self._accepted[key]
            data: dict[str, Any] = {"message": "The retry key is already accepted"}
            if endpoint == PUSH:
                data["sentMessages"] = sent
            return json_reply(409, data, {"x-line-accepted-request-id": request_id})
        problems = _problems(endpoint, body)
        if problems:
            return json_reply(
                400,
                {"message": f"The request body has {len(problems)} error(s)", "details": problems},
            )
        recipients = [body["to"]] if endpoint == PUSH else list(body["to"])
        for r in recipients:
            if r in self.fail:
                return self.fail[r]
        return self._accept(endpoint, body, key, recipients)

    def _accept(self, endpoint: str, body: Any, key: str | None, recipients: list[str]) -> Reply:
        request_id = str(uuid.uuid4())
        sent = [
            {"id": str(next(self._ids)), "quoteToken": "q" + uuid.uuid4().hex}
            for _ in body["messages"]
        ]
        for r in recipients:
            self.deliveries.append(Delivery(r, body["messages"], endpoint, key))
        if key is not None:
            self._accepted[key] = (request_id, sent)
        lost = self.lose_answer & set(recipients)
        if lost:
            self.lose_answer -= lost
            return json_reply(500, {"message": "An error occurred in the internal server"})
        data = {"sentMessages": sent} if endpoint == PUSH else {}
        return json_reply(200, data, {"x-line-request-id": request_id})


def _problems(endpoint: str, body: Any) -> list[dict[str, str]]:
    """What LINE would reject in a request body, as its ``details``."""
    if not isinstance(body, dict):
        return [{"message": "must be an object", "property": ""}]
    problems = _to_problems(endpoint, body.get("to"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        problems.append({"message": "Size must be between 1 and 5", "property": "messages"})
        return problems
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "type" not in m:
            problems.append({"message": "must be specified", "property": f"messages[{i}].type"})
        elif m["type"] == "text" and not (
            isinstance(m.get("text"), str) and 1 <= len(m["text"]) <= 5000
        ):
            problems.append(
                {"message": "Length must be between 1 and 5000", "property": f"messages[{i}].text"}
            )
    return problems


def _to_problems(endpoint: str, to: Any) -> list[dict[str, str]]:
    if endpoint == PUSH:
        if not isinstance(to, str) or not _ANY_TARGET.match(to):
            return [
                {"message": "The property, 'to', in the request body is invalid", "property": "to"}
            ]
        return []
    if not isinstance(to, list) or not 1 <= len(to) <= 500:
        return [{"message": "Size must be between 1 and 500", "property": "to"}]
    if len(set(to)) != len(to):
        return [{"message": "Duplicate user ids", "property": "to"}]
    return [
        {
            "message": f"The property, 'to[{i}]', in the request body is invalid",
            "property": f"to[{i}]",
        }
        for i, t in enumerate(to)
        if not isinstance(t, str) or not _USER.match(t)
    ]
