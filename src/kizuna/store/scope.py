"""A workspace-scoped transaction: the one object every repository function takes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from kizuna.security.pii import PiiCipher

__all__ = ["Scope"]


@dataclass(slots=True)
class Scope:
    """A connection inside a transaction, bound to one workspace.

    IMPORTANT: repositories filter every statement by ``workspace_id`` from here,
    never from an argument the caller passes alongside.
    """

    conn: Connection
    cipher: PiiCipher
    workspace_id: uuid.UUID
    now: datetime

    def hash(self, kind: str, normalized: str) -> bytes:
        """The keyed lookup hash of an identifier (see PiiCipher.lookup_hash)."""
        return self.cipher.lookup_hash(kind, normalized)
