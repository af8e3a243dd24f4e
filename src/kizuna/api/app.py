"""The FastAPI application factory."""

from __future__ import annotations

import secrets

from fastapi import FastAPI

from kizuna import __version__
from kizuna.api import (
    analytics,
    auth,
    campaigns,
    customers,
    delivery,
    feedback,
    ingest,
    privacy,
    reports,
    scenario_reports,
    scenarios,
    segments,
    templates,
    tracking,
    users,
)
from kizuna.api.errors import install_error_handlers
from kizuna.store.database import Database

__all__ = ["build_app"]


def build_app(db: Database, api_token: str | None = None) -> FastAPI:
    """An app serving the ingestion API (Segment spec) and the read API on ``db``.

    Callers sign in (``/api/auth/sign-in``) or send a personal API token; every route
    declares the permission it needs (``api/deps.py``). ``api_token`` is the operator's
    break-glass token, administrator of every workspace (none given: a random one, so
    nobody holds it); ingestion authenticates with write keys.
    """
    app = FastAPI(
        title="Kizuna",
        version=__version__,
        description="Customer data hub and marketing automation for e-commerce and D2C brands.",
    )
    app.state.db = db
    app.state.api_token = api_token or secrets.token_urlsafe(32)
    install_error_handlers(app)
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(ingest.router)
    app.include_router(customers.router)
    app.include_router(analytics.router)
    app.include_router(segments.router)
    app.include_router(scenarios.router)
    app.include_router(scenario_reports.router)
    app.include_router(campaigns.router)
    app.include_router(reports.router)
    app.include_router(templates.router)
    app.include_router(delivery.router)
    app.include_router(tracking.router)
    app.include_router(feedback.router)
    app.include_router(privacy.router)
    return app
