"""Workspaces (one per brand and environment) and their ingestion write keys."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.config import DEFAULT_TIME_ZONE
from kizuna.errors import Conflict, InvalidInput, NotFound, Problem, Unauthorized
from kizuna.store.tables import workspaces, write_keys
from kizuna.store.types import new_id

__all__ = [
    "Workspace",
    "WriteKey",
    "authenticate_write_key",
    "create_workspace",
    "create_write_key",
    "get_workspace",
    "list_workspaces",
    "list_write_keys",
    "revoke_write_key",
]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_KEY_PREFIX = "kz_"


@dataclass(frozen=True, slots=True)
class Workspace:
    """A tenant: one brand in one environment."""

    workspace_id: uuid.UUID
    slug: str
    name: str
    environment: str
    brand: str
    time_zone: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WriteKey:
    """A write key as listed (the secret itself is shown only once, at creation)."""

    prefix: str
    name: str
    workspace_id: uuid.UUID
    created_at: datetime
    revoked_at: datetime | None


def _to_workspace(row: sa.Row[tuple[object, ...]]) -> Workspace:
    m = row._mapping
    return Workspace(
        m["workspace_id"],
        m["slug"],
        m["name"],
        m["environment"],
        m["brand"],
        m["time_zone"],
        m["created_at"],
    )


def create_workspace(
    conn: Connection,
    slug: str,
    *,
    name: str | None = None,
    environment: str = "production",
    brand: str | None = None,
    time_zone: str = DEFAULT_TIME_ZONE,
    now: datetime,
) -> Workspace:
    """Create a workspace; InvalidInput for a bad slug, zone or environment, Conflict if taken."""
    problems = []
    if not _SLUG.match(slug):
        problems.append(Problem("invalid_slug", "use lower-case letters, digits and '-'", "slug"))
    if environment not in ("production", "development"):
        problems.append(
            Problem("invalid_environment", "must be production or development", "environment")
        )
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            Problem("invalid_time_zone", f"unknown time zone {time_zone!r}", "time_zone")
        )
    if problems:
        raise InvalidInput(problems)
    if conn.execute(sa.select(workspaces.c.slug).where(workspaces.c.slug == slug)).first():
        raise Conflict(f"workspace {slug!r} already exists")
    values = {
        "workspace_id": new_id(),
        "slug": slug,
        "name": name or slug,
        "environment": environment,
        "brand": brand or slug,
        "time_zone": time_zone,
        "settings": {},
        "created_at": now,
    }
    conn.execute(workspaces.insert().values(**values))
    return get_workspace(conn, slug)


def get_workspace(conn: Connection, slug_or_id: str | uuid.UUID) -> Workspace:
    """Find a workspace by slug or id; raises NotFound."""
    query = sa.select(workspaces)
    if isinstance(slug_or_id, uuid.UUID):
        query = query.where(workspaces.c.workspace_id == slug_or_id)
    else:
        query = query.where(workspaces.c.slug == slug_or_id)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no workspace {slug_or_id!s}")
    return _to_workspace(row)


def list_workspaces(conn: Connection) -> list[Workspace]:
    """Every workspace, by brand then environment."""
    rows = conn.execute(sa.select(workspaces).order_by(workspaces.c.brand, workspaces.c.slug))
    return [_to_workspace(row) for row in rows]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def create_write_key(conn: Connection, workspace_id: uuid.UUID, name: str, now: datetime) -> str:
    """Create and return a new write key; only its hash is stored."""
    key = _KEY_PREFIX + secrets.token_urlsafe(24)
    conn.execute(
        write_keys.insert().values(
            key_hash=_digest(key),
            workspace_id=workspace_id,
            prefix=key[:10],
            name=name,
            created_at=now,
        )
    )
    return key


def list_write_keys(conn: Connection, workspace_id: uuid.UUID) -> list[WriteKey]:
    """The workspace's write keys, newest first (prefixes only)."""
    rows = conn.execute(
        sa.select(write_keys)
        .where(write_keys.c.workspace_id == workspace_id)
        .order_by(write_keys.c.created_at.desc())
    )
    return [WriteKey(r.prefix, r.name, r.workspace_id, r.created_at, r.revoked_at) for r in rows]


def revoke_write_key(conn: Connection, workspace_id: uuid.UUID, prefix: str, now: datetime) -> int:
    """Revoke the workspace's keys starting with ``prefix``; returns how many; NotFound if none."""
    result = conn.execute(
        write_keys.update()
        .where(write_keys.c.workspace_id == workspace_id)
        .where(write_keys.c.prefix == prefix[:10])
        .where(write_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if result.rowcount == 0:
        raise NotFound(f"no active write key starting {prefix!r}")
    return result.rowcount


def authenticate_write_key(conn: Connection, key: str) -> Workspace:
    """Return the workspace a write key belongs to; raises Unauthorized if unknown or revoked."""
    row = conn.execute(
        sa.select(write_keys.c.workspace_id)
        .where(write_keys.c.key_hash == _digest(key))
        .where(write_keys.c.revoked_at.is_(None))
    ).first()
    if row is None:
        raise Unauthorized("unknown or revoked write key")
    return get_workspace(conn, row.workspace_id)
