"""Bulk inserts for generated rows, with a fast path for SQLite.

On SQLite, SQLAlchemy's per-value bind processing costs three times the insert
itself, so rows are encoded here the way the column types encode them (UTC
datetimes as naive ``YYYY-MM-DD HH:MM:SS.ffffff`` text, UUIDs as 32 hex digits,
JSON through the engine's serializer) and passed to the driver's
``executemany``. A test pins the equivalence with ``conn.execute(table.insert(),
rows)``, which every other dialect uses as is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.store.types import UTCDateTime

__all__ = ["bulk_insert"]

_Encoder = Callable[[Any], Any]


def _datetime(value: datetime) -> str:
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _encoders(conn: Connection, table: sa.Table) -> list[_Encoder | None]:
    serializer = getattr(conn.dialect, "_json_serializer", None) or json.dumps
    encoders: list[_Encoder | None] = []
    for column in table.columns:
        if isinstance(column.type, UTCDateTime):
            encoders.append(_datetime)
        elif isinstance(column.type, sa.Uuid):
            encoders.append(lambda value: value.hex)
        elif isinstance(column.type, sa.JSON):
            encoders.append(serializer)
        else:
            encoders.append(None)
    return encoders


def _sqlite_rows(
    conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    names = [c.name for c in table.columns]
    special = [(i, e) for i, e in enumerate(_encoders(conn, table)) if e is not None]
    memo: dict[int, Any] = {}  # shared objects (now, product dicts) are encoded once
    out = []
    for row in rows:
        values = [row[name] for name in names]
        for i, encode in special:
            value = values[i]
            if value is not None:
                key = id(value)
                cached = memo.get(key)
                if cached is None:
                    cached = memo[key] = encode(value)
                values[i] = cached
        out.append(tuple(values))
    return out


def bulk_insert(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (each naming every column of ``table``) in one executemany."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), list(rows))
        return
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    marks = ", ".join("?" for _ in table.columns)
    sql = f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})'
    conn.exec_driver_sql(sql, _sqlite_rows(conn, table, rows))
