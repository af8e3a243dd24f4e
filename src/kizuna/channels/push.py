"""App push through Firebase Cloud Messaging's HTTP v1 API.

Settings: ``base_url`` (default ``https://fcm.googleapis.com``), ``project_id``
(default: the service account's), ``timeout``, ``concurrency``. Secret:
``service_account``, the service-account JSON as a dict (``client_email``,
``private_key``, ``token_uri``, optionally ``private_key_id``, ``project_id``).

Authorization is OAuth 2.0's JWT bearer grant (RFC 7523): an RS256 assertion
(``iss`` the client email, ``scope`` firebase.messaging, ``aud`` the token URI,
one hour) is exchanged at ``token_uri`` for an access token, cached until five
minutes before it expires. A 401 drops the cached token and the request is tried
once more with a fresh one.

Each message is one ``POST /v1/projects/{project_id}/messages:send`` of
``{"message": {"token", "notification": {"title", "body"}, "data"}}``: the title
is ``Content.subject``, the body ``Content.text``; ``data`` is
``Content.payload["data"]`` when given, else the payload's other keys, values
made strings (non-strings as JSON), plus ``kizuna_message_id`` so the app can
report opens. Payload keys ``android``, ``apns``, ``webpush`` and
``fcm_options`` pass through as FCM's own fields.

Answers: 200 → SENT with the returned ``name``; an ``UNREGISTERED`` error (FCM
error detail, 404 or 400) → UNREACHABLE: the pipeline should delete that device
token; 401 (after the refresh), 429, 5xx, a failing token endpoint and transport
errors → RETRY; other 4xx (``INVALID_ARGUMENT``, ``SENDER_ID_MISMATCH`` …) → FAILED.
``SENDER_ID_MISMATCH`` is not taken as a dead token: a wrong ``project_id``
would otherwise delete every token of the workspace.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import BaseModel, ConfigDict, ValidationError

from kizuna.channels.base import ChannelSender, Handover, Outcome, Outgoing, ProviderConfig
from kizuna.channels.http import (
    HttpChannelSettings,
    HttpPool,
    TransientError,
    handovers,
    json_object,
    response_detail,
    retry_after,
    status_outcome,
)
from kizuna.channels.settings import parse_settings
from kizuna.clock import Clock, SystemClock
from kizuna.errors import InvalidInput, Problem

__all__ = [
    "FCM_SCOPE",
    "AccessTokens",
    "FcmChannel",
    "FcmSettings",
    "ServiceAccount",
    "fcm_message",
    "open_channel",
]

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_PASSTHROUGH = ("android", "apns", "webpush", "fcm_options")
_ASSERTION_LIFETIME = timedelta(hours=1)  # the most Google accepts
_REFRESH_MARGIN = timedelta(minutes=5)


class FcmSettings(HttpChannelSettings):
    """A workspace's FCM settings."""

    base_url: str = "https://fcm.googleapis.com"
    project_id: str | None = None


class ServiceAccount(BaseModel):
    """The parts of a Google service-account key file the grant needs."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    client_email: str
    private_key: str
    token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
    private_key_id: str | None = None
    project_id: str | None = None


class AccessTokens:
    """OAuth access tokens for a service account, cached until shortly before expiry."""

    def __init__(self, account: ServiceAccount, client: httpx.Client, clock: Clock) -> None:
        self._account = account
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires: datetime | None = None

    def get(self) -> str:
        """A valid access token; TransientError when the token endpoint refuses."""
        with self._lock:
            now = self._clock.now()
            if self._token is None or self._expires is None or now >= self._expires:
                self._token, lifetime = self._fetch(now)
                self._expires = now + lifetime - _REFRESH_MARGIN
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (refused by FCM); a token fetched since by another thread stays."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _assertion(self, now: datetime) -> str:
        issued = int(now.timestamp())
        claims = {
            "iss": self._account.client_email,
            "scope": FCM_SCOPE,
            "aud": self._account.token_uri,
            "iat": issued,
            "exp": issued + int(_ASSERTION_LIFETIME.total_seconds()),
        }
        headers = {"kid": self._account.private_key_id} if self._account.private_key_id else None
        return jwt.encode(claims, self._account.private_key, algorithm="RS256", headers=headers)

    def _fetch(self, now: datetime) -> tuple[str, timedelta]:
        response = self._client.post(
            self._account.token_uri,
            data={"grant_type": JWT_BEARER, "assertion": self._assertion(now)},
        )
        body = json_object(response)
        token = body.get("access_token")
        if response.status_code != 200 or not isinstance(token, str):
            raise TransientError(f"token endpoint: {response_detail(response)}")
        expires_in = body.get("expires_in")
        seconds = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        return token, timedelta(seconds=seconds)


def _string(value: Any) -> str:
    """FCM data values must be strings."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def fcm_message(message: Outgoing) -> dict[str, Any]:
    """The ``message`` object FCM's messages:send takes for one Outgoing."""
    content = message.content
    payload = content.payload
    body: dict[str, Any] = {"token": message.address}
    notification = {"title": content.subject, "body": content.text}
    notification = {k: v for k, v in notification.items() if v}
    if notification:
        body["notification"] = notification
    given = payload.get("data")
    source: Mapping[str, Any] = (
        given
        if isinstance(given, Mapping)
        else {k: v for k, v in payload.items() if k not in _PASSTHROUGH}
    )
    body["data"] = {str(k): _string(v) for k, v in source.items()}
    body["data"]["kizuna_message_id"] = str(message.message_id)
    for key in _PASSTHROUGH:
        if key in payload:
            body[key] = payload[key]
    return body


