"""A private copy of the embedded SQLite store, for work that must not hold its write lock.

A simulation replays months of history inside one transaction it throws away; on
SQLite that transaction would hold the only write lock for its whole length and
stall ingestion and sending. It runs on a copy made with SQLite's online backup
instead. PostgreSQL needs no copy: its transactions do not block other writers.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Engine

from kizuna.store.engine import make_engine

__all__ = ["private_engine"]


@contextmanager
def private_engine(engine: Engine) -> Iterator[Engine]:
    """``engine`` itself on PostgreSQL; on SQLite an engine on a throwaway copy of its file."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        yield engine
        return
    with tempfile.TemporaryDirectory(prefix="kizuna-snapshot-") as folder:
        copy = Path(folder) / "snapshot.db"
        source = sqlite3.connect(engine.url.database)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        private = make_engine(f"sqlite:///{copy}")
        try:
            yield private
        finally:
            private.dispose()
