"""Sign-in, sign-out, who am I, and personal API tokens (``/api/auth/…``).

``POST /api/auth/sign-in`` answers a session cookie (HttpOnly, SameSite=Lax,
Secure when the request came over https) and a CSRF token, both in the body and
in the readable ``kizuna_csrf`` cookie: a console sends it back in the
``X-CSRF-Token`` header with every POST, PUT, PATCH and DELETE. Every failed
sign-in answers the same 401 sentence (see ``security/sessions.py``).

Personal API tokens act as their account with its roles; the token is shown once,
when created. Tokens are managed by their own account (an administrator removes an
account's roles instead).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, Field

from kizuna.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    authenticated,
    client_address,
    get_db,
    public,
)
from kizuna.security import accounts
from kizuna.security.access import Principal, user_actor_name
from kizuna.security.permissions import permissions_of
from kizuna.security.sessions import SESSION_LIFETIME, sign_in, sign_out
from kizuna.store.access import ApiToken
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor
from kizuna.store.users import list_members

__all__ = ["router"]

router = APIRouter(prefix="/api/auth", tags=["auth"])
Db = Annotated[Database, Depends(get_db)]
AnyCaller = Annotated[Principal, Depends(authenticated())]
Account = Annotated[Principal, Depends(authenticated(user_only=True))]


class SignInIn(BaseModel):
    """E-mail address and password."""

    email: str = Field(max_length=320, examples=["staff@shop.example.jp"])
    password: str = Field(max_length=1024)


class WorkspaceRoleOut(BaseModel):
    """The caller's role in one workspace and what it allows."""

    workspace: str
    role: str
    personal_data: bool
    permissions: list[str]


class MeOut(BaseModel):
    """Who is calling: an account (with its roles) or the operator token."""

    operator: bool
    user_id: uuid.UUID | None = None
    email: str | None = None
    display_name: str | None = None
    via: str
    workspaces: list[WorkspaceRoleOut] = []


class SignedInOut(BaseModel):
    """A new session: echo ``csrf_token`` in ``X-CSRF-Token`` on unsafe requests."""

    me: MeOut
    csrf_token: str
    expires_at: datetime


class TokenIn(BaseModel):
    """What the token is for."""

    name: str = Field(min_length=1, max_length=200, examples=["nightly export script"])


class TokenOut(BaseModel):
    """A personal API token as listed (the value itself is never shown again)."""

    token_id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    """A token just created: ``token`` is shown this once."""

    token: str


def _me(db: Database, principal: Principal) -> MeOut:
    if principal.user is None:
        return MeOut(operator=True, via=principal.via)
    with db.read() as conn:
        members = list_members(conn, user_id=principal.user.user_id)
    roles = [
        WorkspaceRoleOut(workspace=m.workspace, role=m.role, personal_data=m.personal_data,
                         permissions=sorted(permissions_of(m.role, personal_data=m.personal_data)))
        for m in members
    ]  # fmt: skip
    user = principal.user
    return MeOut(operator=False, user_id=user.user_id, email=user.email,
                 display_name=user.display_name, via=principal.via, workspaces=roles)  # fmt: skip


def _token_out(token: ApiToken) -> TokenOut:
    return TokenOut(token_id=token.token_id, name=token.name, prefix=token.prefix,
                    created_at=token.created_at, last_used_at=token.last_used_at,
                    revoked_at=token.revoked_at)  # fmt: skip


@router.post(
    "/sign-in",
    response_model=SignedInOut,
    dependencies=[Depends(public("signs in with an e-mail address and password"))],
    summary="Sign in with e-mail and password",
    responses={401: {"description": "Wrong address or password, or the account is locked"}},
)
def post_sign_in(
    request: Request, response: Response, db: Db, body: Annotated[SignInIn, Body()]
) -> SignedInOut:
    """Open a session: an HttpOnly session cookie and a CSRF token for unsafe requests."""
    done = sign_in(db, body.email, body.password, client_address(request))
    secure = request.url.scheme == "https"
    max_age = int(SESSION_LIFETIME.total_seconds())
    response.set_cookie(SESSION_COOKIE, done.session.session_token, max_age=max_age,
                        httponly=True, samesite="lax", secure=secure, path="/")  # fmt: skip
    # Readable by the console's script (double submit): it proves same-origin, not identity.
    response.set_cookie(CSRF_COOKIE, done.session.csrf_token, max_age=max_age,
                        httponly=False, samesite="lax", secure=secure, path="/")  # fmt: skip
    principal = Principal(user_actor_name(done.user.user_id), "session", done.user)
    return SignedInOut(me=_me(db, principal), csrf_token=done.session.csrf_token,
                       expires_at=done.session.expires_at)  # fmt: skip


@router.post("/sign-out", status_code=204, summary="End this session")
def post_sign_out(request: Request, db: Db, principal: AnyCaller) -> Response:
    """End the session and clear its cookies (a bearer token caller has nothing to end)."""
    sign_out(db, principal, client_address(request))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me", response_model=MeOut, summary="Who am I")
def get_me(db: Db, principal: AnyCaller) -> MeOut:
    """The caller's account, and their role and permissions in each workspace."""
    return _me(db, principal)


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal.name, client_address(request))


@router.get("/tokens", response_model=list[TokenOut], summary="My API tokens")
def get_tokens(db: Db, principal: Account) -> list[TokenOut]:
    """The caller's personal API tokens, newest first (prefixes only)."""
    assert principal.user is not None
    return [_token_out(t) for t in accounts.list_tokens(db, principal.user.user_id)]


@router.post("/tokens", status_code=201, response_model=NewTokenOut, summary="Create an API token")
def post_token(
    request: Request, db: Db, principal: Account, body: Annotated[TokenIn, Body()]
) -> NewTokenOut:
    """A new personal API token acting as the caller; the value is shown only in this answer."""
    assert principal.user is not None
    token, record = accounts.create_token(db, _actor(request, principal),
                                          principal.user.user_id, body.name)  # fmt: skip
    return NewTokenOut(token=token, **_token_out(record).model_dump())


@router.delete("/tokens/{ref}", status_code=204, summary="Revoke an API token")
def delete_token(request: Request, db: Db, principal: Account, ref: str) -> Response:
    """Revoke one of the caller's tokens by id or prefix; it stops working at once."""
    assert principal.user is not None
    accounts.revoke_token(db, _actor(request, principal), principal.user.user_id, ref)
    return Response(status_code=204)
