"""Query results as pandas DataFrames: row by row for small reads, column-wise for big ones."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["fetch_frame", "read_frame"]


def read_frame(conn: Connection, query: sa.Executable) -> pd.DataFrame:
    """Run ``query`` and return its rows as a DataFrame with the query's column names."""
    result = conn.execute(query)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for column in frame.columns:
        if frame[column].dtype == object and len(frame) and _holds_uuids(frame[column]):
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    return frame


def _holds_uuids(column: pd.Series[Any]) -> bool:
    first = column.dropna()
    return bool(len(first)) and isinstance(first.iloc[0], uuid.UUID)


def fetch_frame(
    conn: Connection,
    query: sa.Select[Any],
    *,
    uuids: tuple[str, ...] = (),
    timestamps: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Like ``read_frame``, but converts UUID and timestamp columns in bulk (million-row frames).

    The database returns them untyped (SQLite: hex and ISO text; PostgreSQL: text and
    epoch microseconds); pandas converts whole columns, to the same strings and UTC
    datetimes ``read_frame`` would give.
    """
    sqlite = conn.dialect.name == "sqlite"
    columns: list[sa.ColumnElement[Any]] = []
    for column in query.selected_columns:
        if column.name in uuids:
            raw = sa.type_coerce(column, sa.String) if sqlite else sa.cast(column, sa.String)
            column = raw.label(column.name)
        elif column.name in timestamps and sqlite:
            column = sa.type_coerce(column, sa.String).label(column.name)
        elif column.name in timestamps:
            micros = sa.extract("epoch", column) * 1_000_000
            column = sa.cast(micros, sa.BigInteger).label(column.name)
        columns.append(column)
    result = conn.execute(query.with_only_columns(*columns))
    keys = list(result.keys())
    by_column = list(zip(*result.all(), strict=True)) or [()] * len(keys)
    frame = pd.DataFrame({key: list(col) for key, col in zip(keys, by_column, strict=True)})
    for name in uuids:
        text = frame[name].astype("str")
        if sqlite:  # 32 hex digits -> the canonical 8-4-4-4-12 form str(UUID) gives
            part = text.str.slice
            text = part(0, 8) + "-" + part(8, 12) + "-" + part(12, 16) + "-" + part(16, 20)
            text = text + "-" + part(20, 32)
        frame[name] = text
    for name in timestamps:
        values = frame[name]
        if sqlite:
            stamps = pd.to_datetime(values, utc=True, format="ISO8601")
        else:
            stamps = pd.to_datetime(values.astype("int64"), utc=True, unit="us")
        frame[name] = stamps.astype("datetime64[us, UTC]")
    return frame
