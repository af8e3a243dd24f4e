"""Bulk inserts of many rows, with a fast path for SQLite (demo shop, stored metrics).

On SQLite, SQLAlchemy's per-value bind processing costs three times the insert
itself, so rows are encoded here the way the column types encode them (UTC
datetimes as naive ``YYYY-MM-DD HH:MM:SS.ffffff`` text, UUIDs as 32 hex digits,
JSON through the engine's serializer) and passed to the driver's
``executemany``. A test pins the equivalence with ``conn.execute(table.insert(),
rows)``, which every other dialect uses as is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kizuna.store.engine import json_dumps
from kizuna.store.types import UTCDateTime

__all__ = ["EncodedRows", "bulk_insert", "encode_rows", "insert_encoded", "refresh_statistics"]

EncodedRows = list[tuple[Any, ...]]

_Encoder = Callable[[Any], Any]


def _datetime(value: datetime) -> str:
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _encoders(table: sa.Table) -> list[_Encoder | None]:
    encoders: list[_Encoder | None] = []
    for column in table.columns:
        if isinstance(column.type, UTCDateTime):
            encoders.append(_datetime)
        elif isinstance(column.type, sa.Uuid):
            encoders.append(lambda value: value.hex)
        elif isinstance(column.type, sa.JSON):
            encoders.append(json_dumps)  # the serializer make_engine gives every engine
        else:
            encoders.append(None)
    return encoders


def encode_rows(table: sa.Table, rows: Sequence[dict[str, Any]]) -> EncodedRows:
    """Rows as the tuples SQLite's driver takes for ``table`` (what the column types bind)."""
    names = [c.name for c in table.columns]
    special = [(i, e) for i, e in enumerate(_encoders(table)) if e is not None]
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


def insert_encoded(conn: Connection, table: sa.Table, rows: EncodedRows) -> None:
    """Insert rows made by :func:`encode_rows` on SQLite, in one executemany."""
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    marks = ", ".join("?" for _ in table.columns)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})', rows)


def bulk_insert(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (each naming every column of ``table``) in one executemany."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), list(rows))
        return
    insert_encoded(conn, table, encode_rows(table, rows))


def refresh_statistics(engine: Engine, tables: Sequence[sa.Table]) -> None:
    """After a bulk load, let PostgreSQL's planner see the new row counts (ANALYZE).

    Until autovacuum gets to them, freshly filled tables look empty to the planner,
    which then rescans aggregates in nested loops (a segment count over a just-loaded
    shop took a minute instead of milliseconds). SQLite plans from indexes alone.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            conn.exec_driver_sql(f'ANALYZE "{table.name}"')
