"""Engines for the embedded SQLite file and for PostgreSQL.

SQLite runs in WAL mode so readers never wait for the writer. Write transactions
start with ``BEGIN IMMEDIATE``: a writer takes the lock up front and waits its turn
(``busy_timeout``) instead of failing half-way when it upgrades a read lock.

PostgreSQL connections run with JIT compilation off: segment counts and membership
diffs are planned as joins over millions of rows, which crosses ``jit_above_cost``,
and compiling them took 0.3–0.5 s — longer than most of those queries run.

JSON columns are written and read with orjson (several times faster than the
standard library); values orjson refuses (integers over 64 bits) fall back to ``json``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from kizuna.domain.buckets import sqlite_bucket

__all__ = ["WRITE_OPTION", "json_dumps", "make_engine"]

WRITE_OPTION = "kizuna_write"
_BUSY_TIMEOUT_MS = 60_000
_PG_OPTIONS = "-c jit=off"


def json_dumps(value: Any) -> str:
    """Serialize a JSON column value (orjson, falling back to ``json`` for what it refuses)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _sqlite_local_time(stored: str | None, time_zone: str) -> str | None:
    """SQLite function ``kizuna_local(ts, zone)``: a stored UTC timestamp as local wall time."""
    if stored is None:
        return None
    moment = datetime.fromisoformat(stored).replace(tzinfo=UTC).astimezone(_zone(time_zone))
    return moment.strftime("%Y-%m-%d %H:%M:%S")


_JSON: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": orjson.loads}


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for ``url``; SQLite files get their directory, WAL and pragmas."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo)
    connect_args: dict[str, Any] = {}
    if sa.engine.make_url(url).get_driver_name() in ("psycopg", "psycopg2"):
        connect_args["options"] = _PG_OPTIONS  # libpq: set for every session of the pool
    return sa.create_engine(
        url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20,
        connect_args=connect_args, **_JSON,
    )  # fmt: skip


def _sqlite_engine(url: str, echo: bool) -> Engine:
    database = sa.engine.make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url, echo=echo, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000}, pool_size=10, **_JSON
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, not the driver, decide how transactions start.
        dbapi_connection.isolation_level = None
        dbapi_connection.create_function("kizuna_local", 2, _sqlite_local_time, deterministic=True)
        dbapi_connection.create_function("kizuna_bucket", 3, sqlite_bucket, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get(WRITE_OPTION, True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine
