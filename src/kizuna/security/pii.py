"""Personal data at rest: AES-256-GCM encryption plus a keyed hash for lookups.

A 32-byte master secret (``KIZUNA_SECRET_KEY`` or ``$KIZUNA_HOME/secret.key``,
generated on first run) is split with HKDF into an encryption key, a lookup key
and signing keys. Every ciphertext starts with a header, a version byte then the
4-byte id of the master key that made it (the first 4 bytes of its SHA-256)::

    version (1) || key id (4) || nonce (12) || AES-GCM ciphertext and tag

so a cipher holding several master keys (a keyring, see :mod:`kizuna.security.keys`)
decrypts with whichever key the header names, and SQL can tell which rows a key
rotation still has to rewrite (``substr(value, 2, 4)``).

What rotates and what does not (see :mod:`kizuna.security.keys` for the files):

- **Encryption** always uses the *current* key; any *older* key still decrypts.
- **Lookup hashes** (HMAC-SHA256 of normalized e-mails, phones, ids) never rotate:
  identities, consent and suppressions are keyed by them. The lookup key is derived
  from the installation's *first* master key; at the first rotation it is written
  out on its own (``keys/lookup.key``), so later rotations, and deleting old keys,
  leave every hash as it was.
- **Signing keys** (tracking, unsubscribe and form tokens) come from the current
  key, and tokens verify under older keys too (:meth:`PiiCipher.signing_keys`), so
  links in messages already sent keep working while the old key is kept.

A cipher built with a ``source`` re-reads its keys when it meets a ciphertext of a
key it does not know, and every few seconds before encrypting, so processes that
were running when ``kizuna keys rotate`` switched the key follow it without a restart.

IMPORTANT: only the store layer may call :meth:`PiiCipher.decrypt`; everything
outside it receives already-decrypted (and, later, masked) domain values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kizuna.errors import ConfigurationError

__all__ = [
    "KEY_ID_BYTES",
    "KEY_ID_OFFSET",
    "SECRET_FILE_NAME",
    "KeyMaterial",
    "KeySource",
    "PiiCipher",
    "ciphertext_key_id",
    "decode_secret",
    "derive_lookup_key",
    "encode_secret",
    "key_id",
    "load_or_create_secret",
]

SECRET_FILE_NAME = "secret.key"  # noqa: S105 - a file name, not a secret
_VERSION = 1
_NONCE_BYTES = 12
KEY_ID_BYTES = 4
KEY_ID_OFFSET = 1  # bytes before the key id in a ciphertext (the version byte)
_RECHECK_SECONDS = 5.0  # how stale a sourced cipher's idea of the current key may get
_RELOAD_SECONDS = 1.0  # at most one re-read per second for unknown key ids (a damaged value)


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


def key_id(master: bytes) -> bytes:
    """The 4-byte id a master key writes into the header of its ciphertexts."""
    return hashlib.sha256(master).digest()[:KEY_ID_BYTES]


def derive_lookup_key(master: bytes) -> bytes:
    """The lookup (HMAC) key a master key gives when it is the installation's first key."""
    return _derive(master, b"kizuna pii lookup v1")


def ciphertext_key_id(token: bytes) -> bytes:
    """The id of the key a ciphertext was made with (from its header)."""
    return bytes(token[KEY_ID_OFFSET : KEY_ID_OFFSET + KEY_ID_BYTES])


def decode_secret(text: str) -> bytes:
    """A key from its text form (base64url, padding optional); ConfigurationError when bad."""
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii") + b"==")
    except (ValueError, UnicodeEncodeError) as exc:
        raise ConfigurationError("the PII secret is not valid base64") from exc
    if len(raw) < 32:
        raise ConfigurationError("the PII secret must decode to at least 32 bytes")
    return raw


def encode_secret(secret: bytes) -> str:
    """The text form of a key, as key files and ``KIZUNA_SECRET_KEY`` hold it."""
    return base64.urlsafe_b64encode(secret).decode("ascii").rstrip("=")


def load_or_create_secret(home: Path, env_secret: str | None = None) -> bytes:
    """Return the master secret: from ``env_secret``, the key file, or a new key file.

    A new key file is written with mode 0600. Raises ConfigurationError when a
    supplied secret is malformed.
    """
    if env_secret:
        return decode_secret(env_secret)
    path = home / SECRET_FILE_NAME
    if path.exists():
        return decode_secret(path.read_text(encoding="ascii"))
    home.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    # IMPORTANT: create the file with owner-only permissions from the start.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(encode_secret(secret) + "\n")
    return secret


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """The keys a cipher works with: the current master key, older ones, the lookup key.

    ``lookup_key`` is ``None`` until the first rotation: the lookup key is then
    derived from ``current``, which is still the installation's first key.
    """

    current: bytes = field(repr=False)
    older: tuple[bytes, ...] = field(default=(), repr=False)
    lookup_key: bytes | None = field(default=None, repr=False)


class KeySource(Protocol):
    """Where a cipher's keys live, so it can re-read them after a rotation (pickled with it)."""

    def load(self) -> KeyMaterial:
        """The keys as they are now; ConfigurationError when they cannot be read."""
        ...

    def fingerprint(self) -> Hashable:
        """A cheap value that changes whenever the keys may have changed."""
        ...


