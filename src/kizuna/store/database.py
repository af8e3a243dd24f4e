"""The store handle: an engine, the PII cipher and the clock, with read and write scopes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from kizuna.clock import Clock
from kizuna.security.pii import PiiCipher
from kizuna.store.engine import WRITE_OPTION

__all__ = ["Database"]


@dataclass(slots=True)
class Database:
    """Everything a repository needs to reach the data: where, how to decrypt, and when."""

    engine: Engine
    cipher: PiiCipher
    clock: Clock

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in a write transaction: committed on success, rolled back on error."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read-only transaction (never takes SQLite's write lock)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{WRITE_OPTION: False})
            with conn.begin():
                yield conn

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
