"""Message templates and reusable content blocks, and the recipient data templates show.

Templates are stored per workspace by key, one row per key holding the current
version: saving a changed template bumps ``version`` (the pipeline caches compiled
templates by key and version), saving it unchanged keeps it. Checking a template
before it is saved is the content layer's job (:func:`kizuna.content.library.save_template`);
this module only reads and writes rows.

:func:`read_recipients` decrypts, for a batch of customers in one query, only the
personal fields a message may show (names, kana and email; no phone, address or
full birthday) — what APPI's data minimisation asks of a renderer.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.content.spec import TemplateSpec
from kizuna.errors import InvalidInput, NotFound, Problem
from kizuna.store.scope import Scope
from kizuna.store.tables import content_blocks, customer_metrics, customers, templates

__all__ = [
    "BlockRecord",
    "Recipient",
    "TemplateRecord",
    "archive_template",
    "get_block",
    "get_template",
    "get_templates",
    "list_blocks",
    "list_templates",
    "load_blocks",
    "put_block",
    "put_template",
    "read_recipients",
]

BLOCK_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_MAX_BLOCK = 200_000


@dataclass(frozen=True, slots=True)
class TemplateRecord:
    """A template as stored: its current version."""

    key: str
    channel: str
    name: str
    subject: str | None
    body: str
    html: str | None
    extra: dict[str, Any]
    version: int
    created_by: str  # who saved this version
    updated_at: datetime
    archived_at: datetime | None

    def spec(self) -> TemplateSpec:
        """The spec this version was saved from."""
        return TemplateSpec.model_validate(
            {"key": self.key, "channel": self.channel, "name": self.name,
             "subject": self.subject, "body": self.body, "html": self.html, **self.extra}
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """A reusable fragment, included as ``{% include "block:<key>" %}``."""

    key: str
    body: str
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Recipient:
    """What a message may show about its customer, personal fields decrypted."""

    customer_id: uuid.UUID
    shop_customer_id: str | None
    first_name: str | None
    last_name: str | None
    first_name_kana: str | None
    last_name_kana: str | None
    email: str | None
    prefecture: str | None
    city: str | None
    membership_rank: str | None
    birth_md: str | None  # "MM-DD"
    registered_at: datetime | None
    attributes: dict[str, Any]
    rfm_segment: str | None
    clv: float | None


def _record(row: sa.Row[Any]) -> TemplateRecord:
    m = row._mapping
    return TemplateRecord(
        key=m["template_key"], channel=m["channel"], name=m["name"], subject=m["subject"],
        body=m["body"], html=m["html"], extra=dict(m["extra"] or {}), version=m["version"],
        created_by=m["created_by"], updated_at=m["updated_at"], archived_at=m["archived_at"],
    )  # fmt: skip


def _mine(scope: Scope) -> sa.ColumnElement[bool]:
    return templates.c.workspace_id == scope.workspace_id


def get_template(scope: Scope, key: str, *, archived: bool = False) -> TemplateRecord:
    """The current version of a template; ``NotFound`` when absent (or archived, unless asked)."""
    query = sa.select(templates).where(_mine(scope), templates.c.template_key == key)
    if not archived:
        query = query.where(templates.c.archived_at.is_(None))
    row = scope.conn.execute(query).first()
    if row is None:
        raise NotFound(f"no template {key!r} in this workspace")
    return _record(row)


def get_templates(scope: Scope, keys: Iterable[str]) -> dict[str, TemplateRecord]:
    """The live templates among ``keys``, by key, in one query (absent keys are left out)."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = scope.conn.execute(
        sa.select(templates).where(
            _mine(scope), templates.c.archived_at.is_(None), templates.c.template_key.in_(wanted)
        )
    )
    return {record.key: record for record in map(_record, rows)}


def list_templates(scope: Scope, *, channel: str | None = None) -> list[TemplateRecord]:
    """The workspace's live templates by key (optionally one channel's)."""
    query = sa.select(templates).where(_mine(scope), templates.c.archived_at.is_(None))
    if channel is not None:
        query = query.where(templates.c.channel == channel)
    return [_record(r) for r in scope.conn.execute(query.order_by(templates.c.template_key))]


def _values(spec: TemplateSpec) -> dict[str, Any]:
    return {"channel": spec.channel, "name": spec.name, "subject": spec.subject,
            "body": spec.body, "html": spec.html, "extra": spec.extra()}  # fmt: skip


