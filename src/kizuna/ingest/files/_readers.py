"""Streaming readers for CSV (UTF-8, UTF-8 with BOM, Shift_JIS/CP932), JSONL and Parquet.

Each reader knows its headers before the first row, yields :class:`SourceRow`
one at a time (constant memory), and reports how many bytes it has consumed
so a progress bar can follow. CSV encodings are detected from a sample: a BOM
means UTF-8, a sample that is strict UTF-8 means UTF-8, anything else CP932
(the superset of Shift_JIS that Japanese Windows and Excel write). Text is
decoded with ``surrogateescape``, so a row holding bytes the encoding cannot
read comes out with ``error`` set instead of stopping the file.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from kizuna.errors import InvalidInput, Problem

__all__ = ["FORMATS", "Source", "SourceRow", "detect_encoding", "detect_format", "open_source"]

FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}  # fmt: skip
_SAMPLE = 1 << 16


@dataclass(slots=True)
class SourceRow:
    """One row: its line (or row number), values by header, the raw cells, and any read error."""

    line: int
    values: dict[str, Any]
    raw: list[Any]
    error: str | None = None


class Source(Protocol):
    """An open input file."""

    headers: list[str]
    size: int

    def rows(self) -> Iterator[SourceRow]:
        """Yield the data rows in file order."""
        ...

    def position(self) -> int:
        """Bytes consumed so far."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...


def _unreadable(path: Path, exc: BaseException) -> InvalidInput:
    return InvalidInput(Problem("unreadable_file", f"cannot read {path}: {exc}"))


def detect_format(path: Path, given: str | None) -> str:
    """The file's format: ``given``, else from its suffix; raises InvalidInput."""
    fmt = given or _SUFFIXES.get(path.suffix.lower())
    if fmt not in FORMATS:
        hint = f"unknown format {given!r}" if given else f"cannot tell the format of {path.name}"
        raise InvalidInput(Problem("unknown_format", f"{hint}; use --format csv|jsonl|parquet"))
    return fmt


def detect_encoding(sample: bytes) -> str:
    """``utf-8-sig`` with a BOM, ``utf-8`` if the sample is strict UTF-8, else ``cp932``."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "cp932"
    return "utf-8"


def _has_surrogate(cells: list[str]) -> bool:
    try:
        "".join(cells).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class CsvSource:
    """A CSV file read as text in its detected encoding."""

    def __init__(self, path: Path, encoding: str | None = None) -> None:
        try:
            self._raw: IO[bytes] = path.open("rb")
            self.size = path.stat().st_size
            self.encoding = encoding or detect_encoding(self._raw.read(_SAMPLE))
            self._raw.seek(0)
        except OSError as exc:
            raise _unreadable(path, exc) from exc
        dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
        text = io.TextIOWrapper(self._raw, self.encoding, errors="surrogateescape", newline="")
        self._reader = csv.reader(text, dialect)
        header = next(self._reader, None)
        if not header or _has_surrogate(header):
            self.close()
            why = "it is empty" if not header else f"its header is not valid {self.encoding}"
            raise InvalidInput(Problem("unreadable_file", f"cannot read {path}: {why}"))
        self.headers = [h.strip() for h in header]

    def rows(self) -> Iterator[SourceRow]:
        """Yield rows with their starting line numbers (the header is line 1)."""
        reader, headers, width = self._reader, self.headers, len(self.headers)
        previous = reader.line_num
        for cells in reader:
            line, previous = previous + 1, reader.line_num
            if not cells or (len(cells) == 1 and not cells[0]):
                continue
            row = SourceRow(line, dict(zip(headers, cells, strict=False)), cells)
            if _has_surrogate(cells):
                row.error = f"bytes that are not valid {self.encoding} text"
            elif len(cells) > width and any(c.strip() for c in cells[width:]):
                row.error = f"{len(cells)} cells but the header has {width}"
            yield row

    def position(self) -> int:
        """Bytes read from disk so far."""
        return self._raw.tell()

    def close(self) -> None:
        """Close the file."""
        self._raw.close()


class JsonlSource:
    """One JSON object per line; headers are the keys seen in the first 64 KiB."""

    def __init__(self, path: Path) -> None:
        try:
            self._file: IO[bytes] = path.open("rb")
            self.size = path.stat().st_size
            sample = self._file.read(_SAMPLE)
            self._file.seek(0)
        except OSError as exc:
            raise _unreadable(path, exc) from exc
        seen: dict[str, None] = {}
        for chunk in sample.splitlines()[:-1] or sample.splitlines():
            try:
                obj = orjson.loads(chunk)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                seen.update(dict.fromkeys(obj))
        self.headers = list(seen)

    def rows(self) -> Iterator[SourceRow]:
        """Yield one row per non-blank line."""
        for line, data in enumerate(self._file, start=1):
            if not data.strip():
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                text = data.decode("utf-8", "backslashreplace").rstrip("\r\n")
                yield SourceRow(line, {}, [text], f"not valid JSON ({exc})")
                continue
            if not isinstance(obj, dict):
                yield SourceRow(line, {}, [obj], "not a JSON object")
                continue
            yield SourceRow(line, obj, [obj.get(h) for h in self.headers])

    def position(self) -> int:
        """Bytes read so far."""
        return self._file.tell()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class ParquetSource:
    """A Parquet file read in record batches; rows are numbered from 1."""

    def __init__(self, path: Path, batch_size: int = 4096) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            self._file = pq.ParquetFile(path)
            self.size: int = path.stat().st_size
        except (OSError, pa.ArrowException) as exc:
            raise _unreadable(path, exc) from exc
        self.headers = list(self._file.schema_arrow.names)
        self._total: int = max(int(self._file.metadata.num_rows), 1)
        self._done = 0
        self._batch_size = batch_size

    def rows(self) -> Iterator[SourceRow]:
        """Yield rows batch by batch."""
        for batch in self._file.iter_batches(batch_size=self._batch_size):
            for values in batch.to_pylist():
                self._done += 1
                yield SourceRow(self._done, values, [values.get(h) for h in self.headers])

    def position(self) -> int:
        """Bytes, estimated from the share of rows read."""
        return self.size * self._done // self._total

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def open_source(path: Path, fmt: str | None = None, encoding: str | None = None) -> Source:
    """Open ``path`` for streaming; raises InvalidInput when it cannot be read."""
    if not path.is_file():
        raise InvalidInput(Problem("unreadable_file", f"cannot read {path}: no such file"))
    kind = detect_format(path, fmt)
    if kind == "csv":
        return CsvSource(path, encoding)
    if kind == "jsonl":
        return JsonlSource(path)
    return ParquetSource(path)
