"""The data dictionary, read from the schema itself so it never drifts.

Every table of ``kizuna.store.tables.metadata`` is described: its keys (primary key,
unique constraints, indexes) and every column with its type, meaning, whether it
holds personal data and how that is protected, and how and how often it changes.
The words come from the ``info`` dictionaries of the tables and columns::

    sa.Table("customers", metadata, ...,
             info={"area": "hub", "meaning": "one person", "updated": "on ingest"})
    sa.Column("email_enc", sa.LargeBinary,
              info={"meaning": "e-mail address", "personal": True})

``meaning`` (required), ``updated`` (a column's overrides its table's), ``personal``
(default ``False``), ``protection`` (default for personal columns: ``encrypted``
for ``*_enc``, ``hashed`` for ``*_hash``, ``clear`` otherwise; or ``masked``), and
for tables ``area`` (one of :data:`AREAS`). Whatever lacks a meaning is marked
:data:`UNDOCUMENTED`; :func:`undocumented_personal` names the columns whose names
look personal (``*_enc``, ``*_hash``, e-mail, phone, IP) but say nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from kizuna.security.keys import KEYS_DIR_NAME, LOOKUP_FILE_NAME
from kizuna.security.pii import SECRET_FILE_NAME
from kizuna.store.tables import metadata
from kizuna.store.types import UTCDateTime

__all__ = [
    "AREAS",
    "PROTECTIONS",
    "STORES",
    "UNDOCUMENTED",
    "Area",
    "ColumnDoc",
    "DataDictionary",
    "KeyDoc",
    "Store",
    "TableDoc",
    "build_dictionary",
    "undocumented_personal",
]

UNDOCUMENTED = "(undocumented)"


@dataclass(frozen=True, slots=True)
class Area:
    """A part of the product that owns tables, for grouping."""

    key: str
    title_ja: str
    title_en: str


AREAS = (
    Area("installation", "インストール全体", "Installation"),
    Area("hub", "顧客データ統合", "Customer data hub"),
    Area("analytics", "分析", "Analytics"),
    Area("segments", "セグメント", "Segments"),
    Area("delivery", "配信", "Delivery"),
    Area("scenarios", "シナリオ", "Scenarios"),
    Area("campaigns", "キャンペーン", "Campaigns"),
    Area("measurement", "効果測定", "Measurement"),
    Area("governance", "ガバナンス", "Governance"),
)
_OTHER = Area("other", "その他(領域未設定)", "Other (no area set)")

PROTECTIONS = {
    "encrypted": "encrypted at rest (AES-256-GCM, rotating key); masked unless revealed",
    "hashed": "keyed hash only (HMAC-SHA256, never rotated): matches, cannot be read back",
    "masked": "stored in clear; masked wherever shown or logged",
    "clear": "stored and shown in clear (see the column's meaning for why)",
}


@dataclass(frozen=True, slots=True)
class Store:
    """Somewhere Kizuna keeps data."""

    name: str
    where: str
    what: str
    updated: str


STORES = (
    Store("Database / データベース",
          "SQLite file `$KIZUNA_HOME/kizuna.db` (WAL), or PostgreSQL at `KIZUNA_DATABASE_URL`",
          "every table below; schema by Alembic migrations (`kizuna init` / start-up)",
          "continuously, as described per table"),
    Store("Current key / 現在の鍵", f"`$KIZUNA_HOME/{SECRET_FILE_NAME}` or `KIZUNA_SECRET_KEY`",
          "the key personal data is encrypted with (secret; back it up with the database)",
          "first run; `kizuna keys rotate`"),
    Store("Older keys / 旧鍵", f"`$KIZUNA_HOME/{KEYS_DIR_NAME}/rotating-*.key`, "
          f"`retired-*.key` or `KIZUNA_SECRET_KEYS_OLD`",
          "keys that still decrypt values, old links and backups (secret)",
          "`kizuna keys rotate`; deleted only by the operator"),
    Store("Lookup key / 照合用の鍵",
          f"`$KIZUNA_HOME/{KEYS_DIR_NAME}/{LOOKUP_FILE_NAME}` or `KIZUNA_LOOKUP_KEY`",
          "the HMAC key of every `*_hash` column (secret; derived from the first key)",
          "written once, at the first rotation; never changes"),
    Store("Operator token / 運用トークン", "`$KIZUNA_HOME/api.token` or `KIZUNA_API_TOKEN`",
          "the operator's API token (secret)", "first run"),
    Store("Audit anchor / 監査アンカー", "`$KIZUNA_HOME/audit.anchor` (or `--anchor`)",
          "the newest operation-log entry at the last clean `kizuna audit verify`",
          "each clean `kizuna audit verify`"),
    Store("Exports and reject files / 出力ファイル", "wherever the operator writes them",
          "segment exports (masked unless revealed; each logged in `operation_log`), import "
          "reject files", "on request"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ColumnDoc:
    """One column: what it holds and how it is kept."""

    name: str
    type: str
    required: bool
    meaning: str
    personal: bool
    protection: str | None  # a key of PROTECTIONS, for personal columns
    updated: str | None  # None: as the table


@dataclass(frozen=True, slots=True)
class KeyDoc:
    """A primary key, unique constraint or index."""

    kind: str  # primary key | unique | unique index | index
    name: str
    columns: tuple[str, ...]
    where: str | None = None  # the condition of a partial index


@dataclass(frozen=True, slots=True)
class TableDoc:
    """One table: meaning, how it is updated, its keys and columns."""

    name: str
    area: Area
    meaning: str
    updated: str
    keys: tuple[KeyDoc, ...]
    columns: tuple[ColumnDoc, ...]

    @property
    def personal_columns(self) -> tuple[ColumnDoc, ...]:
        """The columns holding personal data."""
        return tuple(c for c in self.columns if c.personal)


@dataclass(frozen=True, slots=True)
class DataDictionary:
    """Every store and table."""

    stores: tuple[Store, ...]
    tables: tuple[TableDoc, ...]


def build_dictionary(schema: sa.MetaData = metadata) -> DataDictionary:
    """The dictionary of every table in ``schema``, grouped by area, then by name."""
    order = {area.key: i for i, area in enumerate((*AREAS, _OTHER))}
    tables = sorted((_table(t) for t in schema.tables.values()),
                    key=lambda t: (order[t.area.key], t.name))  # fmt: skip
    return DataDictionary(STORES, tuple(tables))


def _table(table: sa.Table) -> TableDoc:
    info = table.info
    area = next((a for a in AREAS if a.key == info.get("area")), _OTHER)
    return TableDoc(
        name=table.name,
        area=area,
        meaning=str(info.get("meaning") or UNDOCUMENTED),
        updated=str(info.get("updated") or UNDOCUMENTED),
        keys=_keys(table),
        columns=tuple(_column(c) for c in table.columns),
    )


def _column(column: sa.Column[Any]) -> ColumnDoc:
    info = column.info
    personal = bool(info.get("personal", False))
    protection = info.get("protection") or (_default_protection(column.name) if personal else None)
    if protection is not None and protection not in PROTECTIONS:
        raise ValueError(f"{column.table.name}.{column.name}: unknown protection {protection!r}")
    return ColumnDoc(
        name=column.name,
        type=_type_name(column.type),
        required=not column.nullable,
        meaning=str(info.get("meaning") or UNDOCUMENTED),
        personal=personal,
        protection=protection,
        updated=info.get("updated"),
    )


def _default_protection(name: str) -> str:
    if name.endswith("_enc"):
        return "encrypted"
    return "hashed" if name.endswith("_hash") else "clear"


def _keys(table: sa.Table) -> tuple[KeyDoc, ...]:
    keys = [KeyDoc("primary key", str(table.primary_key.name or f"pk_{table.name}"),
                   tuple(c.name for c in table.primary_key.columns))]  # fmt: skip
    uniques = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    for unique in sorted(uniques, key=lambda c: str(c.name)):
        keys.append(KeyDoc("unique", str(unique.name), tuple(c.name for c in unique.columns)))
    for index in sorted(table.indexes, key=lambda i: str(i.name)):
        where = index.dialect_options["postgresql"].get("where")
        kind = "unique index" if index.unique else "index"
        columns = tuple(str(getattr(e, "name", e)) for e in index.expressions)
        keys.append(KeyDoc(kind, str(index.name), columns, None if where is None else str(where)))
    return tuple(keys)


def _type_name(kind: sa.types.TypeEngine[Any]) -> str:
    """A dialect-neutral name: the dictionary reads the same for SQLite and PostgreSQL."""
    if isinstance(kind, UTCDateTime):
        return "timestamp (UTC)"
    if isinstance(kind, sa.JSON):
        return "json"
    if isinstance(kind, sa.Uuid):
        return "uuid"
    if isinstance(kind, sa.Boolean):
        return "boolean"
    if isinstance(kind, sa.Integer):
        return {"SmallInteger": "small integer", "BigInteger": "big integer"}.get(
            type(kind).__name__, "integer"
        )
    if isinstance(kind, sa.Float):
        return "float"
    if isinstance(kind, sa.LargeBinary):
        return f"bytes({kind.length})" if kind.length else "bytes"
    if isinstance(kind, sa.String):
        return f"text({kind.length})" if kind.length else "text"
    return type(kind).__name__.lower()


_PERSONAL_NAMES = ("email", "phone", "ip")


def _looks_personal(name: str) -> bool:
    parts = name.split("_")
    return name.endswith(("_enc", "_hash")) or any(p in _PERSONAL_NAMES for p in parts)


def undocumented_personal(schema: sa.MetaData = metadata) -> list[str]:
    """``table.column`` of columns that look personal but lack a meaning or a ``personal`` flag."""
    missing = []
    for table in sorted(schema.tables.values(), key=lambda t: t.name):
        for column in table.columns:
            if not _looks_personal(column.name):
                continue
            if not column.info.get("meaning") or "personal" not in column.info:
                missing.append(f"{table.name}.{column.name}")
    return missing
