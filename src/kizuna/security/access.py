"""Who is calling, and may they do this here: authentication and authorization per request.

A caller proves who they are with one of:

- the operator's token (``KIZUNA_API_TOKEN`` / ``api.token``) as a bearer token: the
  break-glass administrator of every workspace, personal data included; it is
  recorded as ``api-token`` in the operation log;
- a personal API token (``kzp_…``) as a bearer token;
- a session cookie from ``POST /api/auth/sign-in``; unsafe methods (anything but
  GET, HEAD, OPTIONS) also need the session's CSRF token in ``X-CSRF-Token``.

A bearer token, when sent, is the only credential looked at (a wrong one is not
rescued by a cookie). Write keys authenticate nothing here: they only ingest.

Then, per workspace: the account must be a member (non-members, and workspaces
that do not exist, get the same 403 so names cannot be probed), the request must
come from the workspace's IP allow-list when it has one, and the member's role
must grant the permission. Every 403 is written to the operation log; 401s go to
the application log only (they carry no identity worth keeping).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from kizuna.errors import Forbidden, KizunaError, Unauthorized
from kizuna.security.masking import mask_email
from kizuna.security.permissions import PERMISSIONS, PERSONAL_DATA, permissions_of
from kizuna.security.tokens import tokens_match
from kizuna.store import access as store
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor, log_operation
from kizuna.store.users import User, get_user, membership_in
from kizuna.store.workspaces import get_workspace

__all__ = [
    "IDLE_TIMEOUT",
    "OPERATOR",
    "Caller",
    "Credentials",
    "Principal",
    "address_allowed",
    "authenticate",
    "authorize",
    "log_event",
    "user_actor_name",
]

log = logging.getLogger(__name__)
OPERATOR = "api-token"  # the operator token's name in the operation log (kept from before users)
IDLE_TIMEOUT = timedelta(hours=2)
_ALL = PERMISSIONS | {PERSONAL_DATA}


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request brought: a bearer token, a session cookie, a CSRF header, its address."""

    bearer: str | None
    session: str | None
    csrf: str | None
    unsafe: bool
    origin: str | None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the operator, or an account (by token or session)."""

    name: str
    via: str  # operator | token | session
    user: User | None = None
    session_hash: bytes | None = None

    @property
    def user_id(self) -> uuid.UUID | None:
        """The account's id (None for the operator)."""
        return None if self.user is None else self.user.user_id


@dataclass(frozen=True, slots=True)
class Caller:
    """A principal inside one workspace, with what they may do there."""

    principal: Principal
    workspace: str
    workspace_id: uuid.UUID | None  # None: the operator named a workspace that does not exist
    role: str | None
    permissions: frozenset[str]
    origin: str | None

    @property
    def name(self) -> str:
        """The caller's name as ``created_by`` fields and the operation log record it."""
        return self.principal.name

    def actor(self) -> Actor:
        """The caller as the operation log records them."""
        return Actor(self.principal.name, self.origin)

    def can(self, permission: str) -> bool:
        """Whether the caller holds ``permission`` in this workspace."""
        return permission in self.permissions

    def check_reveal(self, reveal: bool) -> None:
        """Raise ``Forbidden`` when personal data in clear is asked for without the permission."""
        if reveal and not self.can(PERSONAL_DATA):
            raise Forbidden(
                "seeing personal data in clear needs the personal_data.read permission; "
                "ask without reveal for a masked answer",
                code="personal_data_forbidden",
            )


def user_actor_name(user_id: uuid.UUID) -> str:
    """How an account is named in the operation log and ``created_by`` fields."""
    return f"user:{user_id}"


def log_event(
    conn: Connection,
    now: datetime,
    actor: Actor,
    action: str,
    *,
    workspace_id: uuid.UUID | None = None,
    target: str | None = None,
    **details: Any,
) -> None:
    """Append one access event to the operation log (inside the caller's write transaction)."""
    log_operation(conn, workspace_id=workspace_id, at=now, actor=actor.name, origin=actor.origin,
                  action=action, target=target, details=details)  # fmt: skip


def authenticate(db: Database, creds: Credentials, operator_token: str) -> Principal:
    """The principal the credentials prove; ``Unauthorized`` (401) or ``Forbidden`` (CSRF)."""
    if creds.bearer is not None:
        # IMPORTANT: constant-time comparison; the operator token is checked first.
        if tokens_match(creds.bearer, operator_token):
            return Principal(OPERATOR, "operator")
        if creds.bearer.startswith(store.TOKEN_PREFIX):
            return _by_token(db, creds.bearer)
        raise _unauthorized("a valid bearer token is required", creds)
    if creds.session is not None:
        return _by_session(db, creds)
    raise _unauthorized("sign in, or send a bearer token", creds)


