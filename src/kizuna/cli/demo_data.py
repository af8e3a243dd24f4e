"""CLI commands (demo_data)."""

import typer


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
