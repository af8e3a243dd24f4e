"""``kizuna reports campaign KEY`` and ``kizuna reports scenario KEY``: how a send did.

Prints the totals (配信数, 配信成功率, 開封率, CTR, CVR, revenue …), the same by
variant, step, channel, RFM segment and day, uplift over the control group and
between variants with 95% intervals and p-values (or "not enough data yet" and the
customers still needed), and where it falls behind the workspace's medians.
``--plots DIR`` also writes the funnel, uplift and daily plots as PNG or SVG.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import typer
from rich.status import Status
from rich.table import Table

from kizuna.analytics.charts.output import save_figure
from kizuna.bootstrap import open_database
from kizuna.cli.app import WorkspaceOption, console, default_workspace, exit_on_error
from kizuna.measurement.factors import Factor
from kizuna.measurement.plots import PLOTS, plot_report
from kizuna.measurement.report import (
    METRIC_LABELS,
    VERDICT_LABELS,
    Report,
    campaign_report,
    scenario_report,
)
from kizuna.measurement.uplift import HOPED_LIFT, Uplift
from kizuna.segments.report import workspace_scope

__all__ = ["register"]

reports_app = typer.Typer(help="Campaign and scenario reports: metrics, uplift, plots.",
                          no_args_is_help=True)  # fmt: skip
_RATES = {"delivery_rate", "open_rate", "ctr", "click_to_open", "cvr"}
_BREAKDOWN = ("sent", "delivered", "delivery_rate", "open_rate", "ctr", "cvr", "conversions",
              "revenue")  # fmt: skip
_SECTIONS = (("by_variant", "variant", "バリアント別 / By variant"),
             ("by_step", "step", "ステップ別 / By step"),
             ("by_channel", "channel", "チャネル別 / By channel"),
             ("by_segment", "rfm_segment", "RFMセグメント別 / By RFM segment"),
             ("by_day", "day", "日別 / By day"))  # fmt: skip
PlotsOption = typer.Option("--plots", help="Write funnel, uplift and daily plots to this folder")
FormatOption = typer.Option("--format", help="Plot file format")
LiftOption = typer.Option("--lift", min=0.01, max=10.0,
                          help="Relative lift a test should detect (0.2: +20%)")  # fmt: skip


def _value(metric: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if metric in _RATES:
        return f"{value:.1%}"
    if metric.startswith("revenue"):
        return f"¥{value:,.0f}"
    return f"{value:,.0f}"


def _totals_table(report: Report) -> Table:
    table = Table("指標", "metric", "value", title="Totals / 合計", title_justify="left")
    for metric, (ja, en) in METRIC_LABELS.items():
        if metric in report.totals:
            table.add_row(ja, en, _value(metric, report.total(metric)))
    return table


_SHORT = {"sent": ("配信数", "Sent"), "delivered": ("配信成功", "Deliv."),
          "delivery_rate": ("成功率", "Deliv.%"), "open_rate": ("開封率", "Open%"),
          "ctr": ("CTR", ""), "cvr": ("CVR", ""), "conversions": ("CV", "Conv."),
          "revenue": ("売上", "Revenue")}  # fmt: skip


def _breakdown(frame: pd.DataFrame, column: str, title: str) -> Table:
    table = Table(column, title=title, title_justify="left")
    for metric in _BREAKDOWN:
        ja, en = _SHORT[metric]
        table.add_column(f"{ja}\n{en}".strip(), justify="right")
    for row in frame.to_dict("records"):
        label = row[column] if row[column] is not None and not pd.isna(row[column]) else "—"
        table.add_row(str(label), *(_value(m, row.get(m)) for m in _BREAKDOWN))
    return table


def _interval(low: float | None, high: float | None, scale: float, fmt: str) -> str:
    if low is None or high is None:
        return ""
    return f"\n[{low * scale:{fmt}}, {high * scale:{fmt}}]"


def _verdict(u: Uplift) -> str:
    ja, en = VERDICT_LABELS[u.verdict]
    more = ""
    g, r = u.still_needed_group, u.still_needed_reference
    if u.verdict == "not_enough_data" and g is not None and r is not None and g + r:
        more = f"\nあと {g:,} + {r:,} 人\n{g:,} + {r:,} more"
    return f"{ja}\n{en}{more}"


def _uplift_table(report: Report) -> Table:
    title = f"Uplift: CVR / 効果: CVR（95% 信頼区間, 検出目標 +{report.hoped_lift:.0%}）"
    table = Table("comparison\n比較", "customers\n人数", "CVR", "uplift\n差 (pt)",
                  "relative\n改善率", "p", "verdict\n判定", title=title,
                  title_justify="left")  # fmt: skip
    for u in report.comparisons():
        c = u.conversion
        table.add_row(
            f"{u.group}\nvs {u.reference}", f"{u.customers:,}\n{u.reference_customers:,}",
            f"{c.rate:.2%}\n{c.reference_rate:.2%}" if c else "—",
            f"{c.absolute * 100:+.2f}" + _interval(c.absolute_low, c.absolute_high, 100, "+.2f")
            if c else "—",
            f"{c.relative:+.1%}" if c and c.relative is not None else "—",
            f"{c.p_value:.3f}" if c else "—", _verdict(u),
        )  # fmt: skip
    return table


def _revenue_table(report: Report) -> Table:
    title = "Uplift: revenue and increments / 効果: 売上と増分（95% 信頼区間）"
    table = Table("comparison\n比較", "revenue/customer\n顧客あたり売上差", "p",
                  "incremental conv.\n増分CV", "incremental revenue\n増分売上", title=title,
                  title_justify="left")  # fmt: skip
    for u in report.comparisons():
        r = u.revenue
        table.add_row(
            f"{u.group} vs {u.reference}",
            f"¥{r.difference:+,.0f}" + _interval(r.low, r.high, 1, "+,.0f") if r else "—",
            f"{r.p_value:.3f}" if r else "—",
            f"{u.incremental_conversions:+,.1f}" + _interval(
                u.incremental_conversions_low, u.incremental_conversions_high, 1, "+,.1f")
            if u.incremental_conversions is not None else "—",
            f"¥{u.incremental_revenue:+,.0f}" + _interval(
                u.incremental_revenue_low, u.incremental_revenue_high, 1, "+,.0f")
            if u.incremental_revenue is not None else "—",
        )  # fmt: skip
    return table


def _factors_table(factors: list[Factor]) -> Table:
    table = Table("where\n対象", "stage\n段階", "rate\n実績", "median\n中央値", "gap\n差",
                  "short\n不足", "lost CV\n失ったCV",
                  title="Where it falls behind / 改善ポイント（ワークスペース中央値比）",
                  title_justify="left")  # fmt: skip
    for f in factors[:10]:
        table.add_row(f"{f.dimension}:\n{f.value}", f.label_ja, f"{f.rate:.1%}",
                      f"{f.median:.1%}", f"{f.gap * 100:+.1f}pt", f"{f.shortfall:,.0f}",
                      f"{f.conversions_lost:,.1f}")  # fmt: skip
    return table


def _print(report: Report) -> None:
    days = report.window_days
    console.print(f"[bold]{report.key}[/bold] — {report.name} ({report.kind}, {report.status}; "
                  f"window {days} days / 計測期間 {days}日)")  # fmt: skip
    console.print(_totals_table(report))
    for attr, column, title in _SECTIONS:
        frame = getattr(report, attr)
        if not frame.empty and column in frame:
            console.print(_breakdown(frame, column, title))
    console.print(_uplift_table(report))
    console.print(_revenue_table(report))
    if report.factors:
        console.print(_factors_table(report.factors))


def _write_plots(report: Report, folder: Path, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for which in PLOTS:
        path = save_figure(plot_report(report, which), folder / f"{report.key}-{which}.{fmt}")
        console.print(f"Wrote {path}", highlight=False)


def _reading() -> Status:
    """A spinner while the store aggregates (a second or two on a big campaign)."""
    return console.status("Reading the report / レポートを集計中…")


def _show(report: Report, plots: Path | None, fmt: str) -> None:
    _print(report)
    if plots is not None:
        _write_plots(report, plots, fmt)


@reports_app.command("campaign")
def campaign_command(
    key: Annotated[str, typer.Argument(help="The campaign's key")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    plots: Annotated[Path | None, PlotsOption] = None,
    fmt: Annotated[Literal["png", "svg"], FormatOption] = "png",
    lift: Annotated[float, LiftOption] = HOPED_LIFT,
) -> None:
    """A campaign's report: totals, breakdowns, uplift vs control and variants, factors."""
    slug = workspace or default_workspace()
    with exit_on_error(), open_database() as db:
        with _reading(), workspace_scope(db, slug) as scope:
            report = campaign_report(scope, key, hoped_lift=lift)
        _show(report, plots, fmt)


@reports_app.command("scenario")
def scenario_command(
    key: Annotated[str, typer.Argument(help="The scenario's key")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    plots: Annotated[Path | None, PlotsOption] = None,
    fmt: Annotated[Literal["png", "svg"], FormatOption] = "png",
    lift: Annotated[float, LiftOption] = HOPED_LIFT,
) -> None:
    """A scenario's report: totals, by step, uplift vs held-out runs, factors."""
    slug = workspace or default_workspace()
    with exit_on_error(), open_database() as db:
        with _reading(), workspace_scope(db, slug) as scope:
            report = scenario_report(scope, key, hoped_lift=lift)
        _show(report, plots, fmt)


def register(app: typer.Typer) -> None:
    """Add ``kizuna reports`` to ``app``."""
    app.add_typer(reports_app, name="reports")
