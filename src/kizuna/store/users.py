"""Staff accounts and their roles per workspace (the repository; rules live in security/).

E-mail addresses are the sign-in name: trimmed and lower-cased here, once, so
``Taro@Shop.jp`` and ``taro@shop.jp`` are one account. Failed sign-ins count up
in one ``UPDATE`` so two wrong guesses at once both count.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.errors import Conflict, InvalidInput, NotFound, Problem
from kizuna.security.permissions import ROLES
from kizuna.store.tables import workspaces
from kizuna.store.tables_access import memberships, users
from kizuna.store.types import new_id

__all__ = [
    "Member",
    "User",
    "create_user",
    "find_user",
    "get_user",
    "grant_role",
    "list_members",
    "list_users",
    "membership_in",
    "normalize_email",
    "password_hash_of",
    "record_failed_sign_in",
    "record_sign_in",
    "revoke_role",
    "set_disabled",
    "set_password_hash",
]


@dataclass(frozen=True, slots=True)
class User:
    """An account as shown to administrators (never its password hash)."""

    user_id: uuid.UUID
    email: str
    display_name: str
    created_at: datetime
    disabled_at: datetime | None
    locked_until: datetime | None
    failed_attempts: int


@dataclass(frozen=True, slots=True)
class Member:
    """One account's role in one workspace."""

    workspace_id: uuid.UUID
    workspace: str
    user_id: uuid.UUID
    email: str
    display_name: str
    role: str
    personal_data: bool
    updated_at: datetime


_USER_COLUMNS = [c for c in users.c if c.name != "password_hash"]


def _user(row: sa.Row[tuple[object, ...]]) -> User:
    m = row._mapping
    return User(m["user_id"], m["email"], m["display_name"], m["created_at"],
                m["disabled_at"], m["locked_until"], m["failed_attempts"])  # fmt: skip


def normalize_email(email: str, *, field: str = "email") -> str:
    """The sign-in form of an address: trimmed, lower-cased; ``InvalidInput`` if not one."""
    value = email.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or len(value) > 320 or any(c.isspace() for c in value):
        raise InvalidInput(Problem("invalid_email", "not an e-mail address", field))
    return value


def create_user(
    conn: Connection, email: str, display_name: str, password_hash: str | None, now: datetime
) -> User:
    """Create an account; ``Conflict`` if the address already has one."""
    email = normalize_email(email)
    if find_user(conn, email) is not None:
        raise Conflict("an account with that e-mail address already exists")
    user_id = new_id()
    conn.execute(
        users.insert().values(
            user_id=user_id, email=email, display_name=display_name.strip()[:200] or email,
            password_hash=password_hash, failed_attempts=0, created_at=now,
        )
    )  # fmt: skip
    return get_user(conn, user_id)


def get_user(conn: Connection, user_id: uuid.UUID) -> User:
    """An account by id; ``NotFound`` if there is none."""
    row = conn.execute(sa.select(*_USER_COLUMNS).where(users.c.user_id == user_id)).first()
    if row is None:
        raise NotFound("no such account")
    return _user(row)


def find_user(conn: Connection, email: str) -> User | None:
    """An account by e-mail address (any case), or None."""
    try:
        email = normalize_email(email)
    except InvalidInput:
        return None
    row = conn.execute(sa.select(*_USER_COLUMNS).where(users.c.email == email)).first()
    return None if row is None else _user(row)


def list_users(conn: Connection) -> list[User]:
    """Every account, by e-mail address."""
    return [_user(r) for r in conn.execute(sa.select(*_USER_COLUMNS).order_by(users.c.email))]


def password_hash_of(conn: Connection, user_id: uuid.UUID) -> str | None:
    """The stored argon2 hash (None: the account signs in with tokens only)."""
    hashed: str | None = conn.execute(
        sa.select(users.c.password_hash).where(users.c.user_id == user_id)
    ).scalar()
    return hashed


