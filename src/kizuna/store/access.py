"""Credentials and network rules: sign-in sessions, personal API tokens, IP allow-lists.

Session cookies, CSRF tokens and API tokens are 256-bit random strings; only their
SHA-256 is stored, so a copy of the database lets no one act as a user.
``last_seen_at`` / ``last_used_at`` move at most once a minute, so reading pages
does not turn every request into a write.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.errors import Conflict, InvalidInput, NotFound, Problem
from kizuna.store.tables_access import api_tokens, ip_allowlists, sessions
from kizuna.store.types import new_id

__all__ = [
    "TOKEN_PREFIX",
    "AllowedNetwork",
    "ApiToken",
    "NewSession",
    "SessionRecord",
    "TokenRecord",
    "allow_network",
    "create_api_token",
    "create_session",
    "delete_session",
    "delete_user_sessions",
    "deny_network",
    "digest",
    "find_api_token",
    "find_session",
    "list_allowed_networks",
    "list_api_tokens",
    "normalize_cidr",
    "revoke_api_token",
    "touch_api_token",
    "touch_session",
]

TOKEN_PREFIX = "kzp_"  # noqa: S105 - tells personal tokens from the operator's and write keys
_TOUCH_EVERY = timedelta(minutes=1)


def digest(secret: str) -> bytes:
    """SHA-256 of a random secret (a session id, CSRF token or API token)."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: the two secrets are handed to the browser and never stored."""

    session_token: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A stored session."""

    session_hash: bytes
    user_id: uuid.UUID
    csrf_hash: bytes
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime


def create_session(
    conn: Connection, user_id: uuid.UUID, now: datetime, lifetime: timedelta, ip: str | None
) -> NewSession:
    """Open a session for the account; drops the account's sessions that have ended."""
    conn.execute(
        sessions.delete().where(sessions.c.user_id == user_id).where(sessions.c.expires_at <= now)
    )
    opened = NewSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now + lifetime)
    conn.execute(
        sessions.insert().values(
            session_hash=digest(opened.session_token), user_id=user_id,
            csrf_hash=digest(opened.csrf_token), created_at=now, expires_at=opened.expires_at,
            last_seen_at=now, ip=(ip or "")[:64] or None,
        )
    )  # fmt: skip
    return opened


def find_session(conn: Connection, session_token: str) -> SessionRecord | None:
    """The session the cookie names (ended or not), or None."""
    row = conn.execute(
        sa.select(sessions).where(sessions.c.session_hash == digest(session_token))
    ).first()
    if row is None:
        return None
    m = row._mapping
    return SessionRecord(bytes(m["session_hash"]), m["user_id"], bytes(m["csrf_hash"]),
                         m["created_at"], m["expires_at"], m["last_seen_at"])  # fmt: skip


def touch_session(conn: Connection, session: SessionRecord, now: datetime) -> None:
    """Note the session was used now (at most once a minute)."""
    if now - session.last_seen_at >= _TOUCH_EVERY:
        conn.execute(
            sessions.update()
            .where(sessions.c.session_hash == session.session_hash)
            .values(last_seen_at=now)
        )


def delete_session(conn: Connection, session_hash: bytes) -> None:
    """End one session (sign-out)."""
    conn.execute(sessions.delete().where(sessions.c.session_hash == session_hash))


def delete_user_sessions(conn: Connection, user_id: uuid.UUID) -> int:
    """End every session of an account (disabled, password reset); how many there were."""
    return conn.execute(sessions.delete().where(sessions.c.user_id == user_id)).rowcount


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A personal API token as listed (the token itself is shown once, at creation)."""

    token_id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What an active token authenticates as."""

    token_id: uuid.UUID
    user_id: uuid.UUID
    last_used_at: datetime | None


def create_api_token(
    conn: Connection, user_id: uuid.UUID, name: str, now: datetime
) -> tuple[str, ApiToken]:
    """A new token for the account: the secret (to show once) and what is listed."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput(Problem("invalid_name", "name the token (1 to 200 characters)", "name"))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(new_id(), name, token[:12], now, None, None)
    conn.execute(
        api_tokens.insert().values(
            token_id=record.token_id, user_id=user_id, name=name, prefix=record.prefix,
            token_hash=digest(token), created_at=now,
        )
    )  # fmt: skip
    return token, record


def list_api_tokens(conn: Connection, user_id: uuid.UUID) -> list[ApiToken]:
    """The account's tokens, newest first, revoked ones included."""
    rows = conn.execute(
        sa.select(api_tokens)
        .where(api_tokens.c.user_id == user_id)
        .order_by(api_tokens.c.created_at.desc(), api_tokens.c.token_id.desc())
    )
    return [ApiToken(r.token_id, r.name, r.prefix, r.created_at, r.last_used_at, r.revoked_at)
            for r in rows]  # fmt: skip


