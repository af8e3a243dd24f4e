"""A local Twilio Messages API (``POST /2010-04-01/Accounts/{sid}/Messages.json``).

Checks what Twilio checks: HTTP Basic auth with the account SID and auth token
(401, error 20003), a form-encoded body, ``To`` (21604 when missing, 21211 when
not a phone number), ``From`` or ``MessagingServiceSid`` (21603), ``Body``
(21602; 21617 over 1,600 characters). Accepted messages answer 201 with the
message resource (``sid`` = ``SM`` + 32 hex digits) and are kept in ``messages``.

``fail[to] = Reply`` answers that instead for one number; ``twilio_error``
builds Twilio's error body.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from tests.delivery.providers._base import ProviderServer, Received, Reply, json_reply

__all__ = ["TwilioServer", "twilio_error"]

_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_MESSAGES = {
    20003: "Authenticate",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message.",
    21604: "A 'To' phone number is required.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    20429: "Too Many Requests",
}


def twilio_error(
    code: int, status: int = 400, headers: Mapping[str, str] | None = None, **fmt: str
) -> Reply:
    """Twilio's JSON error body for ``code``."""
    return json_reply(
        status,
        {
            "code": code,
            "message": _MESSAGES.get(code, "Error").format(**fmt),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        headers,
    )


class TwilioServer(ProviderServer):
    """The local Twilio API."""

    def __init__(
        self, account_sid: str = "AC" + "1" * 32, auth_token: str = "twilio-token"
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, str]] = []
        self.fail: dict[str, Reply] = {}

    def handle(self, received: Received) -> Reply:
        """Answer a message create request."""
        match = _PATH.match(received.path)
        if received.method != "POST" or match is None:
            return json_reply(404, {"code": 20404, "message": "not found", "status": 404})
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if (
            match["sid"] != self.account_sid
            or received.headers.get("authorization") != f"Basic {expected}"
        ):
            return twilio_error(20003, 401)
        if not received.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return twilio_error(21602)  # Twilio reads no parameters from other bodies
        form = {
            k: v[0] for k, v in parse_qs(received.body.decode(), keep_blank_values=True).items()
        }
        error = _form_error(form)
        if error is not None:
            return error
        if form["To"] in self.fail:
            return self.fail[form["To"]]
        return self._accept(form)

    def _accept(self, form: dict[str, str]) -> Reply:
        sid = "SM" + uuid.uuid4().hex
        with self._lock:
            self.messages.append({**form, "sid": sid})
        resource: dict[str, Any] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "accepted" if "MessagingServiceSid" in form else "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        return json_reply(201, resource)


def _form_error(form: dict[str, str]) -> Reply | None:
    to = form.get("To")
    if not to:
        return twilio_error(21604)
    if not _E164.match(to):
        return twilio_error(21211, to=to)
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return twilio_error(21603)
    if not form.get("Body"):
        return twilio_error(21602)
    if len(form["Body"]) > 1600:
        return twilio_error(21617)
    return None
