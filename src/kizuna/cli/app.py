"""The root Typer app and the helpers every command uses."""

from __future__ import annotations

import typer
from rich.console import Console

__all__ = ["app", "console", "err_console"]

app = typer.Typer(
    name="kizuna",
    help="Kizuna: customer data hub and marketing automation for e-commerce and D2C brands.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)
