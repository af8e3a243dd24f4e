"""Deterministic random buckets: the same customer and salt always land in the same bucket."""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["bucket_of", "sqlite_bucket"]


def bucket_of(customer_id: uuid.UUID | str, salt: str, buckets: int) -> int:
    """MD5 of ``salt:uuid`` (hyphenated, lower case), first 32 bits, modulo ``buckets``.

    PostgreSQL computes the same with ``md5`` and a ``bit(32)`` cast; SQLite calls
    :func:`sqlite_bucket`, registered on every connection.
    """
    text = f"{salt}:{uuid.UUID(str(customer_id))}"
    digest = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16) % buckets


def sqlite_bucket(stored: str | None, salt: str, buckets: int) -> int | None:
    """SQLite function ``kizuna_bucket(customer_id, salt, buckets)`` (ids stored as hex)."""
    return None if stored is None else bucket_of(stored, salt, buckets)
