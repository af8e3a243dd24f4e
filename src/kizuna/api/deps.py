"""FastAPI dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kizuna.errors import Unauthorized
from kizuna.security.tokens import tokens_match
from kizuna.store.database import Database

__all__ = ["get_db", "require_api_token"]

_bearer = HTTPBearer(auto_error=False, description="The operator's API token (api.token)")


def get_db(request: Request) -> Database:
    """The store the app was built with."""
    db: Database = request.app.state.db
    return db


def require_api_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Reject requests without the operator's bearer token (401)."""
    expected: str = request.app.state.api_token
    # IMPORTANT: constant-time comparison; a missing token never matches.
    if credentials is None or not tokens_match(credentials.credentials, expected):
        raise Unauthorized("a valid bearer token is required")
