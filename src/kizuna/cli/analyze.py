"""``kizuna analyze NAME``: every analysis of the catalog as a Rich table, a CSV and a plot."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pandas as pd
import typer
from rich.table import Table

from kizuna.analytics.catalog import ANALYSES, Analysis, parse_request, plot_analysis, run_analysis
from kizuna.analytics.charts.output import save_figure
from kizuna.analytics.metrics import refresh_customer_metrics
from kizuna.bootstrap import open_database
from kizuna.cli.app import WorkspaceOption, console, default_workspace, exit_on_error
from kizuna.store.workspaces import get_workspace

__all__ = ["register"]

analyze_app = typer.Typer(
    help="Customer analytics: RFM, deciles, Pareto, F(n), cohorts, LTV, CLV (tables and plots).",
    no_args_is_help=True,
)

AsOfOption = typer.Option(help="Analysis date, in the workspace's time zone [default: now]")
SinceOption = typer.Option(help="Start of the window (purchases before it are left out)")
CurrencyOption = typer.Option(help="Currency to analyse when orders use several")
PlotOption = typer.Option(help="Write the plot to this .png or .svg file")
CsvOption = typer.Option(help="Write the whole table to this CSV file")
RowsOption = typer.Option(help="Rows to print")


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if column.endswith(("share", "rate")) or column in ("retention", "p_alive"):
            return f"{value:.1%}"
        if abs(value) < 10:  # model parameters and small ratios keep four digits
            return f"{value:.4g}"
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def render_frame(frame: pd.DataFrame, title: str, rows: int) -> Table:
    """A Rich table of the first ``rows`` rows of ``frame``."""
    table = Table(title=title, title_justify="left")
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left")
    for record in frame.head(rows).itertuples(index=False):
        table.add_row(*(_cell(str(c), v) for c, v in zip(frame.columns, record, strict=True)))
    return table


def _command(analysis: Analysis) -> None:
    by_help = (
        f"Break down by: {', '.join(analysis.by)} [default: {analysis.by[0]}]"
        if analysis.by
        else "This analysis has no breakdown"
    )

    def command(
        workspace: Annotated[str | None, WorkspaceOption] = None,
        as_of: Annotated[str | None, AsOfOption] = None,
        since: Annotated[str | None, SinceOption] = None,
        currency: Annotated[str | None, CurrencyOption] = None,
        by: str | None = None,  # annotated below: the help names this analysis' breakdowns
        plot: Annotated[Path | None, PlotOption] = None,
        csv: Annotated[Path | None, CsvOption] = None,
        rows: Annotated[int, RowsOption] = 25,
    ) -> None:
        with exit_on_error(), open_database() as db, db.read() as conn:
            ws = get_workspace(conn, workspace or default_workspace())
            request = parse_request(ws, db.clock.now(), as_of=as_of, since=since,
                                    currency=currency, by=by)  # fmt: skip
            frame = run_analysis(conn, ws, analysis.name, request)
            figure = plot_analysis(conn, ws, analysis.name, request) if plot else None
        local = request.as_of.astimezone(ZoneInfo(ws.time_zone)).strftime("%Y-%m-%d %H:%M")
        title = f"{analysis.title_ja} / {analysis.title_en} — {ws.slug}, as of {local}"
        if frame.empty:
            console.print(f"{title}\nNo purchases in this window (この期間の購入はありません).")
        else:
            console.print(render_frame(frame, title, rows))
            if len(frame) > rows:
                console.print(f"… {len(frame) - rows:,} more rows (--rows, or --csv for all)")
        if csv is not None:
            frame.to_csv(csv, index=False)
            console.print(f"Wrote {len(frame):,} rows to {csv}")
        if figure is not None and plot is not None:
            save_figure(figure, plot)
            console.print(f"Wrote the plot to {plot}")

    command.__doc__ = f"{analysis.title_en} ({analysis.title_ja})."
    # Annotations are strings under postponed evaluation; this one needs the closure's text.
    command.__annotations__["by"] = Annotated[str | None, typer.Option(help=by_help)]
    analyze_app.command(analysis.name)(command)


for _analysis in ANALYSES.values():
    _command(_analysis)


@analyze_app.command("refresh")
def refresh(
    workspace: Annotated[str | None, WorkspaceOption] = None,
    as_of: Annotated[str | None, AsOfOption] = None,
    currency: Annotated[str | None, CurrencyOption] = None,
) -> None:
    """Recompute RFM, P(alive), CLV and next-order dates onto every customer's profile."""
    with exit_on_error(), open_database() as db:
        with db.read() as conn:
            ws = get_workspace(conn, workspace or default_workspace())
        request = parse_request(ws, db.clock.now(), as_of=as_of, currency=currency)
        with console.status(f"Computing customer metrics of {ws.slug}…"):
            done = refresh_customer_metrics(db, ws, as_of=request.as_of, currency=request.currency)
    console.print(f"Stored metrics for {done.customers:,} customers in {done.seconds:.1f} s.")
    if not done.clv_fitted:
        console.print(f"[yellow]CLV columns left empty:[/yellow] {done.clv_problem}")


@analyze_app.command("list")
def list_analyses() -> None:
    """List the analyses, their breakdowns and whether they plot."""
    table = Table("name", "分析", "analysis", "--by", "plot")
    for analysis in ANALYSES.values():
        table.add_row(analysis.name, analysis.title_ja, analysis.title_en,
                      ", ".join(analysis.by) or "—", "yes" if analysis.plot else "—")  # fmt: skip
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``kizuna analyze`` to ``app``."""
    app.add_typer(analyze_app, name="analyze")
