"""CLI commands (core)."""

import typer


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
