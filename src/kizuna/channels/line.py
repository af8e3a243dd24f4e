"""LINE Messaging API: push and multicast, exactly once with ``X-Line-Retry-Key``.

Settings: ``base_url`` (default ``https://api.line.me``), ``timeout``,
``concurrency``, ``notification_disabled``, ``multicast`` (default true),
``multicast_limit`` (≤ 500). Secret: ``channel_access_token``.

Content: ``Content.payload["messages"]`` (LINE message objects, at most 5) when
given, else one text message from ``Content.text``.

Messages of a batch whose content is identical go to user ids (``U…``) in one
multicast request (≤ 500 ids, no id twice); the rest go one push each. Every
request carries a retry key derived from the workspace and the idempotency
key(s), so a retry of the same request reuses it and LINE answers 409 instead
of sending twice. A multicast's key depends on its members, so exactly-once
across a retry holds when the retried messages are grouped the same way (they
are, when a batch retries the group together); set ``multicast: false`` to
push every message under its own key.

Answers: 200 → SENT (push: the ``sentMessages`` ids, comma-separated; multicast:
``x-line-request-id``); 409 → SENT (already accepted; ``sentMessages`` or
``x-line-accepted-request-id``); 401, 429, 5xx, transport errors → RETRY; a
multicast 400 that names a ``to`` id is retried at once as single pushes, so
only the bad id fails; other 4xx → FAILED with the body verbatim.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
from pydantic import Field

from kizuna.channels.base import ChannelSender, Handover, Outcome, Outgoing, ProviderConfig
from kizuna.channels.http import (
    HttpChannelSettings,
    HttpPool,
    handovers,
    json_object,
    response_detail,
    retry_after,
    status_outcome,
)
from kizuna.channels.settings import parse_settings, require_secret
from kizuna.clock import Clock, SystemClock

__all__ = ["LineChannel", "LineSettings", "line_messages", "open_channel", "retry_key"]

MULTICAST_LIMIT = 500
PUSH_PATH = "/v2/bot/message/push"
MULTICAST_PATH = "/v2/bot/message/multicast"
# Fixed namespace: retry keys must come out the same in every process and release.
_RETRY_NS = uuid.UUID("3b0d7f52-8a3e-4c43-9d0e-5f1c2b7a9e61")


class LineSettings(HttpChannelSettings):
    """A workspace's LINE channel settings."""

    base_url: str = "https://api.line.me"
    notification_disabled: bool = False
    multicast: bool = True
    multicast_limit: int = Field(default=MULTICAST_LIMIT, ge=1, le=MULTICAST_LIMIT)


def retry_key(workspace_id: uuid.UUID, idempotency_keys: Sequence[str]) -> str:
    """The ``X-Line-Retry-Key`` of a request: the same keys always give the same UUID."""
    name = f"{workspace_id}\n" + "\n".join(sorted(idempotency_keys))
    return str(uuid.uuid5(_RETRY_NS, name))


def line_messages(message: Outgoing) -> list[Any]:
    """The LINE message objects of one message."""
    given = message.content.payload.get("messages")
    if given:
        return list(given)
    return [{"type": "text", "text": message.content.text}]


