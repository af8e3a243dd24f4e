"""SMS through Twilio's Messages API, and Twilio's request signatures.

Settings: ``base_url`` (default ``https://api.twilio.com``), ``from_number`` or
``messaging_service_sid`` (one is required), ``status_callback`` (the URL
Twilio posts delivery statuses to), ``timeout``, ``concurrency``. Secrets:
``account_sid``, ``auth_token``.

Each message is one form-encoded ``POST /2010-04-01/Accounts/{sid}/Messages.json``
(``To``, ``From`` or ``MessagingServiceSid``, ``Body``, ``StatusCallback``) with
HTTP Basic auth. Answers: 201 → SENT with the message ``sid``; 400 with Twilio
error 21211 (invalid 'To'), 21614 (not a mobile number) or 21610 (the recipient
replied STOP) → UNREACHABLE, so the pipeline suppresses the number; 401, 429 and
5xx → RETRY; other 4xx → FAILED. ``detail`` is Twilio's JSON body verbatim but
for the recipient's number, which Twilio echoes and which is masked
(``090-****-5678``) so the message log keeps no phone number in clear. Twilio
takes no idempotency key: a request that timed out after Twilio accepted it is
sent twice if retried.

``verify_twilio_signature`` checks ``X-Twilio-Signature`` on status callbacks:
base64 of HMAC-SHA1, keyed with the auth token, over the full URL followed by
every POST parameter's name and value, sorted by name, with no separators.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import model_validator

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
from kizuna.security.masking import mask_phone

__all__ = [
    "UNREACHABLE_CODES",
    "TwilioChannel",
    "TwilioSettings",
    "open_channel",
    "twilio_signature",
    "verify_twilio_signature",
]

# Twilio error codes that mean the number itself cannot take our SMS.
UNREACHABLE_CODES = frozenset({21211, 21610, 21614})

Params = Mapping[str, str | Sequence[str]]


class TwilioSettings(HttpChannelSettings):
    """A workspace's Twilio settings."""

    base_url: str = "https://api.twilio.com"
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None

    @model_validator(mode="after")
    def _has_sender(self) -> TwilioSettings:
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("from_number or messaging_service_sid is required")
        return self


class TwilioChannel:
    """Hands SMS to Twilio, one request per message, a few in flight."""

    provider = "twilio"
    max_batch = 200

    def __init__(
        self, settings: TwilioSettings, account_sid: str, auth_token: str, clock: Clock
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._path = f"/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._http = HttpPool(settings)

    def send(self, batch: Sequence[Outgoing]) -> list[Handover]:
        """Send each message; one Handover each."""
        return self._http.run(self._deliver, [[m] for m in batch])

    def close(self) -> None:
        """Close connections."""
        self._http.close()

    def _form(self, message: Outgoing) -> dict[str, str]:
        form = {"To": message.address, "Body": message.content.text}
        if self._settings.messaging_service_sid:
            form["MessagingServiceSid"] = self._settings.messaging_service_sid
        if self._settings.from_number:
            form["From"] = self._settings.from_number
        if self._settings.status_callback:
            form["StatusCallback"] = self._settings.status_callback
        return form

    def _deliver(self, group: Sequence[Outgoing]) -> list[Handover]:
        message = group[0]
        response = self._http.client.post(self._path, data=self._form(message), auth=self._auth)
        status = response.status_code
        body = json_object(response)
        if status in (200, 201):
            sid = body.get("sid")
            return handovers(group, Outcome.SENT, provider_message_id=str(sid) if sid else None)
        outcome = status_outcome(status)
        if status == 400 and body.get("code") in UNREACHABLE_CODES:
            outcome = Outcome.UNREACHABLE
        wait = retry_after(response, self._clock) if outcome is Outcome.RETRY else None
        detail = _without_number(response_detail(response), message.address)
        return handovers(group, outcome, detail=detail, retry_after=wait)


def _without_number(detail: str, number: str) -> str:
    """Twilio echoes the 'To' number in errors; the message log must not keep it in clear."""
    return detail.replace(number, mask_phone(number)) if number else detail


def twilio_signature(auth_token: str, url: str, params: Params) -> str:
    """The ``X-Twilio-Signature`` Twilio sends with a request to ``url`` with ``params``."""
    parts = [url]
    for name in sorted(params):
        values = params[name]
        for value in [values] if isinstance(values, str) else sorted(values):
            parts.append(name + value)
    digest = hmac.new(auth_token.encode(), "".join(parts).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as given, and with its default port added or removed (Twilio signs either)."""
    split = urlsplit(url)
    default = {"https": 443, "http": 80}.get(split.scheme)
    host = split.hostname or ""
    if default is None or not host:
        return [url]
    if split.port is None:
        other = split._replace(netloc=f"{_userinfo(split.netloc)}{host}:{default}")
    elif split.port == default:
        other = split._replace(netloc=f"{_userinfo(split.netloc)}{host}")
    else:
        return [url]
    return [url, urlunsplit(other)]


def _userinfo(netloc: str) -> str:
    return netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else ""


def verify_twilio_signature(auth_token: str, url: str, params: Params, signature: str) -> bool:
    """Whether ``signature`` is Twilio's for this URL and POST parameters (constant time)."""
    if not signature:
        return False
    given = signature.strip().encode()
    return any(
        hmac.compare_digest(twilio_signature(auth_token, u, params).encode(), given)
        for u in _url_variants(url)
    )


def open_channel(config: ProviderConfig, *, clock: Clock | None = None) -> ChannelSender:
    """A Twilio SMS channel from a workspace's settings and ``account_sid``/``auth_token``."""
    settings = parse_settings(TwilioSettings, config.settings)
    account_sid = require_secret(config.secrets, "account_sid")
    auth_token = require_secret(config.secrets, "auth_token")
    return TwilioChannel(settings, account_sid, auth_token, clock or SystemClock())
