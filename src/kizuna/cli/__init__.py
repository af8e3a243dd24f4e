"""The ``kizuna`` command line (Typer + Rich)."""

from __future__ import annotations

from kizuna.cli import (
    analyze,
    audit,
    campaigns,
    core,
    delivery,
    demo_data,
    docs,
    feedback,
    importing,
    journeys,
    keys,
    privacy,
    reports,
    segments,
    templates,
    users,
)
from kizuna.cli.app import app

__all__ = ["app", "main"]

for _module in (
    core,
    demo_data,
    importing,
    analyze,
    segments,
    templates,
    journeys,
    campaigns,
    delivery,
    feedback,
    keys,
    audit,
    docs,
    privacy,
    reports,
    users,
):
    _module.register(app)


def main() -> None:
    """Entry point of the ``kizuna`` script."""
    app()
