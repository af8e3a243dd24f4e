"""A local FCM HTTP v1 API with its OAuth 2.0 token endpoint.

``POST /token``: the JWT bearer grant. The assertion must be RS256-signed by the
service account's key (checked with its public key), ``iss`` the client email,
``aud`` this token URI, ``scope`` including firebase.messaging, at most one hour
long and not expired; answers ``{"access_token", "expires_in", "token_type"}``
or Google's ``{"error": "invalid_grant", ...}``.

``POST /v1/projects/{project}/messages:send``: needs a live bearer token (401
``UNAUTHENTICATED``), a JSON ``message`` with exactly one target, string
notification fields and string ``data`` values without reserved keys (400
``INVALID_ARGUMENT``); tokens in ``unregistered`` answer 404 with the
``UNREGISTERED`` FCM error. Accepted messages answer ``{"name"}`` and are kept
in ``messages``. ``fail[token] = Reply`` answers that instead; ``revoke_tokens``
makes every issued access token invalid.
"""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import jwt

from kizuna.clock import Clock, SystemClock
from tests.delivery.providers._base import ProviderServer, Received, Reply, json_reply

__all__ = ["FcmServer", "fcm_error"]

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_SEND = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
_RESERVED = re.compile(r"^(from|gcm|google\..*)$")  # collapse_key and the like are allowed


def fcm_error(
    code: int,
    status: str,
    message: str,
    error_code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """Google's error body, with an FCM error detail when ``error_code`` is given."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if error_code:
        error["details"] = [{"@type": FCM_ERROR, "errorCode": error_code}]
    return json_reply(code, {"error": error}, headers)


def _bad_request(field: str, description: str) -> Reply:
    return json_reply(
        400,
        {
            "error": {
                "code": 400,
                "message": description,
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": field, "description": description}],
                    }
                ],
            }
        },
    )


class FcmServer(ProviderServer):
    """The local FCM and Google token endpoint."""

    def __init__(
        self, project_id: str, client_email: str, public_key: Any, clock: Clock | None = None
    ) -> None:
        super().__init__()
        self.project_id = project_id
        self.client_email = client_email
        self.public_key = public_key
        self.clock = clock or SystemClock()
        self.messages: list[dict[str, Any]] = []
        self.assertions: list[dict[str, Any]] = []
        self.unregistered: set[str] = set()
        self.fail: dict[str, Reply] = {}
        self._tokens: dict[str, Any] = {}
        self._ids = itertools.count(1500415314455276)

    @property
    def token_uri(self) -> str:
        """Where the service account's grant goes."""
        return self.url + "/token"

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far."""
        with self._lock:
            self._tokens.clear()

    def handle(self, received: Received) -> Reply:
        """Answer a token grant or a send."""
        if received.method == "POST" and received.path == "/token":
            return self._grant(received)
        match = _SEND.match(received.path)
        if received.method == "POST" and match and match["project"] == self.project_id:
            return self._send(received)
        return fcm_error(404, "NOT_FOUND", "Requested entity was not found.")

    def _grant(self, received: Received) -> Reply:
        form = {k: v[0] for k, v in parse_qs(received.body.decode()).items()}
        if form.get("grant_type") != JWT_BEARER:
            return json_reply(
                400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}
            )
        claims = self._claims(form.get("assertion", ""))
        if claims is None:
            return json_reply(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            )
        if SCOPE not in str(claims.get("scope", "")).split():
            return json_reply(
                400, {"error": "invalid_scope", "error_description": "Invalid OAuth scope."}
            )
        token = "ya29." + uuid.uuid4().hex
        with self._lock:
            self.assertions.append(claims)
            self._tokens[token] = self.clock.now() + timedelta(seconds=3599)
        return json_reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _claims(self, assertion: str) -> dict[str, Any] | None:
        """The assertion's claims when Google would accept it, else None."""
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=self.token_uri,
                issuer=self.client_email,
                # time is checked below against this server's clock, not the wall
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "iat"]},
            )
        except jwt.PyJWTError:
            return None
        now = self.clock.now().timestamp()
        iat, exp = float(claims["iat"]), float(claims["exp"])
        if iat > now + 60 or exp <= now or exp - iat > 3600:
            return None
        return claims

    def _authorized(self, received: Received) -> bool:
        header = received.headers.get("authorization", "")
        token = header.removeprefix("Bearer ")
        with self._lock:
            expires = self._tokens.get(token)
        return header.startswith("Bearer ") and expires is not None and self.clock.now() < expires

    def _send(self, received: Received) -> Reply:
        if not self._authorized(received):
            return fcm_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )
        if not received.headers.get("content-type", "").startswith("application/json"):
            return _bad_request("", "Invalid JSON payload received.")
        try:
            message = received.json().get("message")
        except (ValueError, AttributeError):
            return _bad_request("", "Invalid JSON payload received.")
        problem = _message_problem(message)
        if problem is not None:
            return problem
        token = message["token"]
        if token in self.fail:
            return self.fail[token]
        if token in self.unregistered:
            return fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
        name = f"projects/{self.project_id}/messages/0:{next(self._ids)}%{uuid.uuid4().hex[:16]}"
        with self._lock:
            self.messages.append({**message, "name": name})
        return json_reply(200, {"name": name})


def _message_problem(message: Any) -> Reply | None:
    """What FCM would reject in a ``message``."""
    if not isinstance(message, dict):
        return _bad_request("message", "message is required")
    targets = [k for k in ("token", "topic", "condition") if k in message]
    if targets != ["token"] or not isinstance(message["token"], str) or not message["token"]:
        return _bad_request("message", "exactly one of token, topic or condition is required")
    if message["token"].startswith("bad"):
        return fcm_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            "INVALID_ARGUMENT",
        )
    for key, value in (message.get("notification") or {}).items():
        if not isinstance(value, str):
            return _bad_request(
                f"message.notification.{key}", f"Invalid value at 'message.notification.{key}'"
            )
    for i, (key, value) in enumerate((message.get("data") or {}).items()):
        if not isinstance(value, str):
            return _bad_request(
                f"message.data[{i}].value",
                f"Invalid value at 'message.data[{i}].value' (TYPE_STRING)",
            )
        if _RESERVED.match(key):
            return _bad_request(f"message.data[{i}].key", f"Invalid data key: {key}")
    return None
