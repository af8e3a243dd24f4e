"""One ``INSERT … ON CONFLICT`` helper for both dialects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

__all__ = ["insert_ignoring", "upsert"]


def _insert(conn: Connection, table: sa.Table) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    *,
    keep: Sequence[str] = (),
) -> None:
    """Insert ``rows``; on a key clash update every other column except ``keep``.

    The update runs only when some value differs, so re-sending the same data
    leaves the row (and its ``updated_at``) untouched.
    """
    if not rows:
        return
    stmt = _insert(conn, table)
    columns = [c for c in rows[0] if c not in keys and c not in keep]
    compared = [c for c in columns if c != "updated_at"]
    changed = sa.or_(*(table.c[c].is_distinct_from(stmt.excluded[c]) for c in compared))
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: stmt.excluded[c] for c in columns},
        where=changed if compared else None,
    )
    conn.execute(stmt, list(rows))


def insert_ignoring(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    returning: sa.Column[Any] | None = None,
) -> list[Any]:
    """Insert ``rows``, skipping any whose ``keys`` already exist.

    Returns the ``returning`` values of the inserted rows, in no particular order
    (asking for parameter order would make SQLAlchemy insert one row per statement).
    """
    if not rows:
        return []
    stmt = _insert(conn, table).on_conflict_do_nothing(index_elements=list(keys))
    if returning is None:
        conn.execute(stmt, list(rows))
        return []
    return list(conn.execute(stmt.returning(returning), list(rows)).scalars())
