"""The import loop: read → map → convert → validate a chunk → write it in one transaction.

Every row of a chunk is validated into a record before the chunk is written,
so a bad row never leaves part of itself stored; a chunk the database refuses
(a value too long for its column, say) is split in halves until the refusing
record is found and rejected, so its neighbours still import. Memory stays
constant: at most one chunk of records and its raw rows are held.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import sqlalchemy as sa

from kizuna.ingest.files._convert import Accepted, Outcome, Rejected, make_converter
from kizuna.ingest.files._mapping import (
    ColumnMap,
    MappingSpec,
    bind_columns,
    check_kind,
    load_mapping,
)
from kizuna.ingest.files._readers import Source, open_source
from kizuna.ingest.files._writers import WRITERS
from kizuna.store.bulk import refresh_statistics
from kizuna.store.database import Database
from kizuna.store.scope import Scope
from kizuna.store.tables import metadata
from kizuna.store.workspaces import Workspace

__all__ = ["ImportSummary", "import_file"]

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class ImportSummary:
    """What an import did: rows read, imported and rejected, and how fast."""

    kind: str
    rows_read: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    seconds: float = 0.0
    reject_path: Path | None = None
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        """Rows read per second of wall time."""
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


class _Rejects:
    """The reject file: line, reason and the original row, written only if needed."""

    def __init__(self, path: Path, headers: list[str]) -> None:
        self.path, self._headers = path, headers
        self._file: IO[str] | None = None
        self._writer: Any = None

    def write(self, line: int, reason: str, raw: list[Any]) -> None:
        """Append one rejected row."""
        if self._writer is None:
            self._file = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "reason", *self._headers])
        self._writer.writerow([line, reason, *(_cell(v) for v in raw)])

    def close(self) -> None:
        """Close the file if it was opened."""
        if self._file is not None:
            self._file.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        # Undecodable bytes (kept as surrogates) are shown as \xNN.
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, dict | list):
        return orjson.dumps(value, default=str).decode()
    return str(value)


class _Run:
    """One import in progress."""

    def __init__(
        self, db: Database, ws: Workspace, cm: ColumnMap, source: Source, rejects: _Rejects,
        chunk_rows: int, progress: Progress | None,
    ) -> None:  # fmt: skip
        self.db, self.ws, self.cm, self.source = db, ws, cm, source
        self.rejects, self.chunk_rows, self.progress = rejects, chunk_rows, progress
        self.summary = ImportSummary(cm.kind, ignored_columns=cm.ignored)
        self.raw: dict[int, list[Any]] = {}
        self.chunk: list[Accepted] = []
        self.chunk_lines = 0

    def run(self) -> None:
        """Stream every row through conversion and chunked writes."""
        converter = make_converter(self.cm, self.ws.time_zone)
        for row in self.source.rows():
            self.summary.rows_read += 1
            if row.error:
                self.rejects.write(row.line, row.error, row.raw)
                self.summary.rows_rejected += 1
                continue
            self.raw[row.line] = row.raw
            self._take(converter.feed(row.line, self.cm.apply(row.values)))
            if self.chunk_lines >= self.chunk_rows:
                self._flush()
            elif self.progress and self.summary.rows_read % 1000 == 0:
                self.progress(self.source.position(), self.source.size)
        self._take(converter.finish())
        self._flush()

    def _take(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, Rejected):
                for line, reason in outcome.reasons.items():
                    self._reject(line, reason)
            else:
                self.chunk.append(outcome)
                self.chunk_lines += len(outcome.lines)

    def _reject(self, line: int, reason: str) -> None:
        self.rejects.write(line, reason, self.raw.pop(line, []))
        self.summary.rows_rejected += 1

    def _flush(self) -> None:
        chunk, self.chunk, self.chunk_lines = self.chunk, [], 0
        self._write(chunk)
        if self.progress:
            self.progress(self.source.position(), self.source.size)

    def _write(self, chunk: list[Accepted]) -> None:
        if not chunk:
            return
        try:
            with self.db.write() as conn:
                scope = Scope(conn, self.db.cipher, self.ws.workspace_id, self.db.clock.now())
                WRITERS[self.cm.kind](scope, [a.record for a in chunk])
        except sa.exc.DBAPIError as exc:
            if len(chunk) > 1:
                half = len(chunk) // 2
                self._write(chunk[:half])
                self._write(chunk[half:])
                return
            reason = f"the store refused it: {str(exc.orig).strip().splitlines()[0]}"
            for line in chunk[0].lines:
                self._reject(line, reason)
            return
        for accepted in chunk:
            for line in accepted.lines:
                self.raw.pop(line, None)
            self.summary.rows_imported += len(accepted.lines)


def import_file(
    db: Database,
    workspace: Workspace,
    kind: str,
    path: Path,
    *,
    mapping: MappingSpec | Path | None = None,
    reject_path: Path | None = None,
    fmt: str | None = None,
    encoding: str | None = None,
    chunk_rows: int = 5000,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import a CSV, JSONL or Parquet file of ``kind`` into ``workspace``.

    Raises InvalidInput before writing anything when the kind is unknown, the
    file cannot be read or a required column is missing. Bad rows are written to
    ``reject_path`` (default ``FILE.rejected.csv``) and the rest is imported.
    Re-importing the same file changes nothing.
    """
    started = time.perf_counter()
    spec = mapping if isinstance(mapping, MappingSpec) else load_mapping(mapping)
    check_kind(kind)
    source = open_source(path, fmt, encoding)
    try:
        cm = bind_columns(kind, source.headers, spec)
        rejects = _Rejects(reject_path or path.with_name(path.name + ".rejected.csv"),
                           source.headers)  # fmt: skip
        run = _Run(db, workspace, cm, source, rejects, chunk_rows, progress)
        try:
            run.run()
        finally:
            rejects.close()
    finally:
        source.close()
    refresh_statistics(db.engine, list(metadata.tables.values()))
    run.summary.seconds = time.perf_counter() - started
    run.summary.reject_path = rejects.path if run.summary.rows_rejected else None
    return run.summary