def put_template(scope: Scope, spec: TemplateSpec, actor: str) -> TemplateRecord:
    """Store ``spec`` as the template's next version (unchanged content keeps its version).

    Saving over an archived template brings it back. The caller has checked ``spec``.
    """
    values = _values(spec)
    try:
        current = get_template(scope, spec.key, archived=True)
    except NotFound:
        current = None
    if current is None:
        scope.conn.execute(
            templates.insert().values(
                workspace_id=scope.workspace_id, template_key=spec.key, version=1,
                created_by=actor, updated_at=scope.now, archived_at=None, **values,
            )
        )  # fmt: skip
    elif current.archived_at is not None or _values(current.spec()) != values:
        scope.conn.execute(
            templates.update()
            .where(_mine(scope), templates.c.template_key == spec.key)
            .values(version=current.version + 1, created_by=actor, updated_at=scope.now,
                    archived_at=None, **values)
        )  # fmt: skip
    return get_template(scope, spec.key)


def archive_template(scope: Scope, key: str) -> None:
    """Archive a template (queued messages using it then fail); ``NotFound`` if absent."""
    get_template(scope, key)
    scope.conn.execute(
        templates.update()
        .where(_mine(scope), templates.c.template_key == key)
        .values(archived_at=scope.now, updated_at=scope.now)
    )


def _block(row: sa.Row[Any]) -> BlockRecord:
    return BlockRecord(row.block_key, row.body, row.updated_by, row.updated_at)


def get_block(scope: Scope, key: str) -> BlockRecord:
    """One block; ``NotFound`` when absent."""
    row = scope.conn.execute(
        sa.select(content_blocks).where(
            content_blocks.c.workspace_id == scope.workspace_id, content_blocks.c.block_key == key
        )
    ).first()
    if row is None:
        raise NotFound(f"no block {key!r} in this workspace")
    return _block(row)


def list_blocks(scope: Scope) -> list[BlockRecord]:
    """The workspace's blocks by key."""
    rows = scope.conn.execute(
        sa.select(content_blocks)
        .where(content_blocks.c.workspace_id == scope.workspace_id)
        .order_by(content_blocks.c.block_key)
    )
    return [_block(r) for r in rows]


def load_blocks(scope: Scope) -> dict[str, str]:
    """Every block's body by key (what the template loader serves)."""
    rows = scope.conn.execute(
        sa.select(content_blocks.c.block_key, content_blocks.c.body).where(
            content_blocks.c.workspace_id == scope.workspace_id
        )
    )
    return {key: body for key, body in rows}


def put_block(scope: Scope, key: str, body: str, actor: str) -> BlockRecord:
    """Create or replace a block; ``InvalidInput`` for a bad key or an oversized body."""
    if not BLOCK_KEY.fullmatch(key):
        raise InvalidInput(Problem("invalid_key", "use a-z, 0-9, _ and -, up to 64", "key"))
    if len(body) > _MAX_BLOCK:
        raise InvalidInput(Problem("too_long", f"at most {_MAX_BLOCK} characters", "body"))
    where = sa.and_(
        content_blocks.c.workspace_id == scope.workspace_id, content_blocks.c.block_key == key
    )
    values = {"body": body, "updated_by": actor, "updated_at": scope.now}
    exists = scope.conn.execute(sa.select(content_blocks.c.block_key).where(where)).first()
    if exists is None:
        scope.conn.execute(
            content_blocks.insert().values(workspace_id=scope.workspace_id, block_key=key, **values)
        )
    else:
        scope.conn.execute(content_blocks.update().where(where).values(**values))
    return get_block(scope, key)


_DECRYPTED = ("first_name", "last_name", "first_name_kana", "last_name_kana", "email")


def read_recipients(scope: Scope, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, Recipient]:
    """The recipients among ``customer_ids`` that exist, in one query (metrics joined)."""
    if not customer_ids:
        return {}
    c, m = customers.c, customer_metrics.c
    metrics = sa.and_(m.workspace_id == c.workspace_id, m.customer_id == c.customer_id)
    query = (
        sa.select(
            c.customer_id, c.shop_customer_id, *(c[f"{n}_enc"] for n in _DECRYPTED),
            c.prefecture, c.city, c.membership_rank, c.birth_md, c.registered_at, c.attributes,
            m.rfm_segment, m.clv,
        )
        .select_from(customers.outerjoin(customer_metrics, metrics))
        .where(c.workspace_id == scope.workspace_id, c.customer_id.in_(set(customer_ids)))
    )  # fmt: skip
    found = {}
    for row in scope.conn.execute(query):
        r = row._mapping
        plain = {n: scope.cipher.decrypt_optional(r[f"{n}_enc"]) for n in _DECRYPTED}
        found[r["customer_id"]] = Recipient(
            customer_id=r["customer_id"], shop_customer_id=r["shop_customer_id"], **plain,
            prefecture=r["prefecture"], city=r["city"], membership_rank=r["membership_rank"],
            birth_md=r["birth_md"], registered_at=r["registered_at"],
            attributes=dict(r["attributes"] or {}), rfm_segment=r["rfm_segment"], clv=r["clv"],
        )  # fmt: skip
    return found
