"""Administering accounts: create, grant and revoke roles, passwords, tokens, allow-lists.

The services behind ``/api/workspaces/{ws}/users``, ``/api/auth/tokens`` and
``kizuna users`` / ``kizuna access``. Each change is written to the operation log
with who made it and from where (accounts by id, addresses masked); token values
and passwords never are.
"""

from __future__ import annotations

import uuid

from sqlalchemy.engine import Connection

from kizuna.errors import Conflict, NotFound
from kizuna.security.access import address_allowed, log_event, user_actor_name
from kizuna.security.masking import mask_email
from kizuna.security.passwords import hash_password
from kizuna.store import access as store
from kizuna.store import users as accounts
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor
from kizuna.store.users import Member, User
from kizuna.store.workspaces import get_workspace

__all__ = [
    "add_user",
    "allow",
    "create_token",
    "deny",
    "grant",
    "list_tokens",
    "networks",
    "reset_password",
    "revoke",
    "revoke_token",
    "set_user_disabled",
    "user_by_email",
]


def user_by_email(db: Database, email: str) -> User:
    """The account with this address; ``NotFound`` if none."""
    with db.read() as conn:
        user = accounts.find_user(conn, email)
    if user is None:
        raise NotFound("no account with that e-mail address")
    return user


def add_user(
    db: Database, actor: Actor, email: str, display_name: str, password: str | None
) -> User:
    """Create an account (no password: it can use API tokens only); logged."""
    hashed = None if password is None else hash_password(password)
    with db.write() as conn:
        user = accounts.create_user(conn, email, display_name, hashed, db.clock.now())
        log_event(conn, db.clock.now(), actor, "user.create", target=user_actor_name(user.user_id),
                  email=mask_email(user.email), password=hashed is not None)  # fmt: skip
    return user


def grant(
    db: Database, actor: Actor, workspace: str, email: str, role: str, *, personal_data: bool
) -> Member:
    """Give the account ``role`` (and maybe personal data in clear) in the workspace; logged."""
    now = db.clock.now()
    with db.write() as conn:
        ws = get_workspace(conn, workspace)
        user = accounts.find_user(conn, email)
        if user is None:
            raise NotFound("no account with that e-mail address")
        before = accounts.grant_role(conn, ws.workspace_id, user.user_id, role,
                                     personal_data=personal_data, now=now)  # fmt: skip
        log_event(conn, now, actor, "role.grant", workspace_id=ws.workspace_id,
                  target=user_actor_name(user.user_id), email=mask_email(user.email), role=role,
                  personal_data=personal_data, before=_role(before))  # fmt: skip
        member = accounts.membership_in(conn, user.user_id, ws.slug)
    assert member is not None
    return member


def _role(member: Member | None) -> dict[str, object] | None:
    return None if member is None else {"role": member.role, "personal_data": member.personal_data}


def revoke(db: Database, actor: Actor, workspace: str, email: str) -> Member:
    """Remove the account from the workspace (its sessions elsewhere go on); logged."""
    with db.write() as conn:
        ws = get_workspace(conn, workspace)
        user = accounts.find_user(conn, email)
        if user is None:
            raise NotFound("no account with that e-mail address")
        before = accounts.revoke_role(conn, ws.workspace_id, user.user_id)
        log_event(conn, db.clock.now(), actor, "role.revoke", workspace_id=ws.workspace_id,
                  target=user_actor_name(user.user_id), email=mask_email(user.email),
                  before=_role(before))  # fmt: skip
    return before


def reset_password(db: Database, actor: Actor, email: str, password: str | None) -> User:
    """Set a new password (None: tokens only), lift any lock-out, end sessions; logged."""
    user = user_by_email(db, email)
    hashed = None if password is None else hash_password(password)
    with db.write() as conn:
        accounts.set_password_hash(conn, user.user_id, hashed)
        ended = store.delete_user_sessions(conn, user.user_id)
        log_event(conn, db.clock.now(), actor, "user.password",
                  target=user_actor_name(user.user_id), email=mask_email(user.email),
                  sessions_ended=ended)  # fmt: skip
    return user