class FcmChannel:
    """Hands push notifications to FCM, one request per message, a few in flight."""

    provider = "fcm"
    max_batch = 500

    def __init__(
        self, settings: FcmSettings, account: ServiceAccount, project_id: str, clock: Clock
    ) -> None:
        self._clock = clock
        self._http = HttpPool(settings)
        self._tokens = AccessTokens(account, self._http.client, clock)
        self._path = f"/v1/projects/{project_id}/messages:send"

    def send(self, batch: Sequence[Outgoing]) -> list[Handover]:
        """Send each message; one Handover each."""
        return self._http.run(self._deliver, [[m] for m in batch])

    def close(self) -> None:
        """Close connections."""
        self._http.close()

    def _post(self, message: Outgoing, token: str) -> httpx.Response:
        return self._http.client.post(
            self._path,
            content=orjson.dumps({"message": fcm_message(message)}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )

    def _deliver(self, group: Sequence[Outgoing]) -> list[Handover]:
        message = group[0]
        token = self._tokens.get()
        response = self._post(message, token)
        if response.status_code == 401:
            self._tokens.invalidate(token)
            response = self._post(message, self._tokens.get())
        status = response.status_code
        if status == 200:
            name = json_object(response).get("name")
            return handovers(group, Outcome.SENT, provider_message_id=str(name) if name else None)
        outcome = status_outcome(status)
        if _fcm_error_code(response) == "UNREGISTERED":
            outcome = Outcome.UNREACHABLE
        wait = retry_after(response, self._clock) if outcome is Outcome.RETRY else None
        return handovers(group, outcome, detail=response_detail(response), retry_after=wait)


def _fcm_error_code(response: httpx.Response) -> str | None:
    """The ``errorCode`` of FCM's own error detail, when the answer has one."""
    error = json_object(response).get("error")
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and detail.get("@type") == _FCM_ERROR:
            code = detail.get("errorCode")
            return str(code) if code else None
    return None


def _service_account(secrets: Mapping[str, Any]) -> ServiceAccount:
    raw = secrets.get("service_account")
    try:
        if isinstance(raw, str | bytes):  # the key file's text, as downloaded
            raw = orjson.loads(raw)
        account = ServiceAccount.model_validate(raw)
        load_pem_private_key(account.private_key.encode(), password=None)
    except (ValidationError, ValueError, TypeError) as exc:
        raise InvalidInput(
            Problem(
                "invalid_provider_secret",
                f"service_account must be a Google service-account key: {exc}",
                "secrets.service_account",
            )
        ) from exc
    return account


def open_channel(config: ProviderConfig, *, clock: Clock | None = None) -> ChannelSender:
    """An FCM channel from a workspace's settings and ``service_account`` secret."""
    settings = parse_settings(FcmSettings, config.settings)
    account = _service_account(config.secrets)
    project_id = settings.project_id or account.project_id
    if not project_id:
        raise InvalidInput(
            Problem("missing_provider_setting", "project_id is required", "settings.project_id")
        )
    return FcmChannel(settings, account, project_id, clock or SystemClock())
