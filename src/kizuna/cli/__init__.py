"""The ``kizuna`` command line (Typer + Rich)."""

from __future__ import annotations

from kizuna.cli import analyze, core, demo_data, importing, segments
from kizuna.cli.app import app

__all__ = ["app", "main"]

for _module in (core, demo_data, importing, analyze, segments):
    _module.register(app)


def main() -> None:
    """Entry point of the ``kizuna`` script."""
    app()