def set_user_disabled(db: Database, actor: Actor, email: str, disabled: bool) -> User:
    """Disable an account (its sessions end, its tokens stop working) or enable it; logged."""
    user = user_by_email(db, email)
    now = db.clock.now()
    with db.write() as conn:
        accounts.set_disabled(conn, user.user_id, now if disabled else None)
        ended = store.delete_user_sessions(conn, user.user_id) if disabled else 0
        action = "user.disable" if disabled else "user.enable"
        log_event(conn, now, actor, action, target=user_actor_name(user.user_id),
                  email=mask_email(user.email), sessions_ended=ended)  # fmt: skip
        return accounts.get_user(conn, user.user_id)


def create_token(
    db: Database, actor: Actor, user_id: uuid.UUID, name: str
) -> tuple[str, store.ApiToken]:
    """A new personal API token for the account: the secret (show it once) and its listing."""
    now = db.clock.now()
    with db.write() as conn:
        user = accounts.get_user(conn, user_id)
        token, record = store.create_api_token(conn, user_id, name, now)
        log_event(conn, now, actor, "api_token.create", target=user_actor_name(user_id),
                  email=mask_email(user.email), token_id=str(record.token_id),
                  prefix=record.prefix, name=record.name)  # fmt: skip
    return token, record


def list_tokens(db: Database, user_id: uuid.UUID) -> list[store.ApiToken]:
    """The account's tokens (prefixes only), newest first."""
    with db.read() as conn:
        return store.list_api_tokens(conn, user_id)


def revoke_token(db: Database, actor: Actor, user_id: uuid.UUID, ref: str) -> store.ApiToken:
    """Revoke one of the account's tokens by id or prefix; logged."""
    now = db.clock.now()
    with db.write() as conn:
        record = store.revoke_api_token(conn, user_id, ref, now)
        log_event(conn, now, actor, "api_token.revoke", target=user_actor_name(user_id),
                  token_id=str(record.token_id), prefix=record.prefix)  # fmt: skip
    return record


def networks(db: Database, workspace: str) -> list[store.AllowedNetwork]:
    """The workspace's IP allow-list (empty: every address may use it)."""
    with db.read() as conn:
        return store.list_allowed_networks(conn, get_workspace(conn, workspace).workspace_id)


def _keep_reachable(conn: Connection, workspace_id: uuid.UUID, keep: str | None) -> None:
    networks = [n.cidr for n in store.list_allowed_networks(conn, workspace_id)]
    if keep is not None and not address_allowed(keep, networks):
        raise Conflict(f"that would lock out your own address ({keep}); allow it first")


def allow(
    db: Database,
    actor: Actor,
    workspace: str,
    cidr: str,
    note: str | None = None,
    *,
    keep: str | None = None,
) -> store.AllowedNetwork:
    """Add a network to the workspace's allow-list; logged.

    ``keep``: an address that must stay allowed (the caller's own), else ``Conflict``.
    """
    with db.write() as conn:
        ws = get_workspace(conn, workspace)
        network = store.allow_network(conn, ws.workspace_id, cidr, note, db.clock.now())
        _keep_reachable(conn, ws.workspace_id, keep)
        log_event(conn, db.clock.now(), actor, "access.allow", workspace_id=ws.workspace_id,
                  target=network.cidr, note=network.note)  # fmt: skip
    return network


def deny(db: Database, actor: Actor, workspace: str, cidr: str, *, keep: str | None = None) -> str:
    """Remove a network from the workspace's allow-list; logged (``keep`` as for ``allow``)."""
    with db.write() as conn:
        ws = get_workspace(conn, workspace)
        network = store.deny_network(conn, ws.workspace_id, cidr)
        _keep_reachable(conn, ws.workspace_id, keep)
        log_event(conn, db.clock.now(), actor, "access.deny", workspace_id=ws.workspace_id,
                  target=network)  # fmt: skip
    return network
