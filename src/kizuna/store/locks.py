"""Work only one worker may do at a time, across processes and machines."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from kizuna.store.database import Database

__all__ = ["held_exclusively"]


def _key(name: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


@contextmanager
def held_exclusively(db: Database, name: str) -> Iterator[bool]:
    """Yield True if this worker alone now holds ``name``; False if another holds it.

    On PostgreSQL a session advisory lock on a connection of its own, so it spans
    the many short transactions of a long job and is released when the job ends —
    or when its process dies, since the server drops a lost session's locks. On
    SQLite an advisory file lock beside the database file, which the kernel also
    drops with its process.
    """
    if db.dialect != "postgresql":
        with _file_lock(db, name) as got:
            yield got
        return
    key = sa.literal(_key(name), sa.BigInteger)
    with db.engine.connect() as conn:
        got = bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar_one())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                conn.commit()


@contextmanager
def _file_lock(db: Database, name: str) -> Iterator[bool]:
    database = db.engine.url.database
    where = Path(database) if database and database != ":memory:" else None
    folder = where.parent if where else Path(tempfile.gettempdir())
    stem = where.name if where else f"kizuna-memory-{os.getpid()}"
    path = folder / f".{stem}.{_key(name) & 0xFFFFFFFF:08x}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
