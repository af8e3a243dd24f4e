"""The tamper-evident operation log: who saw or exported what, as a SHA-256 hash chain.

Every entry carries the hash of the entry before it, so changing, removing or
reordering an entry breaks the chain from that point on. The chain is one per
installation (entries of every workspace) and its order is ``entry_id`` order:
``log_operation`` makes each new id greater than the last one while it holds the
log's lock, so the order never depends on clocks agreeing.

The exact bytes hashed, so that anyone can re-check the chain without Kizuna::

    entry_hash = SHA-256(prev_hash || canonical)

``prev_hash`` is the previous entry's 32-byte ``entry_hash`` (32 zero bytes for the
first entry); ``canonical`` is the UTF-8 encoding of the JSON object with exactly
the keys ``action``, ``actor``, ``at``, ``details``, ``entry_id``, ``origin``,
``target`` and ``workspace_id``, keys sorted at every level, no whitespace
(separators ``,`` and ``:``), non-ASCII characters written as themselves (not
``\\u`` escapes), no NaN or infinity. ``at`` is the UTC time as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``; ids are lower-case hyphenated UUIDs; a missing
``workspace_id``, ``origin`` or ``target`` is ``null``.

Writers are serialized so two of them never fork the chain: on PostgreSQL by a
transaction-scoped advisory lock; on SQLite by the write transaction itself
(``Database.write`` begins ``IMMEDIATE``). Deleting the newest entries leaves a
shorter chain that still verifies; keeping the latest ``entry_hash`` somewhere else
(the governance issue) closes that gap.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.errors import Problem
from kizuna.store.tables import operation_log
from kizuna.store.types import new_id

__all__ = ["GENESIS_HASH", "Actor", "canonical_entry", "log_operation", "verify_log"]

GENESIS_HASH = bytes(32)
# One fixed 64-bit key for pg_advisory_xact_lock, derived from the log's name.
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"kizuna.operation_log").digest()[:8], "big", signed=True)
_VERIFY_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does something and from where, as the operation log records it."""

    name: str
    origin: str | None

    @classmethod
    def os_user(cls, origin: str) -> Actor:
        """The operating-system account running this process (the CLI, a notebook)."""
        try:
            name = getpass.getuser()
        except (OSError, KeyError):  # no user name in the environment nor in passwd
            name = "unknown"
        return cls(name, origin)


def _canonical_json(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def canonical_entry(
    *,
    entry_id: uuid.UUID,
    workspace_id: uuid.UUID | None,
    at: datetime,
    actor: str,
    origin: str | None,
    action: str,
    target: str | None,
    details: dict[str, Any],
) -> bytes:
    """The exact bytes of an entry that its hash covers (see the module docstring)."""
    if at.tzinfo is None:
        raise ValueError("the operation log needs an aware datetime")
    document = {
        "action": action,
        "actor": actor,
        "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "details": details,
        "entry_id": str(entry_id),
        "origin": origin,
        "target": target,
        "workspace_id": None if workspace_id is None else str(workspace_id),
    }
    return _canonical_json(document).encode("utf-8")


def _chain(prev_hash: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(prev_hash + canonical).digest()


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.literal(_LOCK_KEY, sa.BigInteger))))


def log_operation(
    conn: Connection,
    *,
    workspace_id: uuid.UUID | None,
    at: datetime,
    actor: str,
    origin: str | None,
    action: str,
    target: str | None,
    details: dict[str, Any],
) -> None:
    """Append one entry to the chain; call inside a write transaction (``Database.write``).

    ``details`` must be plain JSON (it is stored as its JSON round trip, so what is
    hashed is what reads back). Raises ``ValueError`` for a naive ``at`` or details
    JSON cannot hold (NaN, infinity, non-JSON objects).
    """
    # IMPORTANT: the lock is held to the end of the caller's transaction, so the tail
    # read here is still the tail when this entry commits.
    _lock(conn)
    plain = json.loads(_canonical_json(details))
    last = conn.execute(
        sa.select(operation_log.c.entry_id, operation_log.c.entry_hash)
        .order_by(operation_log.c.entry_id.desc())
        .limit(1)
    ).first()
    entry_id = new_id()
    prev_hash = GENESIS_HASH
    if last is not None:
        prev_hash = bytes(last.entry_hash)
        if entry_id <= last.entry_id:  # same millisecond, or a clock that went back
            entry_id = uuid.UUID(int=last.entry_id.int + 1)
    fields = {"entry_id": entry_id, "workspace_id": workspace_id, "at": at, "actor": actor,
              "origin": origin, "action": action, "target": target, "details": plain}  # fmt: skip
    entry_hash = _chain(prev_hash, canonical_entry(**fields))
    conn.execute(
        operation_log.insert().values(prev_hash=prev_hash, entry_hash=entry_hash, **fields)
    )


def verify_log(conn: Connection) -> list[Problem]:
    """Re-check the whole chain; empty when intact, else one Problem naming the first bad entry."""
    expected_prev = GENESIS_HASH
    query = sa.select(operation_log).order_by(operation_log.c.entry_id)
    result = conn.execute(query, execution_options={"yield_per": _VERIFY_BATCH})
    for position, row in enumerate(result, start=1):
        entry = row._mapping
        problem = _check_entry(entry, position, expected_prev)
        if problem is not None:
            result.close()
            return [problem]
        expected_prev = bytes(entry["entry_hash"])
    return []


def _check_entry(entry: Any, position: int, expected_prev: bytes) -> Problem | None:
    where = f"operation_log[{position}]"
    name = f"entry {position} ({entry['entry_id']}, {entry['action']})"
    if bytes(entry["prev_hash"]) != expected_prev:
        before = "the start of the log" if position == 1 else f"entry {position - 1}"
        message = f"{name} does not follow {before}: an entry was removed, added or altered"
        return Problem("operation_log_broken_link", message, where)
    fields = {key: entry[key] for key in ("entry_id", "workspace_id", "at", "actor", "origin",
                                          "action", "target", "details")}  # fmt: skip
    if _chain(expected_prev, canonical_entry(**fields)) != bytes(entry["entry_hash"]):
        message = f"{name} was altered after it was written: its hash does not match"
        return Problem("operation_log_altered", message, where)
    return None
