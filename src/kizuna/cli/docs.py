"""``kizuna docs data``: the data dictionary, generated from the schema."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from kizuna.cli.app import err_console
from kizuna.docs import build_dictionary, to_json, to_markdown

__all__ = ["docs_app", "register"]

docs_app = typer.Typer(help="Documentation generated from the code.")


class DictionaryFormat(StrEnum):
    """Output formats of the data dictionary."""

    md = "md"
    json = "json"


@docs_app.command("data")
def data(
    format_: Annotated[
        DictionaryFormat, typer.Option("--format", help="Markdown or JSON")
    ] = DictionaryFormat.md,
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout")] = None,
) -> None:
    """Print the data dictionary: every store, table, key and field, with personal data marked."""
    dictionary = build_dictionary()
    text = to_markdown(dictionary) if format_ is DictionaryFormat.md else to_json(dictionary)
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(text.encode("utf-8"))  # bytes: the same file on every platform
    err_console.print(f"Wrote the data dictionary ({len(dictionary.tables)} tables) to {out}")


def register(app: typer.Typer) -> None:
    """Add the ``docs`` group to ``app`` (safe to call twice)."""
    if any(group.typer_instance is docs_app for group in app.registered_groups):
        return
    app.add_typer(docs_app, name="docs")
