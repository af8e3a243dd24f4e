"""The keyring on disk: the current personal-data key, older keys that still decrypt, lookups.

Files in ``$KIZUNA_HOME`` (each written with mode 0600)::

    secret.key                    the current key: new values are encrypted with it
    keys/lookup.key               the lookup (HMAC) key, written at the first rotation
    keys/rotating-<id>.key        a key being rotated out: data is still being re-encrypted
    keys/retired-<id>.key         a rotated-out key: no stored value uses it any more

``<id>`` is the key's 8-hex-digit id, the one every ciphertext header carries.
A retired key is kept because links in messages sent before the rotation were
signed with it (tracking, unsubscribe, preference centre) and backups taken
before the rotation were encrypted with it. Nothing deletes it: the operator does,
once those no longer matter (unsubscribe links must keep working for as long as
the messages carrying them can be acted on).

The lookup key (identities, consent and suppressions are keyed by lookup hashes)
never rotates. Until the first rotation it is derived from ``secret.key``; the
first rotation writes that same key to ``keys/lookup.key`` before anything else,
so no hash ever changes, and deleting retired keys never affects lookups.

When the current key comes from the environment (``KIZUNA_SECRET_KEY``), the
older keys and the lookup key come from ``KIZUNA_SECRET_KEYS_OLD`` (comma-separated)
and ``KIZUNA_LOOKUP_KEY``, next to any files above; Kizuna cannot change the
environment, so ``kizuna keys rotate --prepare`` prints the new values to set
before ``kizuna keys rotate`` re-encrypts. Older keys without a lookup key are
refused: the lookup hashes would silently change.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kizuna.config import Settings
from kizuna.errors import ConfigurationError, Conflict
from kizuna.security.pii import (
    SECRET_FILE_NAME,
    KeyMaterial,
    PiiCipher,
    decode_secret,
    derive_lookup_key,
    encode_secret,
    key_id,
    load_or_create_secret,
)

__all__ = [
    "ENV_LOOKUP_KEY",
    "ENV_OLDER_KEYS",
    "KEYS_DIR_NAME",
    "LOOKUP_FILE_NAME",
    "KeyLocation",
    "Keyring",
    "StoredKey",
    "environment_for_rotation",
    "open_cipher",
    "read_keyring",
    "retire_keys",
    "start_rotation",
]

KEYS_DIR_NAME = "keys"
LOOKUP_FILE_NAME = "lookup.key"
ENV_OLDER_KEYS = "KIZUNA_SECRET_KEYS_OLD"
ENV_LOOKUP_KEY = "KIZUNA_LOOKUP_KEY"
_ROTATING, _RETIRED = "rotating-", "retired-"

KeyState = Literal["current", "rotating", "retired", "older"]


@dataclass(frozen=True, slots=True)
class KeyLocation:
    """Where the keys are: the data directory and the key variables of the environment.

    Also the :class:`~kizuna.security.pii.KeySource` of a cipher: it re-reads them.
    """

    home: Path
    secret: str | None = field(default=None, repr=False)  # KIZUNA_SECRET_KEY
    older: str | None = field(default=None, repr=False)  # KIZUNA_SECRET_KEYS_OLD
    lookup: str | None = field(default=None, repr=False)  # KIZUNA_LOOKUP_KEY

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> KeyLocation:
        """The keys of ``settings``; the two rotation variables are read from ``environ``."""
        env = os.environ if environ is None else environ
        older, lookup = env.get(ENV_OLDER_KEYS) or None, env.get(ENV_LOOKUP_KEY) or None
        return cls(settings.home, settings.secret_key, older, lookup)

    @property
    def keys_dir(self) -> Path:
        """The directory of older keys and the lookup key."""
        return self.home / KEYS_DIR_NAME

    @property
    def from_environment(self) -> bool:
        """True when the current key is ``KIZUNA_SECRET_KEY`` (rotation cannot switch it)."""
        return bool(self.secret)

    def load(self) -> KeyMaterial:
        """The keys as they are now (KeySource)."""
        return read_keyring(self).material

    def fingerprint(self) -> Hashable:
        """Names, sizes and times of the key files: changes whenever a rotation writes."""
        paths = [self.home / SECRET_FILE_NAME]
        if self.keys_dir.is_dir():
            paths.extend(sorted(self.keys_dir.iterdir()))
        seen = []
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                seen.append((path.name, stat.st_size, stat.st_mtime_ns))
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One master key of the keyring and where it came from."""

    key_id: bytes
    state: KeyState
    origin: str  # a file path, or the environment variable
    secret: bytes = field(repr=False)

    @property
    def hex(self) -> str:
        """The id as ciphertext headers, file names and ``keys status`` show it."""
        return self.key_id.hex()


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current key first, then every older key; and the lookup key when set apart."""

    keys: tuple[StoredKey, ...]
    lookup_key: bytes | None = field(repr=False)
    lookup_origin: str

    @property
    def current(self) -> StoredKey:
        """The key new values are encrypted with."""
        return self.keys[0]

    @property
    def older(self) -> tuple[StoredKey, ...]:
        """Keys that still decrypt but no longer encrypt."""
        return self.keys[1:]

    @property
    def rotating(self) -> tuple[StoredKey, ...]:
        """Older keys whose rotation has not been finished."""
        return tuple(k for k in self.older if k.state == "rotating")

    @property
    def material(self) -> KeyMaterial:
        """What a :class:`~kizuna.security.pii.PiiCipher` needs."""
        older = tuple(k.secret for k in self.older)
        return KeyMaterial(self.current.secret, older, self.lookup_key)


def read_keyring(location: KeyLocation) -> Keyring:
    """Read every key; creates ``secret.key`` on first run like ``load_or_create_secret``.

    Raises ConfigurationError for a malformed key, or older keys without a lookup key.
    """
    secret = load_or_create_secret(location.home, location.secret)
    origin = (
        "KIZUNA_SECRET_KEY" if location.from_environment else str(location.home / SECRET_FILE_NAME)
    )
    found = {key_id(secret): StoredKey(key_id(secret), "current", origin, secret)}
    for key in (*_environment_keys(location.older), *_file_keys(location.keys_dir)):
        found.setdefault(key.key_id, key)  # the current key, then the first seen, wins
    lookup, lookup_origin = _lookup_key(location)
    if len(found) > 1 and lookup is None:
        raise ConfigurationError(
            f"older personal-data keys are present but no lookup key: restore "
            f"{location.keys_dir / LOOKUP_FILE_NAME} or set {ENV_LOOKUP_KEY}, or every "
            "lookup hash (e-mails, phones, ids) would change"
        )
    return Keyring(tuple(found.values()), lookup, lookup_origin)


def _environment_keys(text: str | None) -> list[StoredKey]:
    secrets_ = [decode_secret(part) for part in (text or "").split(",") if part.strip()]
    return [StoredKey(key_id(s), "older", ENV_OLDER_KEYS, s) for s in secrets_]


def _file_keys(directory: Path) -> list[StoredKey]:
    if not directory.is_dir():
        return []
    keys = []
    for path in sorted(directory.glob("*.key")):
        state: KeyState
        if path.name.startswith(_ROTATING):
            state = "rotating"
        elif path.name.startswith(_RETIRED):
            state = "retired"
        else:
            continue
        secret = decode_secret(path.read_text(encoding="ascii"))
        keys.append(StoredKey(key_id(secret), state, str(path), secret))
    return keys


def _lookup_key(location: KeyLocation) -> tuple[bytes | None, str]:
    if location.lookup:
        return decode_secret(location.lookup), ENV_LOOKUP_KEY
    path = location.keys_dir / LOOKUP_FILE_NAME
    if path.exists():
        return decode_secret(path.read_text(encoding="ascii")), str(path)
    return None, "derived from the current key (no rotation yet)"


def open_cipher(location: KeyLocation) -> PiiCipher:
    """The cipher over the whole keyring, following later rotations on its own."""
    return PiiCipher(read_keyring(location).material, location)


def start_rotation(location: KeyLocation) -> tuple[StoredKey, StoredKey]:
    """Make a new key current and keep the old one as rotating; returns (old, new).

    Each step leaves a keyring that decrypts everything, so a crash anywhere is
    safe and running it again carries on. Raises ConfigurationError when the key
    comes from the environment, Conflict while another rotation is unfinished.
    """
    if location.from_environment:
        raise ConfigurationError(
            "the personal-data key comes from KIZUNA_SECRET_KEY, which Kizuna cannot change: "
            "run `kizuna keys rotate --prepare`, set the variables it prints on every "
            "process, restart them, then run `kizuna keys rotate` to re-encrypt"
        )
    location.keys_dir.mkdir(mode=0o700, exist_ok=True)
    with _rotation_lock(location):
        return _switch(location)


def _switch(location: KeyLocation) -> tuple[StoredKey, StoredKey]:
    ring = read_keyring(location)
    old = ring.current
    unfinished = [k.hex for k in ring.rotating if k.key_id != old.key_id]
    if unfinished:
        raise Conflict(f"the rotation of key {', '.join(unfinished)} is not finished yet")
    # IMPORTANT: the lookup key goes to its own file first: from now on the current key
    # no longer derives it, and every stored hash depends on it.
    lookup = location.keys_dir / LOOKUP_FILE_NAME
    if not lookup.exists():
        _write_new(lookup, ring.lookup_key or derive_lookup_key(old.secret))
    keep = location.keys_dir / f"{_ROTATING}{old.hex}.key"
    if not keep.exists():
        _write_new(keep, old.secret)
    known = {k.key_id for k in ring.keys}
    new = secrets.token_bytes(32)
    while key_id(new) in known:  # 4-byte ids: make sure headers stay unambiguous
        new = secrets.token_bytes(32)
    _replace(location.home / SECRET_FILE_NAME, new)
    path = str(location.home / SECRET_FILE_NAME)
    return (StoredKey(old.key_id, "rotating", str(keep), old.secret),
            StoredKey(key_id(new), "current", path, new))  # fmt: skip


def retire_keys(location: KeyLocation, key_ids: set[bytes]) -> list[StoredKey]:
    """Mark rotating keys among ``key_ids`` retired (rename their files); returns them."""
    retired = []
    for key in read_keyring(location).rotating:
        if key.key_id in key_ids:
            target = location.keys_dir / f"{_RETIRED}{key.hex}.key"
            Path(key.origin).replace(target)
            retired.append(StoredKey(key.key_id, "retired", str(target), key.secret))
    return retired


def environment_for_rotation(location: KeyLocation) -> dict[str, str]:
    """For a key kept in the environment: the variables to set to rotate it (secrets!)."""
    ring = read_keyring(location)
    new = secrets.token_bytes(32)
    while key_id(new) in {k.key_id for k in ring.keys}:
        new = secrets.token_bytes(32)
    older = [ring.current, *(k for k in ring.older if k.origin == ENV_OLDER_KEYS)]
    lookup = ring.lookup_key or derive_lookup_key(ring.current.secret)
    return {
        "KIZUNA_SECRET_KEY": encode_secret(new),
        ENV_OLDER_KEYS: ",".join(encode_secret(k.secret) for k in older),
        ENV_LOOKUP_KEY: encode_secret(lookup),
    }


@contextlib.contextmanager
def _rotation_lock(location: KeyLocation) -> Iterator[None]:
    """One key switch at a time: two at once would each write a new key, and lose one."""
    fd = os.open(location.keys_dir / ".rotate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("another `kizuna keys rotate` is switching keys right now") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_new(path: Path, secret: bytes) -> None:
    # IMPORTANT: owner-only from the first byte, and on disk before the next step relies on it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(encode_secret(secret) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _replace(path: Path, secret: bytes) -> None:
    """Swap a key file in one step (rename), so a reader sees the old key or the new one."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    _write_new(temporary, secret)
    temporary.replace(path)
