"""Key rotation: re-encrypt every stored personal value under the current key, in small batches.

The encrypted columns are found in the schema, not listed by hand: every binary
column whose name ends in ``_enc``, in every table of ``metadata`` (customers'
traits, ``identities.value_enc``, ``seed_addresses.address_enc``,
``channel_providers.secrets_enc`` and whatever later tables add).

Which values still need work is answered in SQL from the ciphertext header
(``substr(value, 2, 4)`` is the key id, see :mod:`kizuna.security.pii`), so a
rotation that stops half-way simply carries on where it stopped. Rows are read in
primary-key order, ``batch_size`` at a time, each batch in its own short write
transaction: readers never wait (older keys still decrypt), writers wait one batch
at most. Each row is written back only if its ciphertexts are still the ones read
(compare-and-set), so a concurrent update is never overwritten; a value a process
still running on the old key writes meanwhile is picked up by the next pass.

Decrypting and re-encrypting has to happen in Python (the database never sees a
key), so this is the one place that visits every customer row: deliberately, in
batches, and only for rows whose header names another key.

IMPORTANT: this module works across workspaces on purpose: the key belongs to the
installation, not to a workspace.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.errors import ConfigurationError
from kizuna.security.keys import (
    KeyLocation,
    StoredKey,
    open_cipher,
    read_keyring,
    retire_keys,
    start_rotation,
)
from kizuna.security.pii import KEY_ID_BYTES, KEY_ID_OFFSET, PiiCipher, ciphertext_key_id
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor, log_operation
from kizuna.store.tables import metadata

__all__ = [
    "EncryptedTable",
    "RotationOutcome",
    "RotationReport",
    "encrypted_tables",
    "pending_rows",
    "reencrypt",
    "rotate_keys",
    "values_by_key",
]

Progress = Callable[[str, int], None]  # (table, rows just rewritten)


@dataclass(frozen=True, slots=True)
class EncryptedTable:
    """A table with its primary key and its encrypted columns."""

    table: sa.Table
    columns: tuple[sa.Column[Any], ...]

    @property
    def name(self) -> str:
        """The table's name."""
        return self.table.name

    @property
    def primary_key(self) -> tuple[sa.Column[Any], ...]:
        """Its primary-key columns, in order."""
        return tuple(self.table.primary_key.columns)


def encrypted_tables(schema: sa.MetaData = metadata) -> list[EncryptedTable]:
    """Every table of ``schema`` with ``*_enc`` binary columns, by name."""
    found = []
    for table in sorted(schema.tables.values(), key=lambda t: t.name):
        columns = tuple(c for c in table.columns if c.name.endswith("_enc") and _is_binary(c.type))
        if columns:
            found.append(EncryptedTable(table, columns))
    return found


def _is_binary(kind: sa.types.TypeEngine[Any]) -> bool:
    return isinstance(kind, sa.LargeBinary)