def revoke_api_token(conn: Connection, user_id: uuid.UUID, ref: str, now: datetime) -> ApiToken:
    """Revoke the account's active token named by id or prefix; ``NotFound`` if none matches."""
    matches = [t for t in list_api_tokens(conn, user_id) if t.revoked_at is None
               and ref in (str(t.token_id), t.prefix)]  # fmt: skip
    if not matches:
        raise NotFound(f"no active token {ref!r}")
    if len(matches) > 1:
        raise Conflict(f"several tokens start with {ref!r}; give the token id")
    conn.execute(
        api_tokens.update()
        .where(api_tokens.c.token_id == matches[0].token_id)
        .values(revoked_at=now)
    )
    return matches[0]


def find_api_token(conn: Connection, token: str) -> TokenRecord | None:
    """The active (not revoked) token with this value, or None."""
    row = conn.execute(
        sa.select(api_tokens.c.token_id, api_tokens.c.user_id, api_tokens.c.last_used_at)
        .where(api_tokens.c.token_hash == digest(token))
        .where(api_tokens.c.revoked_at.is_(None))
    ).first()
    return None if row is None else TokenRecord(row.token_id, row.user_id, row.last_used_at)


def touch_api_token(conn: Connection, token: TokenRecord, now: datetime) -> None:
    """Note the token was used now (at most once a minute)."""
    if token.last_used_at is None or now - token.last_used_at >= _TOUCH_EVERY:
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.token_id == token.token_id)
            .values(last_used_at=now)
        )


@dataclass(frozen=True, slots=True)
class AllowedNetwork:
    """One network of a workspace's allow-list."""

    cidr: str
    note: str | None
    created_at: datetime


def normalize_cidr(cidr: str) -> str:
    """The network in canonical form (``10.0.0.0/8``, a bare address as ``/32``/``/128``)."""
    try:
        return str(ipaddress.ip_network(cidr.strip(), strict=False))
    except ValueError:
        message = f"{cidr!r} is not an IPv4 or IPv6 network (e.g. 203.0.113.0/24)"
        raise InvalidInput(Problem("invalid_cidr", message, "cidr")) from None


def allow_network(
    conn: Connection, workspace_id: uuid.UUID, cidr: str, note: str | None, now: datetime
) -> AllowedNetwork:
    """Add a network to the allow-list (again: its note is replaced)."""
    network = AllowedNetwork(normalize_cidr(cidr), (note or "").strip()[:200] or None, now)
    where = (ip_allowlists.c.workspace_id == workspace_id) & (ip_allowlists.c.cidr == network.cidr)
    if conn.execute(sa.select(ip_allowlists.c.cidr).where(where)).first() is not None:
        conn.execute(ip_allowlists.update().where(where).values(note=network.note))
    else:
        conn.execute(ip_allowlists.insert().values(workspace_id=workspace_id, cidr=network.cidr,
                                                   note=network.note, created_at=now))  # fmt: skip
    return network


def deny_network(conn: Connection, workspace_id: uuid.UUID, cidr: str) -> str:
    """Remove a network from the allow-list; ``NotFound`` if it is not on it."""
    network = normalize_cidr(cidr)
    deleted = conn.execute(
        ip_allowlists.delete()
        .where(ip_allowlists.c.workspace_id == workspace_id)
        .where(ip_allowlists.c.cidr == network)
    ).rowcount
    if not deleted:
        raise NotFound(f"{network} is not on the allow-list")
    return network


def list_allowed_networks(conn: Connection, workspace_id: uuid.UUID) -> list[AllowedNetwork]:
    """The workspace's allow-list (empty: every address may use it)."""
    rows = conn.execute(
        sa.select(ip_allowlists)
        .where(ip_allowlists.c.workspace_id == workspace_id)
        .order_by(ip_allowlists.c.cidr)
    )
    return [AllowedNetwork(r.cidr, r.note, r.created_at) for r in rows]