class LineChannel:
    """Hands messages to the LINE Messaging API."""

    provider = "line"
    max_batch = 1000

    def __init__(self, settings: LineSettings, token: str, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._http = HttpPool(settings, {"Authorization": f"Bearer {token}"})

    def send(self, batch: Sequence[Outgoing]) -> list[Handover]:
        """Push or multicast every message; one Handover each."""
        return self._http.run(self._deliver, self._plan(batch))

    def close(self) -> None:
        """Close connections."""
        self._http.close()

    def _plan(self, batch: Sequence[Outgoing]) -> list[list[Outgoing]]:
        """Requests to make: groups of ≥ 2 go by multicast, singles by push."""
        if not self._settings.multicast:
            return [[m] for m in batch]
        by_content: dict[bytes, list[Outgoing]] = {}
        singles: list[list[Outgoing]] = []
        for m in batch:
            key = _content_key(m) if m.address.startswith("U") else None
            if key is None:  # groups and rooms take push only; so does unencodable content
                singles.append([m])
            else:
                by_content.setdefault(key, []).append(m)
        groups: list[list[Outgoing]] = []
        for members in by_content.values():
            groups.extend(self._chunks(sorted(members, key=lambda m: m.idempotency_key)))
        return groups + singles

    def _chunks(self, members: list[Outgoing]) -> list[list[Outgoing]]:
        """Multicast-sized chunks in which no user id appears twice."""
        chunks: list[list[Outgoing]] = []
        seen: list[set[str]] = []
        for m in members:
            for chunk, ids in zip(chunks, seen, strict=True):
                if m.address not in ids and len(chunk) < self._settings.multicast_limit:
                    chunk.append(m)
                    ids.add(m.address)
                    break
            else:
                chunks.append([m])
                seen.append({m.address})
        return chunks

    def _deliver(self, group: Sequence[Outgoing]) -> list[Handover]:
        if len(group) == 1:
            return self._push(group[0])
        return self._multicast(group)

    def _body(self, to: str | list[str], message: Outgoing) -> dict[str, Any]:
        body: dict[str, Any] = {"to": to, "messages": line_messages(message)}
        if self._settings.notification_disabled:
            body["notificationDisabled"] = True
        return body

    def _post(self, path: str, body: dict[str, Any], key: str) -> httpx.Response:
        return self._http.client.post(
            path,
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json", "X-Line-Retry-Key": key},
        )

    def _push(self, message: Outgoing) -> list[Handover]:
        key = retry_key(message.workspace_id, [message.idempotency_key])
        response = self._post(PUSH_PATH, self._body(message.address, message), key)
        return self._answer([message], response)

    def _multicast(self, group: Sequence[Outgoing]) -> list[Handover]:
        key = retry_key(group[0].workspace_id, [m.idempotency_key for m in group])
        body = self._body([m.address for m in group], group[0])
        response = self._post(MULTICAST_PATH, body, key)
        if response.status_code == 400 and _names_recipient(response):
            # One bad id rejects the whole request: push each so only that one fails.
            return [h for m in group for h in self._push(m)]
        return self._answer(group, response)

    def _answer(self, group: Sequence[Outgoing], response: httpx.Response) -> list[Handover]:
        status = response.status_code
        if status == 200 or status == 409:
            return handovers(group, Outcome.SENT, provider_message_id=_provider_id(response))
        outcome = status_outcome(status)
        wait = retry_after(response, self._clock) if outcome is Outcome.RETRY else None
        return handovers(group, outcome, detail=response_detail(response), retry_after=wait)


def _content_key(message: Outgoing) -> bytes | None:
    """The message objects as canonical JSON (None when they cannot be encoded)."""
    try:
        return orjson.dumps(line_messages(message), option=orjson.OPT_SORT_KEYS)
    except TypeError:  # the push fails it, inside the guarded request
        return None


def _provider_id(response: httpx.Response) -> str | None:
    """``sentMessages`` ids when LINE gave them, else the (accepted) request id."""
    sent = json_object(response).get("sentMessages")
    if isinstance(sent, list):
        ids = [str(s["id"]) for s in sent if isinstance(s, dict) and "id" in s]
        if ids:
            return ",".join(ids)
    headers = response.headers
    found: str | None = headers.get("x-line-accepted-request-id") or headers.get(
        "x-line-request-id"
    )
    return found


def _names_recipient(response: httpx.Response) -> bool:
    """Whether a 400 blames a ``to`` id rather than the content."""
    details = json_object(response).get("details")
    if not isinstance(details, list):
        return False
    return any(isinstance(d, dict) and str(d.get("property", "")).startswith("to") for d in details)


def open_channel(config: ProviderConfig, *, clock: Clock | None = None) -> ChannelSender:
    """A LINE channel from a workspace's settings and ``channel_access_token``."""
    settings = parse_settings(LineSettings, config.settings)
    token = require_secret(config.secrets, "channel_access_token")
    return LineChannel(settings, token, clock or SystemClock())
