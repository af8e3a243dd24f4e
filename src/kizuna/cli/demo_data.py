"""The ``kizuna demo-data`` command: fill a workspace with a realistic demo shop."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from kizuna.bootstrap import open_database
from kizuna.cli.app import console, err_console
from kizuna.demo import DemoOptions, DemoSummary, generate_demo_data
from kizuna.errors import KizunaError

__all__ = ["register"]


def _print_summary(summary: DemoSummary, customers: int) -> None:
    table = Table(title=f"demo data in workspace {summary.workspace.slug!r}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in summary.counts.items():
        table.add_row(name, f"{count:,}")
    table.add_row("[b]total[/b]", f"[b]{sum(summary.counts.values()):,}[/b]")
    console.print(table)
    rate = customers / summary.seconds if summary.seconds else 0.0
    console.print(f"{customers:,} customers in {summary.seconds:.1f} s ({rate:,.0f} customers/s)")


def demo_data(
    customers: Annotated[
        int, typer.Option("--customers", "-n", min=1, help="Customers to create.")
    ] = 1_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same shop.")] = 42,
    workspace: Annotated[str, typer.Option(help="Workspace slug (created if missing).")] = "demo",
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete the workspace's existing data first.")
    ] = False,
) -> None:
    """Generate a realistic, deterministic Japanese D2C shop to try Kizuna on."""
    db = open_database()
    options = DemoOptions(customers=customers, seed=seed, workspace=workspace, replace=replace)
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("generating customers", total=customers)
            summary = generate_demo_data(db, options, lambda n: progress.advance(task, n))
    except KizunaError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        db.dispose()
    _print_summary(summary, customers)


def register(app: typer.Typer) -> None:
    """Add the ``demo-data`` command to ``app``."""
    app.command("demo-data")(demo_data)
