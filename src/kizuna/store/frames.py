"""Query results as pandas DataFrames (UUIDs as text, so frames join and print cleanly)."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["read_frame"]


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
