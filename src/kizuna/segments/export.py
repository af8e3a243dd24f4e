"""A sample preview and the export of a segment's members, masked unless revealed, logged.

Members are evaluated live from the saved definition (the same SQL as the count),
so a preview, a count and an export taken together agree. One row per member:
Kizuna id, shop customer id, the profile traits (personal ones masked unless
``reveal``), free-form attributes as JSON, and the stored RFM segment, CLV and
P(alive) when metrics have been computed.

An export reads one consistent snapshot (SQLite's read transaction; PostgreSQL's
REPEATABLE READ) with a streaming cursor, ``chunk_rows`` rows at a time, and encodes
each chunk as it comes: CSV with a UTF-8 BOM (so Excel reads Japanese) or Parquet
(one row group per chunk). A million-member export never holds more than a chunk.

IMPORTANT: every export and every revealed preview is written to the operation log
(who, when, segment, rows, format, revealed) before the first row leaves.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult

from kizuna.errors import InvalidInput, Problem
from kizuna.security.masking import mask_trait
from kizuna.security.pii import PiiCipher
from kizuna.segments.compiler import compile_segment
from kizuna.segments.report import workspace_scope
from kizuna.store.customers import PII_TRAITS
from kizuna.store.database import Database
from kizuna.store.engine import WRITE_OPTION
from kizuna.store.operation_log import Actor, log_operation
from kizuna.store.scope import Scope
from kizuna.store.segments import compile_context, get_segment
from kizuna.store.tables import customer_metrics, customers
from kizuna.store.workspaces import Workspace, get_workspace

__all__ = [
    "EXPORT_FORMATS",
    "MEMBER_COLUMNS",
    "MemberExport",
    "SegmentPreview",
    "open_export",
    "preview_segment",
]

ExportFormat = Literal["csv", "parquet", "dataframe"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "parquet", "dataframe")
_CLEAR_TRAITS = ("gender", "prefecture", "city", "membership_rank", "registered_at")
_METRICS = ("rfm_segment", "clv", "p_alive")
MEMBER_COLUMNS = ("customer_id", "shop_customer_id", *PII_TRAITS, *_CLEAR_TRAITS,
                  "attributes", *_METRICS)  # fmt: skip
_MEDIA = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
_BOM = "\ufeff"
MAX_PREVIEW = 1000


def _schema(zone: str) -> pa.Schema:
    fields = [pa.field(name, pa.string()) for name in MEMBER_COLUMNS]
    fields[MEMBER_COLUMNS.index("registered_at")] = pa.field(
        "registered_at", pa.timestamp("us", tz=zone)
    )
    for name in ("clv", "p_alive"):
        fields[MEMBER_COLUMNS.index(name)] = pa.field(name, pa.float64())
    return pa.schema(fields)


def _members_query(scope: Scope) -> sa.Select[Any]:
    """Columns of every member row (stored form); the caller adds the segment filter."""
    m = customer_metrics.c
    metrics_join = sa.and_(
        m.workspace_id == customers.c.workspace_id, m.customer_id == customers.c.customer_id
    )
    pii = [customers.c[column] for column in PII_TRAITS.values()]
    return (
        sa.select(
            customers.c.customer_id, customers.c.shop_customer_id, *pii,
            *(customers.c[name] for name in _CLEAR_TRAITS), customers.c.attributes,
            *(m[name] for name in _METRICS),
        )
        .select_from(customers.outerjoin(customer_metrics, metrics_join))
        .where(customers.c.workspace_id == scope.workspace_id)
    )  # fmt: skip


def _member_rows(scope: Scope, key: str) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """(select of the segment's member rows, select of their count)."""
    saved = get_segment(scope, key)
    members = compile_segment(saved.condition, compile_context(scope))
    count = sa.select(sa.func.count()).select_from(members.subquery())
    rows = _members_query(scope).where(customers.c.customer_id.in_(members))
    return rows, count


def _decode(
    rows: Sequence[Any], cipher: PiiCipher, zone: ZoneInfo, reveal: bool
) -> list[dict[str, Any]]:
    """Stored rows as plain records: personal values decrypted, then masked unless ``reveal``."""
    records = []
    for row in rows:
        m = row._mapping
        record: dict[str, Any] = {"customer_id": str(m["customer_id"]),
                                  "shop_customer_id": m["shop_customer_id"]}  # fmt: skip
        for name, column in PII_TRAITS.items():
            value = cipher.decrypt_optional(m[column])
            # IMPORTANT: personal values leave in clear only when explicitly revealed.
            record[name] = value if reveal else mask_trait(name, value)
        for name in _CLEAR_TRAITS:
            record[name] = m[name]
        if record["registered_at"] is not None:
            record["registered_at"] = record["registered_at"].astimezone(zone)
        attributes = m["attributes"]
        record["attributes"] = json.dumps(attributes, ensure_ascii=False) if attributes else None
        record.update({name: m[name] for name in _METRICS})
        records.append(record)
    return records


@dataclass(frozen=True, slots=True)
class SegmentPreview:
    """A random sample of a segment's members."""

    key: str
    members: int
    revealed: bool
    rows: list[dict[str, Any]]

    def frame(self) -> pd.DataFrame:
        """The sample as a DataFrame."""
        return pd.DataFrame(self.rows, columns=list(MEMBER_COLUMNS))


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PREVIEW:
        message = f"must be 1 to {MAX_PREVIEW}"
        raise InvalidInput(Problem("out_of_range", message, "limit"))


def preview_segment(
    db: Database, workspace: str, key: str, *, limit: int = 20, reveal: bool = False,
    actor: Actor,
) -> SegmentPreview:  # fmt: skip
    """``limit`` random members; a revealed preview is logged. ``NotFound``, ``InvalidInput``."""
    _check_limit(limit)
    with workspace_scope(db, workspace) as scope:
        rows, count = _member_rows(scope, key)
        members = int(scope.conn.execute(count).scalar_one())
        sample = scope.conn.execute(rows.order_by(sa.func.random()).limit(limit)).all()
        zone = ZoneInfo(get_workspace(scope.conn, scope.workspace_id).time_zone)
        workspace_id = scope.workspace_id
    records = _decode(sample, db.cipher, zone, reveal)
    if reveal:
        details = {"rows": len(records), "revealed": True, "members": members}
        _log(db, workspace_id, actor, "segment.preview", key, details)
    return SegmentPreview(key, members, reveal, records)


def _log(
    db: Database, workspace_id: Any, actor: Actor, action: str, key: str, details: dict[str, Any]
) -> None:
    with db.write() as conn:
        log_operation(conn, workspace_id=workspace_id, at=db.clock.now(), actor=actor.name,
                      origin=actor.origin, action=action, target=key, details=details)  # fmt: skip


@dataclass
class MemberExport:
    """An export under way: its size is known and logged; iterate to stream it.

    Use as a context manager (or call :meth:`close`) to release the snapshot.
    """

    key: str
    format: ExportFormat
    revealed: bool
    rows: int
    workspace: Workspace
    _conn: Connection
    _result: CursorResult[Any]
    _cipher: PiiCipher = field(repr=False)
    _closed: bool = False

    @property
    def filename(self) -> str:
        """A file name for the download (``vip.csv``)."""
        return f"{self.key}.{self.format}"

    @property
    def media_type(self) -> str:
        """The download's content type."""
        return _MEDIA.get(self.format, "application/octet-stream")

    def records(self) -> Iterator[list[dict[str, Any]]]:
        """The members, one chunk of plain records at a time."""
        zone = ZoneInfo(self.workspace.time_zone)
        try:
            for rows in self._result.partitions():
                yield _decode(rows, self._cipher, zone, self.revealed)
        finally:
            self.close()

    def frames(self) -> Iterator[pd.DataFrame]:
        """The members, one DataFrame per chunk (all columns, even for empty chunks)."""
        for chunk in self.records():
            yield pd.DataFrame(chunk, columns=list(MEMBER_COLUMNS))

    def batches(self) -> Iterator[tuple[bytes, int]]:
        """Encoded bytes with the number of member rows they hold, chunk by chunk."""
        if self.format == "parquet":
            yield from _parquet_batches(self.records(), _schema(self.workspace.time_zone))
        else:
            yield from _csv_batches(self.records())

    def stream(self) -> Iterator[bytes]:
        """The encoded file, chunk by chunk."""
        for data, _ in self.batches():
            yield data

    def close(self) -> None:
        """End the read snapshot (idempotent)."""
        if not self._closed:
            self._closed = True
            self._result.close()
            self._conn.close()

    def __enter__(self) -> MemberExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value: Any, column: str) -> Any:
    """A cell as text; free text that Excel would run as a formula gets a leading ``'``.

    IMPORTANT: names and attributes come from customers; ``=HYPERLINK(…)`` in one must
    not become a live formula on a marketer's machine (CSV injection). Phones are
    stored E.164 by Kizuna itself (``+81…``) and stay as they are.
    """
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and column != "phone" and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_batches(chunks: Iterator[list[dict[str, Any]]]) -> Iterator[tuple[bytes, int]]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(_BOM)
    writer.writerow(MEMBER_COLUMNS)
    yield buffer.getvalue().encode("utf-8"), 0
    for chunk in chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_csv_text(r[c], c) for c in MEMBER_COLUMNS] for r in chunk)
        yield buffer.getvalue().encode("utf-8"), len(chunk)


