"""Signed, compact, URL-safe tokens for tracking links, unsubscribes and the preference centre.

A token is ``base64url(payload || mac)`` without padding. The payload is a
version byte, a kind byte, the workspace id and a subject id (a message or a
customer, 16 bytes each), an expiry (uint32 Unix seconds, 0 = never) and free
``extra`` text (a click's destination URL, a message id). The MAC is the first
16 bytes of HMAC-SHA256 over the payload, keyed by
``PiiCipher.signing_key(purpose)`` (after a key rotation, ``signing_keys(purpose)``
of the older keys still verify): tracking tokens (opens, clicks) and
unsubscribe tokens (unsubscribe, preference centre) use different keys, form
nonces a third, so no kind of token can stand in for another even where the
payload would parse; the kind byte is checked as well.

Verification rejects anything forged, truncated, of another kind or purpose,
or expired, always with :class:`~kizuna.errors.InvalidInput` (code
``invalid_token`` or ``expired_token``) and never says which byte was wrong.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import struct
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from kizuna.errors import InvalidInput, Problem
from kizuna.security.pii import PiiCipher

__all__ = ["Token", "TokenKind", "Tokens", "tokens_for"]

_VERSION = 1
_MAC_BYTES = 16
_HEADER = struct.Struct(">BB16s16sI")  # version, kind, workspace, subject, expiry
_MAX_TOKEN_CHARS = 8192  # a click token carries its URL; anything longer is not ours


class TokenKind(Enum):
    """What a token opens, with the signing purpose its key is derived for."""

    OPEN = (1, "tracking")
    CLICK = (2, "tracking")
    UNSUBSCRIBE = (3, "unsubscribe")
    PREFERENCES = (4, "unsubscribe")
    FORM = (5, "preference-form")

    @property
    def code(self) -> int:
        """The byte that names this kind inside a token."""
        return int(self.value[0])

    @property
    def purpose(self) -> str:
        """The purpose its signing key is derived for."""
        return str(self.value[1])


@dataclass(frozen=True, slots=True)
class Token:
    """What a verified token says."""

    kind: TokenKind
    workspace_id: uuid.UUID
    subject_id: uuid.UUID  # a message id (open, click, unsubscribe) or a customer id
    extra: str = ""
    expires_at: datetime | None = None


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or len(text) > _MAX_TOKEN_CHARS:
        raise ValueError("bad length")
    raw = text.encode("ascii")  # UnicodeEncodeError is a ValueError
    if not raw.replace(b"-", b"").replace(b"_", b"").isalnum():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


def _invalid() -> InvalidInput:
    return InvalidInput(Problem("invalid_token", "this link is not valid", "token"))


class Tokens:
    """Signs with the cipher's current key; verifies with every key of its keyring.

    After ``kizuna keys rotate`` links in messages sent before keep working for as
    long as the retired key is kept. The cipher derives each key once.
    """

    def __init__(self, cipher: PiiCipher) -> None:
        self._cipher = cipher

    @staticmethod
    def _mac(key: bytes, payload: bytes) -> bytes:
        return hmac.new(key, payload, "sha256").digest()[:_MAC_BYTES]

    def sign(
        self,
        kind: TokenKind,
        workspace_id: uuid.UUID,
        subject_id: uuid.UUID,
        extra: str = "",
        expires_at: datetime | None = None,
    ) -> str:
        """A token for ``subject_id`` in ``workspace_id``; valid until ``expires_at`` (or ever)."""
        expiry = 0 if expires_at is None else max(1, int(expires_at.timestamp()))
        payload = _HEADER.pack(
            _VERSION, kind.code, workspace_id.bytes, subject_id.bytes, expiry
        ) + extra.encode("utf-8")
        return _b64encode(payload + self._mac(self._cipher.signing_key(kind.purpose), payload))

    def verify(self, token: str, kind: TokenKind, now: datetime) -> Token:
        """The claims of a genuine, unexpired token of ``kind``; InvalidInput otherwise."""
        try:
            raw = _b64decode(token)
        except (ValueError, binascii.Error):
            raise _invalid() from None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(payload) < _HEADER.size:
            raise _invalid()
        # IMPORTANT: compare MACs in constant time, and before trusting any byte of the payload.
        keys = self._cipher.signing_keys(kind.purpose)
        if not any(hmac.compare_digest(mac, self._mac(key, payload)) for key in keys):
            raise _invalid()
        version, code, workspace, subject, expiry = _HEADER.unpack_from(payload)
        if version != _VERSION or code != kind.code:
            raise _invalid()
        expires_at = datetime.fromtimestamp(expiry, UTC) if expiry else None
        if expires_at is not None and now >= expires_at:
            raise InvalidInput(Problem("expired_token", "this link has expired", "token"))
        try:
            extra = payload[_HEADER.size :].decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid() from None
        return Token(kind, uuid.UUID(bytes=workspace), uuid.UUID(bytes=subject), extra, expires_at)


_cache: weakref.WeakKeyDictionary[PiiCipher, Tokens] = weakref.WeakKeyDictionary()


def tokens_for(cipher: PiiCipher) -> Tokens:
    """The token signer of ``cipher``, made once per cipher (key derivation is not free)."""
    found = _cache.get(cipher)
    if found is None:
        found = _cache[cipher] = Tokens(cipher)
    return found
