"""``kizuna import KIND FILE``: batch file import with a progress bar and a summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from kizuna.cli.app import console, err_console
from kizuna.errors import InvalidInput, KizunaError
from kizuna.ingest.files import KINDS, ImportSummary, import_file

if TYPE_CHECKING:
    from kizuna.store.database import Database
    from kizuna.store.workspaces import Workspace

__all__ = ["register"]

_HELP = f"""Import a file of {", ".join(KINDS)} (CSV, JSONL or Parquet).

CSV may be UTF-8, UTF-8 with BOM or Shift_JIS/CP932 (detected). Common Japanese
shop headers (顧客ID, メールアドレス, 受注番号, 購入日時 …) map without a mapping
file. Re-importing the same file changes nothing. Bad rows go to the reject file.
"""


def import_command(
    kind: Annotated[str, typer.Argument(help=f"What the file holds: {' | '.join(KINDS)}.")],
    file: Annotated[Path, typer.Argument(help="The CSV, JSONL or Parquet file.")],
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", "-w", help="Workspace slug [env KIZUNA_WORKSPACE, or demo]."),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", "-m", help="Column mapping file (YAML or JSON).")
    ] = None,
    reject_file: Annotated[
        Path | None,
        typer.Option("--reject-file", help="Where rejected rows go [FILE.rejected.csv]."),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv | jsonl | parquet [from the suffix].")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="CSV encoding, e.g. cp932 [detected].")
    ] = None,
) -> None:
    """Import a file of customers, orders, events, products or consents."""
    from kizuna.bootstrap import open_database
    from kizuna.store.workspaces import get_workspace

    slug = workspace or os.environ.get("KIZUNA_WORKSPACE") or "demo"
    db = open_database()
    try:
        with db.read() as conn:
            ws = get_workspace(conn, slug)
        summary = _run(db, ws, kind, file, mapping, reject_file, fmt, encoding)
    except KizunaError as exc:
        _fail(exc)
    finally:
        db.dispose()
    _report(summary)


def _run(
    db: Database, ws: Workspace, kind: str, file: Path, mapping: Path | None,
    reject_file: Path | None, fmt: str | None, encoding: str | None,
) -> ImportSummary:  # fmt: skip
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"{kind} ← {file.name}", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return import_file(
            db, ws, kind, file, mapping=mapping, reject_path=reject_file,
            fmt=fmt, encoding=encoding, progress=advance,
        )  # fmt: skip


def _fail(exc: KizunaError) -> NoReturn:
    problems = exc.problems if isinstance(exc, InvalidInput) else []
    lines = [p.describe() for p in problems] or [str(exc)]
    for line in lines:
        err_console.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
    raise typer.Exit(2 if isinstance(exc, InvalidInput) else 1)


def _report(s: ImportSummary) -> None:
    console.print(
        f"{s.kind}: read {s.rows_read:,} rows, imported {s.rows_imported:,}, "
        f"rejected {s.rows_rejected:,} in {s.seconds:.1f} s ({s.rows_per_second:,.0f} rows/s)",
        highlight=False,
        soft_wrap=True,
    )
    if s.ignored_columns:
        console.print(f"ignored columns: {', '.join(s.ignored_columns)}", highlight=False)
    if s.reject_path is not None:
        console.print(f"rejected rows written to {s.reject_path}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``kizuna import`` to ``app``."""
    app.command("import", help=_HELP, no_args_is_help=True)(import_command)
