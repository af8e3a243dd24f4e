"""Workspace administration: members and their roles, and the IP allow-list.

``/api/workspaces/{ws}/users`` lists, adds, changes and removes members;
``/api/workspaces/{ws}/access`` holds the networks allowed to use the console and
admin API of the workspace (none listed: every address). Both need
``workspace.admin``; every change is written to the operation log. A change that
would shut out the caller's own address is refused (409).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, Field

from kizuna.api.deps import get_db, require
from kizuna.errors import NotFound
from kizuna.security import accounts
from kizuna.security.access import Caller
from kizuna.security.permissions import ROLES, permissions_of
from kizuna.store.access import AllowedNetwork
from kizuna.store.database import Database
from kizuna.store.users import Member, get_user, list_members
from kizuna.store.workspaces import get_workspace

__all__ = ["router"]

router = APIRouter(prefix="/api/workspaces/{workspace}", tags=["administration"])
Db = Annotated[Database, Depends(get_db)]
Admin = Annotated[Caller, Depends(require("workspace.admin"))]
_ROLE_HELP = "one of " + ", ".join(ROLES)


class MemberOut(BaseModel):
    """A member of the workspace and what their role allows."""

    user_id: uuid.UUID
    email: str
    display_name: str
    role: str
    personal_data: bool
    permissions: list[str]
    updated_at: datetime


class MemberIn(BaseModel):
    """Add an account (created when the address has none) with a role."""

    email: str = Field(max_length=320, examples=["analyst@shop.example.jp"])
    role: str = Field(description=_ROLE_HELP, examples=["analyst"])
    personal_data: bool = Field(False, description="May see and export personal data in clear")
    display_name: str | None = Field(None, max_length=200)
    password: str | None = Field(
        None, max_length=1024, description="Needed only when the account is new (12+ characters)"
    )


class RoleIn(BaseModel):
    """A member's new role."""

    role: str = Field(description=_ROLE_HELP, examples=["scenario_designer"])
    personal_data: bool = False


class NetworkIn(BaseModel):
    """A network to allow."""

    cidr: str = Field(examples=["203.0.113.0/24"])
    note: str | None = Field(None, max_length=200)


class NetworkOut(BaseModel):
    """A network on the allow-list."""

    cidr: str
    note: str | None
    created_at: datetime


def _member_out(member: Member) -> MemberOut:
    granted = permissions_of(member.role, personal_data=member.personal_data)
    return MemberOut(user_id=member.user_id, email=member.email,
                     display_name=member.display_name, role=member.role,
                     personal_data=member.personal_data, permissions=sorted(granted),
                     updated_at=member.updated_at)  # fmt: skip


def _network_out(network: AllowedNetwork) -> NetworkOut:
    return NetworkOut(cidr=network.cidr, note=network.note, created_at=network.created_at)


@router.get("/users", response_model=list[MemberOut], summary="Members and roles")
def get_members(workspace: str, db: Db, caller: Admin) -> list[MemberOut]:
    """Everyone with a role in the workspace, by e-mail address."""
    with db.read() as conn:
        ws = get_workspace(conn, workspace)
        return [_member_out(m) for m in list_members(conn, workspace_id=ws.workspace_id)]


@router.post("/users", status_code=201, response_model=MemberOut, summary="Add a member")
def post_member(
    workspace: str, db: Db, caller: Admin, body: Annotated[MemberIn, Body()]
) -> MemberOut:
    """Give an account a role here; an address without an account gets one (password needed)."""
    try:
        accounts.user_by_email(db, body.email)
    except NotFound:
        if body.password is None:
            message = "no account with that e-mail address; send a password to create it"
            raise NotFound(message) from None
        name = body.display_name or body.email
        accounts.add_user(db, caller.actor(), body.email, name, body.password)
    member = accounts.grant(db, caller.actor(), workspace, body.email, body.role,
                            personal_data=body.personal_data)  # fmt: skip
    return _member_out(member)


def _email_of(db: Database, user_id: uuid.UUID) -> str:
    with db.read() as conn:
        return get_user(conn, user_id).email


@router.put("/users/{user_id}", response_model=MemberOut, summary="Change a member's role")
def put_member(
    workspace: str, user_id: uuid.UUID, db: Db, caller: Admin, body: Annotated[RoleIn, Body()]
) -> MemberOut:
    """Set the account's role (and personal data in clear) in this workspace."""
    member = accounts.grant(db, caller.actor(), workspace, _email_of(db, user_id), body.role,
                            personal_data=body.personal_data)  # fmt: skip
    return _member_out(member)


@router.delete("/users/{user_id}", status_code=204, summary="Remove a member")
def delete_member(workspace: str, user_id: uuid.UUID, db: Db, caller: Admin) -> Response:
    """Take the account's role here away (the account itself stays)."""
    accounts.revoke(db, caller.actor(), workspace, _email_of(db, user_id))
    return Response(status_code=204)


@router.get("/access", response_model=list[NetworkOut], summary="IP allow-list")
def get_networks(workspace: str, db: Db, caller: Admin) -> list[NetworkOut]:
    """Networks allowed to use the console and admin API here (empty: every address)."""
    return [_network_out(n) for n in accounts.networks(db, workspace)]


@router.post("/access", status_code=201, response_model=NetworkOut, summary="Allow a network")
def post_network(
    workspace: str, db: Db, caller: Admin, body: Annotated[NetworkIn, Body()]
) -> NetworkOut:
    """Add a network (CIDR, or one address); refused when it would shut out the caller."""
    network = accounts.allow(db, caller.actor(), workspace, body.cidr, body.note,
                             keep=caller.origin)  # fmt: skip
    return _network_out(network)


@router.delete("/access", status_code=204, summary="Remove a network")
def delete_network(
    workspace: str,
    db: Db,
    caller: Admin,
    cidr: Annotated[str, Query(description="The network to remove, e.g. 203.0.113.0/24")],
) -> Response:
    """Remove a network from the allow-list; refused when it would shut out the caller."""
    accounts.deny(db, caller.actor(), workspace, cidr, keep=caller.origin)
    return Response(status_code=204)
