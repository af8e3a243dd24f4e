"""``kizuna segments …``: save, validate, count, report, preview and export segments.

Specs are YAML or JSON files (by suffix). A problem in a file is reported with the
file's name, the line of the offending node when it can be found, and the node's
path. Exports and revealed previews are logged under the OS account running the CLI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kizuna.bootstrap import open_database
from kizuna.cli.app import WorkspaceOption, console, default_workspace, err_console, exit_on_error
from kizuna.errors import InvalidInput, Problem
from kizuna.segments.definition import SegmentSpec, load_spec
from kizuna.segments.export import open_export, preview_segment
from kizuna.segments.report import (
    FourRReport,
    ReportOptions,
    SegmentCounts,
    count_draft,
    count_segment,
    report_rows,
    segment_report,
    workspace_scope,
)
from kizuna.store.operation_log import Actor
from kizuna.store.segments import (
    archive_segment,
    check_spec,
    get_segment,
    list_segments,
    save_segment,
)
from kizuna.store.workspaces import get_workspace

__all__ = ["read_spec_file", "register"]

segments_app = typer.Typer(
    help="Segments: save definitions, count, 4R report, preview and export members.",
    no_args_is_help=True,
)
KeyArgument = typer.Argument(help="The segment's key")
FileArgument = typer.Argument(help="A segment spec, .yaml/.yml or .json")


def _line_of(text: str, path: str | None) -> int | None:
    """The 1-based line of the node at ``path`` (``condition.conditions[2].within``).

    A path that stops at a missing field gives the line of the mapping lacking it;
    one that matches nothing gives ``None``.
    """
    try:
        node: Any = yaml.compose(text) if path else None
    except yaml.YAMLError:
        return None
    found = 0
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path or ""):
        if isinstance(node, yaml.SequenceNode) and part.startswith("["):
            index = int(part[1:-1])
            children = node.value[index : index + 1]
        elif isinstance(node, yaml.MappingNode):
            children = [v for k, v in node.value if getattr(k, "value", None) == part]
        else:
            children = []
        if not children:
            break
        node, found = children[0], found + 1
    return int(node.start_mark.line) + 1 if found else None


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(Problem("unreadable_file", exc.strerror or "cannot read")) from None


def _located(exc: InvalidInput, text: str) -> InvalidInput:
    return InvalidInput(
        [Problem(p.code, p.message, p.field, p.line or _line_of(text, p.field))
         for p in exc.problems]
    )  # fmt: skip


def read_spec_file(path: Path) -> SegmentSpec:
    """Load a spec file; ``InvalidInput`` whose problems name the file's lines where known."""
    text = _text(path)
    fmt: Literal["yaml", "json"] = "json" if path.suffix.lower() == ".json" else "yaml"
    try:
        return load_spec(text, fmt)
    except InvalidInput as exc:
        raise _located(exc, text) from None


@contextmanager
def _checks_in(path: Path) -> Iterator[None]:
    """Problems of checking a file's spec against the workspace, located in the file."""
    try:
        yield
    except InvalidInput as exc:
        raise _located(exc, _text(path)) from None


