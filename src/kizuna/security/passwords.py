"""Password hashing with argon2id (argon2-cffi), and the rules a new password must meet.

Hashes are PHC strings (``$argon2id$v=19$m=…``) carrying their own parameters, so
raising the cost later only needs :func:`needs_rehash` at the next sign-in.
"""

from __future__ import annotations

import contextlib
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kizuna.errors import InvalidInput, Problem

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "check_password_rules",
    "hash_password",
    "needs_rehash",
    "spend_verify_time",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # argon2 would hash more, but nobody types it; bounds the work
_HASHER = PasswordHasher()  # argon2id with the library's RFC 9106 defaults


def check_password_rules(password: str, *, field: str = "password") -> None:
    """Raise ``InvalidInput`` unless the password is 12 to 1024 characters, not all blank."""
    if len(password) < MIN_PASSWORD_LENGTH or not password.strip():
        message = f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
        raise InvalidInput(Problem("weak_password", message, field))
    if len(password) > MAX_PASSWORD_LENGTH:
        message = f"a password has at most {MAX_PASSWORD_LENGTH} characters"
        raise InvalidInput(Problem("password_too_long", message, field))


def hash_password(password: str) -> str:
    """The argon2id hash of a password that meets the rules (``InvalidInput`` otherwise)."""
    check_password_rules(password)
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; False for no hash or a malformed one."""
    if stored_hash is None or len(password) > MAX_PASSWORD_LENGTH:
        spend_verify_time()
        return False
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(stored_hash)


@cache
def _dummy_hash() -> str:
    return _HASHER.hash("kizuna-no-such-account")


def spend_verify_time() -> None:
    """Do the work of one verification, so unknown accounts answer as slowly as known ones."""
    with contextlib.suppress(VerificationError):
        _HASHER.verify(_dummy_hash(), "not-the-password")