class _Spool(io.RawIOBase):
    """A write-only file that hands over what was written since the last ``take``."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        """Always writable."""
        return True

    def write(self, data: Any) -> int:
        """Keep ``data``."""
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        """Bytes written so far (Parquet records offsets)."""
        return self._position

    def take(self) -> bytes:
        """What was written since the last call."""
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _parquet_batches(
    chunks: Iterator[list[dict[str, Any]]], schema: pa.Schema
) -> Iterator[tuple[bytes, int]]:
    spool = _Spool()
    with pq.ParquetWriter(spool, schema) as writer:
        for chunk in chunks:
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
            yield spool.take(), len(chunk)
    yield spool.take(), 0


def _snapshot(db: Database) -> Connection:
    """A connection in a read transaction that sees one consistent state throughout."""
    conn = db.engine.connect()
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    conn = conn.execution_options(**{WRITE_OPTION: False})
    conn.begin()
    return conn


def open_export(
    db: Database, workspace: str, key: str, *, format: str, reveal: bool, actor: Actor,
    chunk_rows: int = 5_000,
) -> MemberExport:  # fmt: skip
    """Start exporting a segment's members: counted, logged, ready to stream.

    Raises ``NotFound`` (workspace, segment) or ``InvalidInput`` (format) before
    anything is logged or read.
    """
    if format not in EXPORT_FORMATS:
        message = f"use one of {', '.join(EXPORT_FORMATS)}"
        raise InvalidInput(Problem("unknown_format", message, "format"))
    fmt: ExportFormat = format
    conn = _snapshot(db)
    try:
        ws = get_workspace(conn, workspace)
        scope = Scope(conn, db.cipher, ws.workspace_id, db.clock.now())
        rows, count = _member_rows(scope, key)
        total = int(conn.execute(count).scalar_one())
        details = {"rows": total, "format": fmt, "revealed": reveal}
        _log(db, ws.workspace_id, actor, "segment.export", key, details)
        ordered = rows.order_by(customers.c.customer_id)
        result = conn.execute(ordered, execution_options={"yield_per": chunk_rows})
    except BaseException:
        conn.close()
        raise
    return MemberExport(key, fmt, reveal, total, ws, conn, result, db.cipher)
