"""The root Typer app and the helpers every command uses."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from kizuna.documents import locate, read_text
from kizuna.errors import InvalidInput, KizunaError

__all__ = [
    "WorkspaceOption",
    "app",
    "console",
    "default_workspace",
    "err_console",
    "exit_on_error",
    "file_errors",
]

app = typer.Typer(
    name="kizuna",
    help="Kizuna: customer data hub and marketing automation for e-commerce and D2C brands.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)


def default_workspace() -> str:
    """The workspace commands act on when none is given: ``KIZUNA_WORKSPACE`` or ``demo``."""
    return os.environ.get("KIZUNA_WORKSPACE", "demo")


WorkspaceOption = typer.Option(
    "--workspace", "-w", help="Workspace slug [default: $KIZUNA_WORKSPACE or demo]"
)


@contextmanager
def file_errors(path: Path) -> Iterator[None]:
    """Print a definition file's problems as ``FILE: line N, field 'path': message``; exit 2."""
    try:
        yield
    except InvalidInput as exc:
        problems = locate(exc.problems, read_text(path)) if path.is_file() else exc.problems
        for problem in problems:
            message = f"[red]error:[/red] {path}: {problem.describe()}"
            err_console.print(message, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc


@contextmanager
def exit_on_error() -> Iterator[None]:
    """Turn Kizuna's errors into a red message and an exit code (2 for bad input, 1 otherwise)."""
    try:
        yield
    except InvalidInput as exc:
        for problem in exc.problems:
            err_console.print(f"[red]error:[/red] {problem.describe()}", highlight=False)
        raise typer.Exit(2) from exc
    except KizunaError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