def _key_id_of(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    # Literal positions: bound ones would make PostgreSQL see two different GROUP BY terms.
    start = sa.literal(KEY_ID_OFFSET + 1, literal_execute=True)
    return sa.func.substr(column, start, sa.literal(KEY_ID_BYTES, literal_execute=True))


def _stale(et: EncryptedTable, current: bytes) -> sa.ColumnElement[bool]:
    """Rows holding at least one value not under ``current``."""
    return sa.or_(*(sa.and_(c.is_not(None), _key_id_of(c) != current) for c in et.columns))


def pending_rows(conn: Connection, current: bytes) -> dict[str, int]:
    """Rows per table still holding a value of another key than ``current`` (tables with any)."""
    counts = {}
    for et in encrypted_tables():
        query = sa.select(sa.func.count()).select_from(et.table).where(_stale(et, current))
        count = int(conn.execute(query).scalar_one())
        if count:
            counts[et.name] = count
    return counts


def values_by_key(conn: Connection) -> dict[bytes, dict[str, int]]:
    """Stored values per key id, then per ``table.column``: what each key still protects."""
    found: dict[bytes, dict[str, int]] = {}
    for et in encrypted_tables():
        for column in et.columns:
            kid = _key_id_of(column).label("kid")
            query = sa.select(kid, sa.func.count()).where(column.is_not(None)).group_by(kid)
            for key, count in conn.execute(query):
                found.setdefault(bytes(key), {})[f"{et.name}.{column.name}"] = int(count)
    return found


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What one re-encryption did and what is left."""

    rewritten: int  # rows written back under the current key
    unreadable: dict[str, int]  # rows per table with a value no key of the keyring opens
    remaining: dict[str, int]  # rows per table still not wholly under the current key

    @property
    def complete(self) -> bool:
        """True when every stored value is under the current key."""
        return not self.remaining


def reencrypt(
    db: Database, *, batch_size: int = 500, progress: Progress | None = None, passes: int = 3
) -> RotationReport:
    """Re-encrypt every value not under ``db.cipher``'s current key; see the module docstring.

    Runs up to ``passes`` sweeps while values written meanwhile by processes still on
    the old key keep turning up; reports what is left rather than raising.
    """
    current = db.cipher.key_id
    rewritten = 0
    unreadable: Counter[str] = Counter()
    for _ in range(max(1, passes)):
        unreadable = Counter()
        done = sum(_sweep(db, et, batch_size, progress, unreadable) for et in encrypted_tables())
        rewritten += done
        with db.read() as conn:
            remaining = pending_rows(conn, current)
        if not remaining or done == 0:
            break
    return RotationReport(rewritten, dict(unreadable), remaining)


def _sweep(
    db: Database, et: EncryptedTable, size: int, progress: Progress | None, bad: Counter[str]
) -> int:
    """One pass over one table in primary-key order; returns the rows rewritten."""
    current, after, total = db.cipher.key_id, None, 0
    update = _update_statement(et)
    while True:
        with db.write() as conn:
            rows = conn.execute(_batch_query(et, current, after, size)).all()
            if not rows:
                return total
            params = []
            for row in rows:
                rewrapped, stuck = _rewrap(db.cipher, et, row._mapping)
                if stuck:
                    bad[et.name] += 1
                if rewrapped is not None:
                    params.append(rewrapped)
            if params:
                conn.execute(update, params)
        after = tuple(rows[-1]._mapping[c.name] for c in et.primary_key)
        total += len(params)
        if progress is not None and params:
            progress(et.name, len(params))


def _batch_query(
    et: EncryptedTable, current: bytes, after: tuple[Any, ...] | None, size: int
) -> sa.Select[Any]:
    query = sa.select(*et.primary_key, *et.columns).where(_stale(et, current))
    if after is not None:
        query = query.where(sa.tuple_(*et.primary_key) > sa.tuple_(*after))
    return query.order_by(*et.primary_key).limit(size)


def _update_statement(et: EncryptedTable) -> sa.Update:
    """Write new ciphertexts only where the old ones are still in place (compare-and-set)."""
    match_key = [c == sa.bindparam(f"k_{c.name}", type_=c.type) for c in et.primary_key]
    unchanged = [c.is_not_distinct_from(sa.bindparam(f"o_{c.name}", type_=c.type))
                 for c in et.columns]  # fmt: skip
    values = {c.name: sa.bindparam(f"n_{c.name}", type_=c.type) for c in et.columns}
    return et.table.update().where(*match_key, *unchanged).values(values)


def _rewrap(cipher: PiiCipher, et: EncryptedTable, row: Any) -> tuple[dict[str, Any] | None, bool]:
    """Parameters writing ``row`` back under the current key (None: nothing to write), and
    whether a value of it no key opens: that one stays as it is, the others still move.
    """
    params = {f"k_{c.name}": row[c.name] for c in et.primary_key}
    changed = stuck = False
    for column in et.columns:
        old = row[column.name]
        new = old
        if old is not None and ciphertext_key_id(old) != cipher.key_id:
            try:
                new = cipher.encrypt(cipher.decrypt(bytes(old)))
                changed = True
            except ConfigurationError:
                stuck = True
        params[f"o_{column.name}"], params[f"n_{column.name}"] = old, new
    return (params if changed else None), stuck


@dataclass(frozen=True, slots=True)
class RotationOutcome:
    """What ``kizuna keys rotate`` did: the keys involved and the re-encryption."""

    current: StoredKey
    started: bool  # True when this run made a new key current
    report: RotationReport
    retired: list[StoredKey] = field(default_factory=list)
    emptied: list[StoredKey] = field(default_factory=list)  # older keys no value uses any more


def rotate_keys(
    db: Database,
    location: KeyLocation,
    actor: Actor,
    *,
    batch_size: int = 500,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
) -> RotationOutcome:
    """Switch to a new key (unless a rotation is pending), re-encrypt, retire the old key.

    ``on_start`` is told how many rows are to be rewritten. A pending rotation (rotating
    keys, or values under an older key) is resumed instead of starting another.
    Raises ConfigurationError when the key lives in the environment and nothing is
    pending (``kizuna keys rotate --prepare`` first), Conflict while another run switches.
    """
    ring = read_keyring(location)
    with db.read() as conn:
        held = values_by_key(conn)
    # Values under a key no one has (damaged, or a key deleted) cannot be resumed: skip them.
    started = not ring.rotating and not any(k.key_id in held for k in ring.older)
    if started:
        old, new = start_rotation(location)
        _log(db, actor, "keys.rotation_started", {"from": old.hex, "to": new.hex})
    rotating = dataclasses.replace(db, cipher=open_cipher(location))
    ring = read_keyring(location)
    if on_start is not None:
        with rotating.read() as conn:
            on_start(sum(pending_rows(conn, ring.current.key_id).values()))
    report = reencrypt(rotating, batch_size=batch_size, progress=progress)
    outcome = RotationOutcome(ring.current, started, report)
    if report.complete:
        with rotating.read() as conn:
            used = set(values_by_key(conn))
        emptied = [k for k in ring.older if k.key_id not in used]
        retired = retire_keys(location, {k.key_id for k in emptied})
        outcome = dataclasses.replace(outcome, retired=retired, emptied=emptied)
        _log(db, actor, "keys.rotated", {"to": ring.current.hex, "rows": report.rewritten,
                                          "retired": [k.hex for k in retired]})  # fmt: skip
    return outcome


def _log(db: Database, actor: Actor, action: str, details: dict[str, Any]) -> None:
    with db.write() as conn:
        log_operation(conn, workspace_id=None, at=db.clock.now(), actor=actor.name,
                      origin=actor.origin, action=action, target="personal-data key",
                      details=details)  # fmt: skip