def set_password_hash(conn: Connection, user_id: uuid.UUID, password_hash: str | None) -> None:
    """Replace the password hash (a reset also clears a lock-out)."""
    conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(password_hash=password_hash, failed_attempts=0, locked_until=None)
    )


def set_disabled(conn: Connection, user_id: uuid.UUID, at: datetime | None) -> None:
    """Disable the account from ``at`` (None: enable it again)."""
    conn.execute(users.update().where(users.c.user_id == user_id).values(disabled_at=at))


def record_failed_sign_in(
    conn: Connection, user_id: uuid.UUID, now: datetime, *, limit: int, lock_for: timedelta
) -> bool:
    """Count one failure; at ``limit`` in a row lock the account. True when this locked it."""
    failures = conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(failed_attempts=users.c.failed_attempts + 1)
        .returning(users.c.failed_attempts)
    ).scalar_one()
    if failures < limit:
        return False
    # The count restarts, so after the lock ends the account gets ``limit`` tries again.
    conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(failed_attempts=0, locked_until=now + lock_for)
    )
    return True


def record_sign_in(conn: Connection, user_id: uuid.UUID) -> None:
    """A successful sign-in clears the failure count and any lock that has run out."""
    conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(failed_attempts=0, locked_until=None)
    )


def _member_query() -> sa.Select[tuple[object, ...]]:
    return (
        sa.select(memberships, workspaces.c.slug, users.c.email, users.c.display_name)
        .join(workspaces, workspaces.c.workspace_id == memberships.c.workspace_id)
        .join(users, users.c.user_id == memberships.c.user_id)
    )


def _member(row: sa.Row[tuple[object, ...]]) -> Member:
    m = row._mapping
    return Member(m["workspace_id"], m["slug"], m["user_id"], m["email"], m["display_name"],
                  m["role"], bool(m["personal_data"]), m["updated_at"])  # fmt: skip


def membership_in(conn: Connection, user_id: uuid.UUID, workspace: str) -> Member | None:
    """The account's role in the workspace named by slug, or None (not a member, or no such)."""
    row = conn.execute(
        _member_query()
        .where(memberships.c.user_id == user_id)
        .where(workspaces.c.slug == workspace)
    ).first()
    return None if row is None else _member(row)


def list_members(
    conn: Connection, *, workspace_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None
) -> list[Member]:
    """Memberships of one workspace or of one account (or all), by workspace then e-mail."""
    query = _member_query().order_by(workspaces.c.slug, users.c.email)
    if workspace_id is not None:
        query = query.where(memberships.c.workspace_id == workspace_id)
    if user_id is not None:
        query = query.where(memberships.c.user_id == user_id)
    return [_member(r) for r in conn.execute(query)]


def grant_role(
    conn: Connection,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
    role: str,
    *,
    personal_data: bool,
    now: datetime,
) -> Member | None:
    """Give the account ``role`` in the workspace (replacing its role there); the one before."""
    if role not in ROLES:
        message = f"unknown role {role!r}; one of {', '.join(ROLES)}"
        raise InvalidInput(Problem("unknown_role", message, "role"))
    before = list_members(conn, workspace_id=workspace_id, user_id=user_id)
    values = {"role": role, "personal_data": personal_data, "updated_at": now}
    if before:
        conn.execute(
            memberships.update()
            .where(memberships.c.workspace_id == workspace_id)
            .where(memberships.c.user_id == user_id)
            .values(**values)
        )
    else:
        conn.execute(memberships.insert().values(workspace_id=workspace_id, user_id=user_id,
                                                 created_at=now, **values))  # fmt: skip
    return before[0] if before else None


def revoke_role(conn: Connection, workspace_id: uuid.UUID, user_id: uuid.UUID) -> Member:
    """Remove the account from the workspace; the membership it had (``NotFound`` if none)."""
    before = list_members(conn, workspace_id=workspace_id, user_id=user_id)
    if not before:
        raise NotFound("that account is not a member of this workspace")
    conn.execute(
        memberships.delete()
        .where(memberships.c.workspace_id == workspace_id)
        .where(memberships.c.user_id == user_id)
    )
    return before[0]
