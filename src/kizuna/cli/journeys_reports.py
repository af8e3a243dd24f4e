"""``kizuna journeys stats`` and ``kizuna journeys simulate``: how a scenario does, or would do.

``stats KEY`` prints per node how many runs reached it, wait there now, passed,
were sent and left (and why), then the scenario's totals. ``simulate FILE --since
--until`` replays that range of real history through a draft definition file
and prints the same tables, and what would have been sent — nothing is kept or
sent. Dates without an offset are the workspace's local time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kizuna.bootstrap import open_database
from kizuna.cli.app import WorkspaceOption, console, default_workspace, err_console, exit_on_error
from kizuna.cli.journeys import read_scenario_file
from kizuna.documents import locate, read_text
from kizuna.errors import InvalidInput, Problem
from kizuna.scenarios.simulate import Simulation, simulate
from kizuna.scenarios.stats import NodeStats, ScenarioStats, ScenarioTotals, node_stats
from kizuna.segments.report import workspace_scope

__all__ = ["add_report_commands"]

_NODE_HEADERS = ("node\nノード", "type\n種類", "entered\n到達", "waiting\n待機中",
                 "passed\n通過", "sent\n配信", "exited\n終了")  # fmt: skip


def _nodes_table(stats: ScenarioStats, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for header in _NODE_HEADERS:
        table.add_column(header, justify="left" if header[:4] in ("node", "type") else "right")
    for n in stats.nodes:
        numbers = (n.entered, n.waiting, n.passed, n.sent, n.exited)
        table.add_row(n.node_id, n.type or "—", *(f"{v:,}" for v in numbers))
    return table


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _details_table(nodes: list[NodeStats]) -> Table | None:
    """Exit reasons, paths taken and sends per channel and template, node by node."""
    title = "Exits, paths, sends / 終了理由・分岐・配信"
    table = Table("node\nノード", "what\n内訳", "counts\n件数", title=title, title_justify="left")
    for n in nodes:
        for what, counts in (("exits / 終了理由", n.exits), ("paths / 分岐", n.paths),
                             ("channels / チャネル", n.channels),
                             ("templates / テンプレート", n.templates)):  # fmt: skip
            if counts:
                table.add_row(n.node_id, what, _counts(counts))
    return table if table.row_count else None


def _totals_table(t: ScenarioTotals) -> Table:
    rate = f"{t.conversion_rate:.1%}" if t.conversion_rate is not None else "—"
    held = f"{t.held_out:,} (holdout {t.holdout:,}, global control {t.global_control:,})"
    rows = [
        ("開始", "entered", f"{t.entered:,}"), ("コントロール群", "held out", held),
        ("進行中", "active", f"{t.active:,}"), ("完了", "completed", f"{t.completed:,}"),
        ("離脱", "exited early", f"{t.exited:,}"),
        ("終了理由", "ended by", _counts(t.exits) or "—"),
        ("コンバージョン", "goals", f"{t.goals:,}"),
        ("コンバージョン率 (CVR)", "conversion rate", rate),
        ("配信数 (IMP)", "sent", f"{t.sent:,} " + (f"({_counts(t.channels)})" if t.sent else "")),
    ]  # fmt: skip
    table = Table("指標", "metric", "value", title="Totals / 合計", title_justify="left")
    for row in rows:
        table.add_row(*row)
    return table


def _print_stats(stats: ScenarioStats, title: str) -> None:
    console.print(_nodes_table(stats, title))
    details = _details_table(stats.nodes)
    if details is not None:
        console.print(details)
    console.print(_totals_table(stats.totals))


def stats_command(
    key: Annotated[str, typer.Argument(help="The scenario's key")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    version: Annotated[
        int | None, typer.Option(min=1, help="Only this published version [default: all]")
    ] = None,
) -> None:
    """Per-node statistics: reached, waiting, passed, sent, exited (by reason); totals."""
    slug = workspace or default_workspace()
    with exit_on_error(), open_database() as db, workspace_scope(db, slug) as scope:
        stats = node_stats(scope, key, version)
    which = f"version {version}" if version is not None else "all versions"
    _print_stats(stats, f"{stats.key} — {stats.name} ({which}) / ノード別統計")


def _moment(text: str, field: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        message = f"{text!r} is not a date (2026-03-01) or a time (2026-03-01T09:00)"
        raise InvalidInput(Problem("invalid_date", message, field)) from None


@contextmanager
def _in_file(path: Path) -> Iterator[None]:
    """Print a draft's problems as ``FILE: line N, field 'path': message``; exit 2."""
    try:
        yield
    except InvalidInput as exc:
        located = path.is_file() and not all(p.field in ("since", "until") for p in exc.problems)
        problems = locate(exc.problems, read_text(path)) if located else exc.problems
        for problem in problems:
            where = f"{path}: " if located else ""
            err_console.print(f"[red]error:[/red] {where}{problem.describe()}", highlight=False,
                              soft_wrap=True)  # fmt: skip
        raise typer.Exit(2) from exc


def _print_simulation(sim: Simulation) -> None:
    since, until = (v.strftime("%Y-%m-%d %H:%M") for v in (sim.since, sim.until))
    console.print(f"Replayed {sim.events:,} events, {sim.signals:,} segment changes and "
                  f"{sim.calendar:,} calendar triggers from {since} to {until} UTC; "
                  "nothing was kept or sent.")  # fmt: skip
    _print_stats(sim.stats, f"{sim.key} — {sim.name}: simulation / シミュレーション")
    if sim.sends:
        table = Table("node\nノード", "channel\nチャネル", "template\nテンプレート",
                      "messages\n通数", title="Would have sent / 配信予定",
                      title_justify="left")  # fmt: skip
        for s in sim.sends:
            table.add_row(s.node_id, s.channel, s.template or "—", f"{s.messages:,}")
        console.print(table)
    console.print("Limits / 制約:", style="dim")
    for limit in sim.limits:
        console.print(f"  - {limit}", style="dim", highlight=False)


def simulate_command(
    file: Annotated[Path, typer.Argument(help="A draft definition, .yaml/.yml or .json")],
    since: Annotated[str, typer.Option(help="Start: 2026-03-01 or 2026-03-01T09:00 (local)")],
    until: Annotated[str, typer.Option(help="End (exclusive), at most 366 days later")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Replay real history through a draft: who would enter, pass, wait, exit, get what."""
    slug = workspace or default_workspace()
    columns = (TextColumn("Replaying history"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with exit_on_error(), _in_file(file), open_database() as db:
        spec = read_scenario_file(file)
        start, end = _moment(since, "since"), _moment(until, "until")
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("replay", total=None)
            sim = simulate(db, slug, spec, start, end,
                           progress=lambda done, total: bar.update(task, completed=done,
                                                                   total=total))  # fmt: skip
    _print_simulation(sim)


def add_report_commands(app: typer.Typer) -> None:
    """Add ``stats`` and ``simulate`` to the ``journeys`` Typer app."""
    app.command("stats")(stats_command)
    app.command("simulate")(simulate_command)
