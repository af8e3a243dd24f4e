"""The FastAPI application factory."""

from __future__ import annotations

import secrets

from fastapi import FastAPI

from kizuna import __version__
from kizuna.api import (
    analytics,
    customers,
    delivery,
    feedback,
    ingest,
    scenario_reports,
    scenarios,
    segments,
    templates,
    tracking,
)
from kizuna.api.errors import install_error_handlers
from kizuna.store.database import Database

__all__ = ["build_app"]


def build_app(db: Database, api_token: str | None = None) -> FastAPI:
    """An app serving the ingestion API (Segment spec) and the read API on ``db``.

    ``api_token`` guards the read API (none given: a random one, so the read API stays
    closed); ingestion authenticates with write keys.
    """
    app = FastAPI(
        title="Kizuna",
        version=__version__,
        description="Customer data hub and marketing automation for e-commerce and D2C brands.",
    )
    app.state.db = db
    app.state.api_token = api_token or secrets.token_urlsafe(32)
    install_error_handlers(app)
    app.include_router(ingest.router)
    app.include_router(customers.router)
    app.include_router(analytics.router)
    app.include_router(segments.router)
    app.include_router(scenarios.router)
    app.include_router(scenario_reports.router)
    app.include_router(templates.router)
    app.include_router(delivery.router)
    app.include_router(tracking.router)
    app.include_router(feedback.router)
    return app
