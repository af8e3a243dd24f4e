"""FastAPI dependencies shared by the routes: the store, and who may call each route.

Every route declares its access exactly once, through one of:

- ``Depends(require("segments.write"))`` — a permission in the path's ``{workspace}``
  (``reveal="query"`` / ``"body"``: the route can answer personal data in clear,
  which then also needs ``personal_data.read``);
- ``Depends(authenticated())`` — any signed-in caller (``/api/auth/me``);
  ``authenticated(user_only=True)`` — an account, not the operator token;
- ``Depends(public("why"))`` — no credentials (tracking links, sign-in, signed
  provider callbacks);
- ``Depends(write_key_only())`` — ingestion, which checks its write key itself.

:func:`route_table` lists every route of the app with its declaration; the
role-matrix test walks it, so a route that declares nothing fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from kizuna.errors import ConfigurationError, Forbidden, Unauthorized
from kizuna.security.access import (
    Caller,
    Credentials,
    Principal,
    authenticate,
    authorize,
)
from kizuna.security.permissions import PERMISSIONS, PERSONAL_DATA
from kizuna.security.tokens import tokens_match
from kizuna.store.database import Database

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "RouteAccess",
    "RouteEntry",
    "authenticated",
    "client_address",
    "current_caller",
    "declared_access",
    "framework_paths",
    "get_db",
    "public",
    "require",
    "require_api_token",
    "route_table",
    "write_key_only",
]

SESSION_COOKIE = "kizuna_session"
CSRF_COOKIE = "kizuna_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TRUE = frozenset({"1", "true", "on", "yes", "t", "y"})

_bearer = HTTPBearer(
    auto_error=False,
    description="A personal API token (kzp_…), or the operator's token (api.token)",
)
_session = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The session cookie from POST /api/auth/sign-in; unsafe methods also need "
    f"the {CSRF_HEADER} header",
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
SessionCookie = Annotated[str | None, Depends(_session)]


def get_db(request: Request) -> Database:
    """The store the app was built with."""
    db: Database = request.app.state.db
    return db


def client_address(request: Request) -> str | None:
    """The caller's address as the server sees it (behind a proxy: uvicorn's forwarded-allow)."""
    return request.client.host if request.client else None


@dataclass(frozen=True, slots=True)
class RouteAccess:
    """What a route declared: who may call it."""

    kind: Literal["permission", "authenticated", "user", "public", "write_key"]
    permission: str | None = None
    reveal: Literal["query", "body"] | None = None
    reason: str | None = None


def _principal(request: Request, bearer: HTTPAuthorizationCredentials | None,
               session: str | None) -> Principal:  # fmt: skip
    cached: Principal | None = getattr(request.state, "kizuna_principal", None)
    if cached is not None:
        return cached
    creds = Credentials(
        bearer=None if bearer is None else bearer.credentials,
        session=session,
        csrf=request.headers.get(CSRF_HEADER),
        unsafe=request.method not in _SAFE_METHODS,
        origin=client_address(request),
    )
    principal = authenticate(get_db(request), creds, request.app.state.api_token)
    request.state.kizuna_principal = principal
    return principal


class _Require:
    """The dependency ``require(permission)`` returns: authenticate, then authorize."""

    def __init__(self, access: RouteAccess) -> None:
        self.access = access

    def __call__(self, request: Request, bearer: Bearer, session: SessionCookie) -> Caller:
        principal = _principal(request, bearer, session)
        workspace = request.path_params.get("workspace")
        if not isinstance(workspace, str):
            raise ConfigurationError(f"{request.url.path} declares a permission but no workspace")
        assert self.access.permission is not None
        caller = authorize(get_db(request), principal, workspace, self.access.permission,
                           client_address(request))  # fmt: skip
        if self.access.reveal == "query":
            caller.check_reveal(request.query_params.get("reveal", "").lower() in _TRUE)
        request.state.kizuna_caller = caller
        return caller


def require(permission: str, *, reveal: Literal["query", "body"] | None = None) -> Any:
    """A dependency admitting callers holding ``permission`` in the path's workspace.

    ``reveal="query"`` checks a ``reveal`` query flag here; ``reveal="body"`` means the
    route calls ``caller.check_reveal`` itself once its body is parsed.
    """
    if permission not in PERMISSIONS or permission == PERSONAL_DATA:
        raise ValueError(f"{permission!r} is not a route permission")
    return _Require(RouteAccess("permission", permission, reveal))


class _Authenticated:
    def __init__(self, access: RouteAccess) -> None:
        self.access = access

    def __call__(self, request: Request, bearer: Bearer, session: SessionCookie) -> Principal:
        principal = _principal(request, bearer, session)
        if self.access.kind == "user" and principal.user is None:
            raise Forbidden("this needs an account; the operator token is not one",
                            code="account_required")  # fmt: skip
        return principal


def authenticated(*, user_only: bool = False) -> Any:
    """A dependency admitting any authenticated caller (``user_only``: accounts, not operator)."""
    return _Authenticated(RouteAccess("user" if user_only else "authenticated"))


class _Open:
    def __init__(self, access: RouteAccess) -> None:
        self.access = access

    async def __call__(self) -> None:
        # async, so a public route (ingestion above all) pays no thread hop for it
        return None


def public(reason: str) -> Any:
    """Declares a route open to anyone; ``reason`` says what protects it instead."""
    return _Open(RouteAccess("public", reason=reason))


def write_key_only() -> Any:
    """Declares an ingestion route: its write key is checked by the route itself."""
    return _Open(RouteAccess("write_key", reason="a workspace write key"))


def current_caller(request: Request) -> Caller:
    """The caller ``require`` admitted for this request (for routes declaring it on the router)."""
    caller: Caller | None = getattr(request.state, "kizuna_caller", None)
    if caller is None:
        raise ConfigurationError(f"{request.url.path} uses the caller without require()")
    return caller


def _declarations(dependant: Dependant) -> list[RouteAccess]:
    found: list[RouteAccess] = []
    for sub in dependant.dependencies:
        access = getattr(sub.call, "access", None)
        if isinstance(access, RouteAccess):
            found.append(access)
        found.extend(_declarations(sub))
    return found


def declared_access(route: APIRoute | RouteContext) -> list[RouteAccess]:
    """Every access declaration on the route (exactly one when it is declared right)."""
    dependant: Dependant | None = getattr(route, "dependant", None)
    return [] if dependant is None else _declarations(dependant)


def framework_paths(app: FastAPI) -> set[str]:
    """FastAPI's own public pages: the OpenAPI document and the interactive docs."""
    paths = (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    return {p for p in paths if p}


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One route of the app as the access checks see it."""

    path: str
    methods: frozenset[str]
    api: bool  # False: a framework page (docs, OpenAPI), which has no dependencies
    access: tuple[RouteAccess, ...]
    query: frozenset[str]  # query parameter names, dependencies' included
    body: frozenset[str]  # top-level field names of the JSON body


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _body_names(dependant: Dependant) -> set[str]:
    names: set[str] = set()
    for param in dependant.body_params:
        kind = param.field_info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= set(kind.model_fields)
        else:
            names.add(param.alias)
    return names


def route_table(app: FastAPI) -> list[RouteEntry]:
    """Every route the app serves (included routers flattened), with what each declares."""
    entries = []
    for route in iter_route_contexts(app.routes):
        dependant: Dependant | None = getattr(route, "dependant", None)
        entries.append(RouteEntry(
            path=str(route.path), methods=frozenset(route.methods or ()),
            api=dependant is not None, access=tuple(declared_access(route)),
            query=frozenset(_query_names(dependant) if dependant else ()),
            body=frozenset(_body_names(dependant) if dependant else ()),
        ))  # fmt: skip
    return entries


def require_api_token(request: Request, bearer: Bearer) -> None:
    """Before users: the operator's token only. Declares no access; use ``require`` instead."""
    expected: str = request.app.state.api_token
    # IMPORTANT: constant-time comparison; a missing token never matches.
    if bearer is None or not tokens_match(bearer.credentials, expected):
        raise Unauthorized("a valid bearer token is required")