def _unauthorized(message: str, creds: Credentials) -> Unauthorized:
    log.warning("refused unauthenticated request from %s: %s", creds.origin, message)
    return Unauthorized(message)


def _active_user(conn: Connection, user_id: uuid.UUID) -> User | None:
    user = get_user(conn, user_id)
    return None if user.disabled_at is not None else user


def _by_token(db: Database, token: str) -> Principal:
    now = db.clock.now()
    with db.read() as conn:
        record = store.find_api_token(conn, token)
        user = None if record is None else _active_user(conn, record.user_id)
    if record is None or user is None:
        log.warning("refused an unknown, revoked or disabled personal API token")
        raise Unauthorized("the API token is unknown or revoked")
    if record.last_used_at is None or now - record.last_used_at >= timedelta(minutes=1):
        with db.write() as conn:
            store.touch_api_token(conn, record, now)
    return Principal(user_actor_name(user.user_id), "token", user)


def _by_session(db: Database, creds: Credentials) -> Principal:
    assert creds.session is not None
    now = db.clock.now()
    with db.read() as conn:
        session = store.find_session(conn, creds.session)
        user = None if session is None else _active_user(conn, session.user_id)
    if session is None or user is None:
        raise _unauthorized("the session is unknown or has ended; sign in again", creds)
    if session.expires_at <= now or now - session.last_seen_at > IDLE_TIMEOUT:
        raise _unauthorized("the session has expired; sign in again", creds)
    if creds.unsafe:
        given = store.digest(creds.csrf) if creds.csrf else b""
        # IMPORTANT: a cookie alone never changes anything: forms must echo the CSRF token.
        if not hmac.compare_digest(given, session.csrf_hash):
            with db.write() as conn:
                log_event(conn, now, Actor(user_actor_name(user.user_id), creds.origin),
                          "access.csrf_failed", target=user_actor_name(user.user_id))  # fmt: skip
            raise Forbidden("the X-CSRF-Token header is missing or wrong", code="csrf_failed")
    if now - session.last_seen_at >= timedelta(minutes=1):
        with db.write() as conn:
            store.touch_session(conn, session, now)
    return Principal(user_actor_name(user.user_id), "session", user, session.session_hash)


def address_allowed(origin: str | None, networks: list[str]) -> bool:
    """Whether ``origin`` lies in one of ``networks`` (an empty list allows every address)."""
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(origin or "")
    except ValueError:
        return False  # no usable address: an allow-list cannot be satisfied
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(n) for n in networks)


def authorize(
    db: Database, principal: Principal, workspace: str, permission: str, origin: str | None
) -> Caller:
    """The caller in ``workspace`` if ``permission`` is theirs there; ``Forbidden`` otherwise."""
    with db.read() as conn:
        workspace_id, role, granted = _grants(conn, principal, workspace)
        networks = (
            [n.cidr for n in store.list_allowed_networks(conn, workspace_id)]
            if workspace_id is not None
            else []
        )
    caller = Caller(principal, workspace, workspace_id, role, granted, origin)
    if principal.user is not None and role is None:
        _deny(db, caller, "access.denied", "you have no role in this workspace", "not_a_member")
    if not address_allowed(origin, networks):
        message = f"requests from {origin or 'an unknown address'} are not allowed in this " \
                  "workspace: its IP allow-list does not include that address"  # fmt: skip
        _deny(db, caller, "access.ip_denied", message, "ip_not_allowed")
    if not caller.can(permission):
        message = f"your role ({role}) does not allow {permission} in this workspace"
        _deny(db, caller, "access.denied", message, "permission_denied", permission=permission)
    return caller


def _grants(
    conn: Connection, principal: Principal, workspace: str
) -> tuple[uuid.UUID | None, str | None, frozenset[str]]:
    if principal.user is None:  # the operator
        try:
            return get_workspace(conn, workspace).workspace_id, "administrator", _ALL
        except KizunaError:
            return None, "administrator", _ALL
    member = membership_in(conn, principal.user.user_id, workspace)
    if member is None:
        return None, None, frozenset()
    granted = permissions_of(member.role, personal_data=member.personal_data)
    return member.workspace_id, member.role, granted


def _deny(db: Database, caller: Caller, action: str, message: str, code: str, **more: Any) -> None:
    user = caller.principal.user
    details: dict[str, Any] = {"reason": code, "workspace": caller.workspace[:64], **more}
    if user is not None:
        details["user"] = mask_email(user.email)
    with db.write() as conn:
        log_event(conn, db.clock.now(), caller.actor(), action,
                  workspace_id=caller.workspace_id, target=None, **details)  # fmt: skip
    raise Forbidden(message, code=code)
