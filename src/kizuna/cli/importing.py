"""CLI commands (importing)."""

import typer


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
