"""What the HTTP channels (LINE, SMS, push, webhook) share.

One keep-alive ``httpx.Client`` per channel, a small thread pool that runs a
batch's requests a few at a time, and the common reading of an HTTP answer:

- 2xx: SENT;
- 408, 429 and 5xx: RETRY (``Retry-After`` in seconds or as an HTTP date is kept);
- 401: RETRY, because the *channel's* credentials were refused, not the message:
  failing it would burn a whole campaign while an operator renews a token, whereas
  RETRY lets the pipeline pause the provider after repeated errors;
- any other status: FAILED;
- a transport error (refused, reset, timeout): RETRY with the exception's text.

Each channel refines this for its provider's error bodies (LINE's 409, Twilio's
error codes, FCM's ``UNREGISTERED``). ``detail`` is always ``HTTP <status>: `` and
the provider's body verbatim (cut at 4,000 characters).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from kizuna.channels.base import Handover, Outcome, Outgoing
from kizuna.clock import Clock, ensure_utc

__all__ = [
    "DETAIL_LIMIT",
    "HttpChannelSettings",
    "HttpPool",
    "TransientError",
    "handovers",
    "json_object",
    "response_detail",
    "retry_after",
    "status_outcome",
    "transport_handovers",
]

DETAIL_LIMIT = 4000
_USER_AGENT = "kizuna-delivery/1"


class TransientError(Exception):
    """A provider could not be asked (e.g. its token endpoint failed): retry the messages.

    Never leaves a channel's ``send``: ``HttpPool.run`` turns it into RETRY handovers.
    """


class HttpChannelSettings(BaseModel):
    """Settings every HTTP channel takes (each adds its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    timeout: float = Field(default=10.0, gt=0)  # seconds, per request
    concurrency: int = Field(default=4, ge=1, le=64)  # requests in flight per batch


class HttpPool:
    """A keep-alive client and the threads that run a batch's requests concurrently."""

    def __init__(
        self, settings: HttpChannelSettings, headers: dict[str, str] | None = None
    ) -> None:
        self.client = httpx.Client(
            base_url=settings.base_url,
            timeout=httpx.Timeout(settings.timeout),
            limits=httpx.Limits(
                max_connections=settings.concurrency,
                max_keepalive_connections=settings.concurrency,
            ),
            headers={"User-Agent": _USER_AGENT, **(headers or {})},
            follow_redirects=False,  # a provider that redirects did not accept the message
        )
        self._concurrency = settings.concurrency
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(
        self,
        work: Callable[[Sequence[Outgoing]], list[Handover]],
        groups: Sequence[Sequence[Outgoing]],
    ) -> list[Handover]:
        """Run ``work`` on each group (a few at a time); never raises.

        A group whose work raises gets one handover per message: RETRY for a
        transport error, FAILED for anything else (retrying cannot fix it).
        """

        def guarded(group: Sequence[Outgoing]) -> list[Handover]:
            try:
                return work(group)
            except (httpx.TransportError, TransientError) as exc:
                return transport_handovers(group, exc)
            except Exception as exc:  # a bug or a bad payload must not lose the batch
                return handovers(group, Outcome.FAILED, detail=f"{type(exc).__name__}: {exc}")

        if len(groups) <= 1 or self._concurrency == 1:
            results = [guarded(g) for g in groups]
        else:
            results = list(self._pool().map(guarded, groups))
        return [h for result in results for h in result]

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._concurrency, "kizuna-http")
            return self._executor

    def close(self) -> None:
        """Close connections and stop the threads."""
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
        self.client.close()


def handovers(
    group: Iterable[Outgoing],
    outcome: Outcome,
    *,
    provider_message_id: str | None = None,
    detail: str | None = None,
    retry_after: float | None = None,
) -> list[Handover]:
    """The same answer for every message of a group."""
    return [
        Handover(m.message_id, outcome, provider_message_id, detail, retry_after) for m in group
    ]


def transport_handovers(group: Iterable[Outgoing], exc: Exception) -> list[Handover]:
    """RETRY for each message after a connection error, a timeout or a TransientError."""
    detail = str(exc) if isinstance(exc, TransientError) else f"{type(exc).__name__}: {exc}"
    return handovers(group, Outcome.RETRY, detail=detail)


def status_outcome(status: int) -> Outcome:
    """The common meaning of an HTTP status (see the module docstring)."""
    if 200 <= status < 300:
        return Outcome.SENT
    if status in (401, 408, 429) or status >= 500:
        return Outcome.RETRY
    return Outcome.FAILED


def response_detail(response: httpx.Response) -> str:
    """``HTTP <status>: <body verbatim>``, cut at DETAIL_LIMIT characters."""
    body = response.text
    if len(body) > DETAIL_LIMIT:
        body = body[:DETAIL_LIMIT] + "…"
    return f"HTTP {response.status_code}: {body or response.reason_phrase}"


def retry_after(response: httpx.Response, clock: Clock) -> float | None:
    """Seconds the provider asked us to wait (``Retry-After``), when it said."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when: datetime = ensure_utc(parsedate_to_datetime(value))
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - clock.now()).total_seconds())


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or ``{}`` when it is not one."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
