"""People for the access tests: one account per role in ``shop``, an outsider, their tokens."""

from __future__ import annotations

from dataclasses import dataclass

from kizuna.security import accounts
from kizuna.security.permissions import PERMISSIONS, PERSONAL_DATA, permissions_of
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor
from kizuna.store.workspaces import create_workspace, create_write_key

OPERATOR_TOKEN = "test-token"
ADMIN = Actor("test-admin", "127.0.0.1")
# name -> (role, personal data in clear)
ROLES = {
    "administrator": ("administrator", False),
    "administrator+pd": ("administrator", True),
    "scenario_designer": ("scenario_designer", False),
    "content_designer": ("content_designer", False),
    "analyst": ("analyst", False),
    "analyst+pd": ("analyst", True),
}


@dataclass(frozen=True)
class Person:
    """A caller of the API: their bearer token and what they may do in ``shop``."""

    name: str
    token: str
    permissions: frozenset[str]


def make_people(db: Database, workspace: str = "shop") -> dict[str, Person]:
    """Accounts with tokens for every role in ``workspace``, plus an administrator of ``other``.

    The accounts have no password (tokens only), so no argon2 work is spent here.
    """
    with db.write() as conn:
        create_workspace(conn, "other", name="Other brand", now=db.clock.now())
    people = {"operator": Person("operator", OPERATOR_TOKEN, PERMISSIONS | {PERSONAL_DATA})}
    for name, (role, personal) in ROLES.items():
        email = f"{name.replace('+', '-')}@staff.example.jp"
        user = accounts.add_user(db, ADMIN, email, name, None)
        accounts.grant(db, ADMIN, workspace, email, role, personal_data=personal)
        token, _ = accounts.create_token(db, ADMIN, user.user_id, "tests")
        people[name] = Person(name, token, permissions_of(role, personal_data=personal))
    outsider = accounts.add_user(db, ADMIN, "outsider@staff.example.jp", "outsider", None)
    accounts.grant(db, ADMIN, "other", outsider.email, "administrator", personal_data=True)
    token, _ = accounts.create_token(db, ADMIN, outsider.user_id, "tests")
    people["outsider"] = Person("outsider", token, frozenset())
    return people


def write_key(db: Database, workspace: str = "shop") -> str:
    """A new ingestion write key of ``workspace``."""
    from kizuna.store.workspaces import get_workspace

    with db.write() as conn:
        ws = get_workspace(conn, workspace)
        return create_write_key(conn, ws.workspace_id, "tests", db.clock.now())
