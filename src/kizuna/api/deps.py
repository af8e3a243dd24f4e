"""FastAPI dependencies shared by the routes."""

from __future__ import annotations

from fastapi import Request

from kizuna.store.database import Database

__all__ = ["get_db"]


def get_db(request: Request) -> Database:
    """The store the app was built with."""
    db: Database = request.app.state.db
    return db
