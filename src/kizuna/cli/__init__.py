"""The ``kizuna`` command line (Typer + Rich)."""

from __future__ import annotations

from kizuna.cli import (
    analyze,
    audit,
    core,
    delivery,
    demo_data,
    docs,
    feedback,
    importing,
    journeys,
    keys,
    privacy,
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
    delivery,
    feedback,
    keys,
    audit,
    docs,
    privacy,
    users,
):
    _module.register(app)


def main() -> None:
    """Entry point of the ``kizuna`` script."""
    app()
