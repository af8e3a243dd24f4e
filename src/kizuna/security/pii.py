"""Personal data at rest: AES-256-GCM encryption plus a keyed hash for lookups.

A 32-byte master secret (``KIZUNA_SECRET_KEY`` or ``$KIZUNA_HOME/secret.key``,
generated on first run) is split with HKDF into an encryption key and a lookup
key. Ciphertexts carry a version byte and a key id so that a later key rotation
can decrypt old values while writing new ones.

IMPORTANT: only the store layer may call :meth:`PiiCipher.decrypt`; everything
outside it receives already-decrypted (and, later, masked) domain values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kizuna.errors import ConfigurationError

__all__ = ["SECRET_FILE_NAME", "PiiCipher", "load_or_create_secret"]

SECRET_FILE_NAME = "secret.key"  # noqa: S105 - a file name, not a secret
_VERSION = 1
_NONCE_BYTES = 12
_KEY_ID_BYTES = 4


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


def _decode_secret(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii") + b"==")
    except (ValueError, UnicodeEncodeError) as exc:
        raise ConfigurationError("the PII secret is not valid base64") from exc
    if len(raw) < 32:
        raise ConfigurationError("the PII secret must decode to at least 32 bytes")
    return raw


def load_or_create_secret(home: Path, env_secret: str | None = None) -> bytes:
    """Return the master secret: from ``env_secret``, the key file, or a new key file.

    A new key file is written with mode 0600. Raises ConfigurationError when a
    supplied secret is malformed.
    """
    if env_secret:
        return _decode_secret(env_secret)
    path = home / SECRET_FILE_NAME
    if path.exists():
        return _decode_secret(path.read_text(encoding="ascii"))
    home.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    # IMPORTANT: create the file with owner-only permissions from the start.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.urlsafe_b64encode(secret).decode("ascii").rstrip("=") + "\n")
    return secret


class PiiCipher:
    """Encrypts personal values and computes their lookup hashes."""

    def __init__(self, master: bytes) -> None:
        self._master = master  # kept only so a cipher can be handed to a worker process
        self._aead = AESGCM(_derive(master, b"kizuna pii encryption v1"))
        self._lookup_key = _derive(master, b"kizuna pii lookup v1")
        self._key_id = hashlib.sha256(master).digest()[:_KEY_ID_BYTES]

    def __reduce__(self) -> tuple[type[PiiCipher], tuple[bytes]]:
        """Pickle as the master key, so worker processes can build encrypted rows."""
        return (PiiCipher, (self._master,))

    def encrypt(self, plaintext: str) -> bytes:
        """Encrypt ``plaintext`` with a fresh random nonce."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        header = bytes([_VERSION]) + self._key_id
        return header + nonce + self._aead.encrypt(nonce, plaintext.encode("utf-8"), header)

    def decrypt(self, token: bytes) -> str:
        """Decrypt a value made by :meth:`encrypt`; raises ConfigurationError on a wrong key."""
        header = token[: 1 + _KEY_ID_BYTES]
        if header[:1] != bytes([_VERSION]) or header[1:] != self._key_id:
            raise ConfigurationError("personal data was encrypted with another key")
        nonce = token[len(header) : len(header) + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, token[len(header) + _NONCE_BYTES :], header).decode()
        except Exception as exc:  # cryptography raises InvalidTag without detail
            raise ConfigurationError("personal data failed its integrity check") from exc

    def lookup_hash(self, kind: str, normalized: str) -> bytes:
        """Keyed hash (HMAC-SHA256) of an already-normalized value, scoped by its kind."""
        return hmac.new(self._lookup_key, f"{kind}\x00{normalized}".encode(), "sha256").digest()

    def signing_key(self, purpose: str) -> bytes:
        """A key for signing tokens (tracking links, unsubscribe), separate per purpose."""
        return _derive(self._master, f"kizuna signing {purpose} v1".encode())

    def encrypt_optional(self, plaintext: str | None) -> bytes | None:
        """Encrypt when a value is present, pass ``None`` through."""
        return None if plaintext is None else self.encrypt(plaintext)

    def decrypt_optional(self, token: bytes | None) -> str | None:
        """Decrypt when a value is present, pass ``None`` through."""
        return None if token is None else self.decrypt(token)
