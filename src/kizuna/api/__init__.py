"""The HTTP edge: FastAPI app factory, dependencies and routes (parse → service → serialize)."""

from kizuna.api.app import build_app

__all__ = ["build_app"]