@contextmanager
def _file_errors(path: Path) -> Iterator[None]:
    """Print a file's problems as ``FILE: line N, field 'path': message``; exit 2."""
    try:
        yield
    except InvalidInput as exc:
        for problem in exc.problems:
            message = f"[red]error:[/red] {path}: {problem.describe()}"
            err_console.print(message, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc


def _workspace(workspace: str | None) -> str:
    return workspace or default_workspace()


@segments_app.command("list")
def list_command(workspace: Annotated[str | None, WorkspaceOption] = None) -> None:
    """List the workspace's segments by rank."""
    with exit_on_error(), open_database() as db, workspace_scope(db, _workspace(workspace)) as s:
        saved = list_segments(s)
    table = Table("rank", "key", "name / 名前", "depends on", "updated (UTC)", title="Segments")
    for segment in saved:
        table.add_row(str(segment.rank or "—"), segment.key, segment.name,
                      ", ".join(sorted(segment.depends_on)),
                      segment.updated_at.strftime("%Y-%m-%d %H:%M"))  # fmt: skip
    console.print(table if saved else "No segments yet (kizuna segments create FILE.yaml).")


@segments_app.command("create")
def create_command(
    file: Annotated[Path, FileArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Save the segment in FILE (replacing the one with the same key)."""
    slug = _workspace(workspace)
    with exit_on_error(), _file_errors(file), open_database() as db:
        spec = read_spec_file(file)
        with _checks_in(file), workspace_scope(db, slug, write=True) as scope:
            saved = save_segment(scope, spec, Actor.os_user("cli").name)
        counts = count_segment(db, slug, saved.key)
    console.print(f"Saved segment [bold]{saved.key}[/bold] ({saved.name}) in {slug}: "
                  f"{counts.customers:,} customers now.")  # fmt: skip


@segments_app.command("validate")
def validate_command(
    file: Annotated[Path, FileArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Check FILE against the workspace without saving it (exit 2 with each problem)."""
    with exit_on_error(), _file_errors(file), open_database() as db:
        spec = read_spec_file(file)
        with _checks_in(file), workspace_scope(db, _workspace(workspace)) as scope:
            check_spec(scope, spec)
    console.print(f"{file}: OK — segment {spec.key} can be saved.")


def _counts_table(counts: SegmentCounts, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("channel\nチャネル", no_wrap=True)
    for header in ("opted in\n同意", "address\n宛先あり", "unsuppressed\n停止なし",
                   "reachable\n配信可能", "share\n割合"):  # fmt: skip
        table.add_column(header, justify="right")
    for c in counts.channels:
        share = f"{c.reachable_share:.1%}" if c.reachable_share is not None else "—"
        table.add_row(c.label_en if c.label_en == c.label_ja else f"{c.label_en}\n{c.label_ja}",
                      f"{c.opted_in:,}", f"{c.has_address:,}", f"{c.not_suppressed:,}",
                      f"{c.reachable:,}", share)  # fmt: skip
    return table


@segments_app.command("count")
def count_command(
    target: Annotated[str, typer.Argument(help="A saved segment's key, or a spec file")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Count members now, with reach per channel (a file is counted without saving it)."""
    slug = _workspace(workspace)
    path = Path(target)
    if path.is_file():
        with exit_on_error(), _file_errors(path), open_database() as db:
            spec = read_spec_file(path)
            with _checks_in(path):
                counts = count_draft(db, slug, spec.condition)
    else:
        with exit_on_error(), open_database() as db:
            counts = count_segment(db, slug, target)
    title = f"{target}: {counts.customers:,} customers / 対象者"
    console.print(_counts_table(counts, title))


@segments_app.command("show")
def show_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Show a segment's definition (as YAML) and what can change its membership."""
    with exit_on_error(), open_database() as db, workspace_scope(db, _workspace(workspace)) as s:
        saved = get_segment(s, key)
    console.print(f"[bold]{saved.key}[/bold] — {saved.name}  (rank {saved.rank or '—'})")
    if saved.description:
        console.print(saved.description)
    console.print(f"Depends on: {', '.join(sorted(saved.depends_on)) or '—'}")
    console.print(f"Created by {saved.created_by}, updated {saved.updated_at:%Y-%m-%d %H:%M} UTC")
    spec = saved.spec().model_dump(mode="json", exclude_defaults=True)
    console.print(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), highlight=False)


def _value(metric: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes / はい" if value else "no / いいえ"
    if metric.endswith("share") or metric in ("baseline", "lift", "mde_relative"):
        return f"{value:.1%}"
    if metric == "mde_absolute":
        return f"{value * 100:+.2f} pt"
    if isinstance(value, float):
        return f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _render_report(report: FourRReport, zone: ZoneInfo) -> None:
    r = report.realistic
    since = r.revenue_since.astimezone(zone).strftime("%Y-%m-%d")
    title = f"4R: {report.key} — {report.name} (revenue since {since}, {r.currency or '—'})"
    table = Table("", "指標", "metric", "value", title=title, title_justify="left")
    for section, metric, ja, en, value in report_rows(report):
        head = "/".join(report.labels[section])
        table.add_row(head, ja, en, _value(metric, value))
    console.print(table)
    counts = SegmentCounts(r.members, report.reach)
    console.print(_counts_table(counts, "Reach / 到達"))


@segments_app.command("report")
def report_command(
    key: Annotated[str, KeyArgument],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    baseline: Annotated[float, typer.Option(help="Expected conversion rate")] = 0.02,
    control_share: Annotated[float, typer.Option(help="Share held out as control")] = 0.1,
    lift: Annotated[float, typer.Option(help="Relative lift hoped for (0.2 = +20%)")] = 0.2,
    revenue_days: Annotated[int, typer.Option(help="Revenue window in days")] = 365,
    currency: Annotated[str | None, typer.Option(help="When orders use several")] = None,
) -> None:
    """The 4R report: Realistic, Reach, Response (detectable lift), Rank."""
    options = ReportOptions(baseline, control_share, lift, revenue_days, currency)
    with exit_on_error(), open_database() as db:
        slug = _workspace(workspace)
        report = segment_report(db, slug, key, options)
        with db.read() as conn:
            zone = ZoneInfo(get_workspace(conn, slug).time_zone)
    _render_report(report, zone)


@segments_app.command("preview")
def preview_command(
    key: Annotated[str, KeyArgument],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    limit: Annotated[int, typer.Option(help="How many members to sample")] = 20,
    reveal: Annotated[bool, typer.Option(help="Personal data in clear (logged)")] = False,
) -> None:
    """A random sample of members; personal data masked unless --reveal."""
    actor = Actor.os_user("cli")
    with exit_on_error(), open_database() as db:
        preview = preview_segment(db, _workspace(workspace), key, limit=limit, reveal=reveal,
                                  actor=actor)  # fmt: skip
    title = f"{key}: {len(preview.rows)} of {preview.members:,} members" + (
        "" if reveal else " (personal data masked)")  # fmt: skip
    table = Table(title=title, title_justify="left")
    for header in ("shop id", "name / 氏名", "email", "phone", "prefecture", "RFM", "CLV"):
        table.add_column(header, no_wrap=header == "email", overflow="fold")
    for row in preview.rows:
        name = " ".join(v for v in (row["last_name"], row["first_name"]) if v) or None
        table.add_row(*(_cell(v) for v in (row["shop_customer_id"], name, row["email"],
                                           row["phone"], row["prefecture"], row["rfm_segment"],
                                           row["clv"])))  # fmt: skip
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.0f}"
    return value.strftime("%Y-%m-%d") if isinstance(value, datetime) else str(value)


@segments_app.command("export")
def export_command(
    key: Annotated[str, KeyArgument],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    format: Annotated[
        str | None, typer.Option(help="csv or parquet [default: from --out's suffix, else csv]")
    ] = None,
    reveal: Annotated[bool, typer.Option(help="Personal data in clear (logged)")] = False,
) -> None:
    """Export every member to a CSV (UTF-8 with BOM, opens in Excel) or Parquet file."""
    fmt = format or ("parquet" if out.suffix.lower() == ".parquet" else "csv")
    actor = Actor.os_user("cli")
    with exit_on_error(), open_database() as db:
        if fmt not in ("csv", "parquet"):
            raise InvalidInput(Problem("unknown_format", "use csv or parquet", "format"))
        with open_export(db, _workspace(workspace), key, format=fmt, reveal=reveal,
                         actor=actor) as export, out.open("wb") as handle:  # fmt: skip
            _write(export.batches(), export.rows, handle)
    masked = "personal data in clear" if reveal else "personal data masked"
    console.print(f"Wrote {export.rows:,} members to {out} ({fmt}, {masked}); logged.")


def _write(batches: Iterator[tuple[bytes, int]], total: int, handle: Any) -> None:
    columns = (TextColumn("Exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("export", total=total)
        for data, rows in batches:
            handle.write(data)
            progress.advance(task, rows)


@segments_app.command("delete")
def delete_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Archive a segment (refused while another segment refers to it)."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        archive_segment(scope, key)
    console.print(f"Archived segment {key} of {slug}.")


@segments_app.command("schema")
def schema_command(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file")] = None,
) -> None:
    """Print the JSON Schema of a segment spec (for editors and validators)."""
    text = json.dumps(SegmentSpec.model_json_schema(), ensure_ascii=False, indent=2)
    if out is None:
        console.print_json(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        console.print(f"Wrote the schema to {out}")


def register(app: typer.Typer) -> None:
    """Add ``kizuna segments`` to ``app``."""
    app.add_typer(segments_app, name="segments")