class _Keys:
    """One immutable generation of derived keys (swapped whole on reload)."""

    def __init__(self, material: KeyMaterial) -> None:
        masters = (material.current, *material.older)
        self.current_id = key_id(material.current)
        self.masters = {key_id(m): m for m in reversed(masters)}  # the current key wins a clash
        self.aeads = {kid: AESGCM(_derive(m, b"kizuna pii encryption v1"))
                      for kid, m in self.masters.items()}  # fmt: skip
        self.lookup_key = material.lookup_key or derive_lookup_key(material.current)
        self.signing: dict[tuple[bytes, str], bytes] = {}

    def ids(self) -> tuple[bytes, ...]:
        return (self.current_id, *(k for k in self.masters if k != self.current_id))

    def signing_key(self, kid: bytes, purpose: str) -> bytes:
        found = self.signing.get((kid, purpose))
        if found is None:
            derived = _derive(self.masters[kid], f"kizuna signing {purpose} v1".encode())
            found = self.signing[(kid, purpose)] = derived
        return found


class PiiCipher:
    """Encrypts personal values and computes their lookup hashes, over a keyring."""

    def __init__(self, master: bytes | KeyMaterial, source: KeySource | None = None) -> None:
        self._material = master if isinstance(master, KeyMaterial) else KeyMaterial(master)
        self._keys = _Keys(self._material)
        self._source = source
        self._lock = threading.Lock()
        self._fingerprint = source.fingerprint() if source is not None else None
        self._checked = time.monotonic()
        self._reloaded = float("-inf")

    def __reduce__(self) -> tuple[type[PiiCipher], tuple[KeyMaterial, KeySource | None]]:
        """Pickle as the keys (and their source), so worker processes can build rows."""
        return (PiiCipher, (self._material, self._source))

    @property
    def key_id(self) -> bytes:
        """The id of the current key: what new ciphertexts carry in their header."""
        return self._keys.current_id

    @property
    def key_ids(self) -> tuple[bytes, ...]:
        """Every key id this cipher can decrypt, the current one first."""
        return self._keys.ids()

    def encrypt(self, plaintext: str) -> bytes:
        """Encrypt ``plaintext`` under the current key with a fresh random nonce."""
        keys = self._fresh_keys()
        nonce = secrets.token_bytes(_NONCE_BYTES)
        header = bytes([_VERSION]) + keys.current_id
        return (
            header
            + nonce
            + keys.aeads[keys.current_id].encrypt(nonce, plaintext.encode("utf-8"), header)
        )

    def decrypt(self, token: bytes) -> str:
        """Decrypt a value made by :meth:`encrypt` under any key of the keyring.

        Raises ConfigurationError when no key of the keyring made it, or it fails
        its integrity check.
        """
        header = bytes(token[: KEY_ID_OFFSET + KEY_ID_BYTES])
        if header[:1] != bytes([_VERSION]):
            raise ConfigurationError("personal data was encrypted in an unknown format")
        kid = header[KEY_ID_OFFSET:]
        aead = self._keys.aeads.get(kid) or self._reload(throttle=True).aeads.get(kid)
        if aead is None:
            raise ConfigurationError(
                f"personal data was encrypted with key {kid.hex()}, which is not in the keyring"
            )
        nonce = token[len(header) : len(header) + _NONCE_BYTES]
        try:
            return aead.decrypt(nonce, bytes(token[len(header) + _NONCE_BYTES :]), header).decode()
        except Exception as exc:  # cryptography raises InvalidTag without detail
            raise ConfigurationError("personal data failed its integrity check") from exc

    def lookup_hash(self, kind: str, normalized: str) -> bytes:
        """Keyed hash (HMAC-SHA256) of an already-normalized value, scoped by its kind.

        Stable across key rotations (the lookup key never rotates).
        """
        key = self._keys.lookup_key
        return hmac.new(key, f"{kind}\x00{normalized}".encode(), "sha256").digest()

    def signing_key(self, purpose: str) -> bytes:
        """The key new tokens of ``purpose`` (tracking links, unsubscribe) are signed with."""
        keys = self._fresh_keys()
        return keys.signing_key(keys.current_id, purpose)

    def signing_keys(self, purpose: str) -> tuple[bytes, ...]:
        """Every key a token of ``purpose`` may have been signed with, the current one first."""
        keys = self._fresh_keys()
        return tuple(keys.signing_key(kid, purpose) for kid in keys.ids())

    def encrypt_optional(self, plaintext: str | None) -> bytes | None:
        """Encrypt when a value is present, pass ``None`` through."""
        return None if plaintext is None else self.encrypt(plaintext)

    def decrypt_optional(self, token: bytes | None) -> str | None:
        """Decrypt when a value is present, pass ``None`` through."""
        return None if token is None else self.decrypt(token)

    def _fresh_keys(self) -> _Keys:
        """The keys, re-read first when the source changed since the last look (rate-limited)."""
        if self._source is None or time.monotonic() - self._checked < _RECHECK_SECONDS:
            return self._keys
        self._checked = time.monotonic()
        try:
            changed = self._source.fingerprint() != self._fingerprint
        except OSError:
            changed = False
        return self._reload() if changed else self._keys

    def _reload(self, *, throttle: bool = False) -> _Keys:
        """Re-read the keys from the source; keep the ones in hand when that fails."""
        if self._source is None:
            return self._keys
        if throttle and time.monotonic() - self._reloaded < _RELOAD_SECONDS:
            return self._keys
        with self._lock:
            self._reloaded = time.monotonic()
            try:
                fingerprint = self._source.fingerprint()
                material = self._source.load()
            except (ConfigurationError, OSError):
                # A rotation writing its files at this instant; the next look sees them whole.
                return self._keys
            if material != self._material:
                self._material, self._keys = material, _Keys(material)
            self._fingerprint = fingerprint
            return self._keys
