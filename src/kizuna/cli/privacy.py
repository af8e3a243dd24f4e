"""``kizuna privacy``: data-subject requests (APPI) and consent-evidence retention.

Every request is recorded and written to the operation log under the OS account
running the CLI, with the customer's Kizuna id (never the email or phone typed).
Times are shown in the workspace's zone.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich import box
from rich.table import Table

from kizuna.bootstrap import open_database
from kizuna.cli.app import WorkspaceOption, console, default_workspace, exit_on_error
from kizuna.errors import InvalidInput, Problem
from kizuna.privacy import (
    CORRECTABLE,
    correct_profile,
    disclose_customer,
    erase_customer,
    purge_expired_evidence,
    retention_report,
    stop_use,
    update_privacy_settings,
)
from kizuna.privacy.requests import workspace_read
from kizuna.privacy.retention_report import RetentionReport
from kizuna.privacy.settings import load_privacy_settings
from kizuna.store.operation_log import Actor
from kizuna.store.privacy import list_requests
from kizuna.store.workspaces import get_workspace

__all__ = ["register"]

privacy_app = typer.Typer(help="Data-subject requests (APPI): disclose, correct, stop use, erase.")
retention_app = typer.Typer(help="Consent evidence retention (Specified Electronic Mail Act).")
privacy_app.add_typer(retention_app, name="retention")
RefArgument = typer.Argument(help="Kizuna id, shop customer id, email or phone")


def _actor() -> Actor:
    return Actor.os_user("cli")


def _zone(workspace: str) -> ZoneInfo:
    with open_database() as db, db.read() as conn:
        return ZoneInfo(get_workspace(conn, workspace).time_zone)


def _local(at: datetime | None, zone: ZoneInfo) -> str:
    return "—" if at is None else at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


@privacy_app.command("disclose")
def disclose_command(
    ref: Annotated[str, RefArgument],
    out: Annotated[Path, typer.Option("--out", "-o", help="bundle.zip, or a directory")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Everything held about a person: disclosure.json plus one CSV per table (logged)."""
    with exit_on_error(), open_database() as db:
        disclosure = disclose_customer(db, workspace or default_workspace(), ref, actor=_actor())
    if out.suffix.lower() == ".zip":
        out.write_bytes(disclosure.to_zip())
    else:
        disclosure.write_directory(out)
    counts = disclosure.request.details["rows"]
    table = Table("table", "rows", title=f"Disclosure of customer {disclosure.request.customer_id}")
    for name, rows in counts.items():
        table.add_row(name, str(rows))
    console.print(table)
    console.print(f"Wrote {out} (personal data in clear); logged.")


def _pairs(fields: list[str], values: list[str]) -> dict[str, str | None]:
    if len(fields) != len(values):
        message = "give one --value for each --field (an empty value removes the field)"
        raise InvalidInput(Problem("unpaired_fields", message, "value"))
    return {name: value or None for name, value in zip(fields, values, strict=True)}


@privacy_app.command("correct")
def correct_command(
    ref: Annotated[str, RefArgument],
    field: Annotated[list[str], typer.Option("--field", help=", ".join(CORRECTABLE))],
    value: Annotated[list[str], typer.Option("--value", help="The right value ('' removes)")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Correct profile fields: --field email --value new@example.jp (repeatable)."""
    with exit_on_error(), open_database() as db:
        fields = _pairs(field, value)
        slug = workspace or default_workspace()
        request = correct_profile(db, slug, ref, fields, actor=_actor())
    done = ", ".join(
        request.details["fields"] + [f"{n} (removed)" for n in request.details["cleared"]]
    )
    console.print(f"Corrected {done} of customer {request.customer_id}; logged.")


@privacy_app.command("stop")
def stop_command(
    ref: Annotated[str, RefArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Stop use: opt out on every channel, suppress their addresses, end their scenario runs."""
    with exit_on_error(), open_database() as db:
        request = stop_use(db, workspace or default_workspace(), ref, actor=_actor())
    d = request.details
    console.print(
        f"Stopped all marketing to customer {request.customer_id}: opted out on "
        f"{', '.join(d['opted_out']) or 'no new channel'}, {d['addresses_suppressed']} "
        f"addresses suppressed, {d['runs_exited']} scenario runs ended; logged."
    )


@privacy_app.command("erase")
def erase_command(
    ref: Annotated[str, RefArgument],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Erase a person's personal data; orders and events stay as anonymous facts."""
    if not yes:
        typer.confirm(f"Erase the personal data of {ref}? This cannot be undone", abort=True)
    with exit_on_error(), open_database() as db:
        erasure = erase_customer(db, workspace or default_workspace(), ref, actor=_actor())
    d = erasure.request.details
    console.print(
        f"Erased customer {erasure.request.customer_id}: {d['identities_deleted']} identifiers "
        f"deleted, {d['events_scrubbed']} events scrubbed; consent evidence kept for the law: "
        f"{d['evidence_kept']} rows (purged when due); logged."
    )
    if erasure.compacted is False:
        console.print(
            "[yellow]The SQLite file was rebuilt but the WAL was busy; it empties "
            "at the next checkpoint.[/yellow]"
        )


@privacy_app.command("requests")
def requests_command(
    workspace: Annotated[str | None, WorkspaceOption] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 50,
) -> None:
    """The data-subject requests carried out in the workspace."""
    slug = workspace or default_workspace()
    with exit_on_error(), open_database() as db, workspace_read(db, slug) as scope:
        found = list_requests(scope, limit=limit)
        zone = ZoneInfo(get_workspace(scope.conn, slug).time_zone)
    table = Table(f"when ({zone.key})", "kind", "customer", "by", "details", title="Requests")
    for r in found:
        table.add_row(
            _local(r.created_at, zone),
            r.kind,
            str(r.customer_id),
            r.requested_by,
            str(r.details)[:60],
        )
    console.print(table)


def _day(at: datetime | None, zone: ZoneInfo) -> str:
    return "—" if at is None else at.astimezone(zone).strftime("%Y-%m-%d")


def _print_report(report: RetentionReport, zone: ZoneInfo) -> None:
    title = f"Consent evidence (kept {report.months} month(s) after the last send)"
    table = Table("customer", "channel", "consent", "rows", "decided", "last send", "keep until",
                  "purge", title=title, box=box.SIMPLE_HEAD, padding=(0, 1),
                  collapse_padding=True, pad_edge=False)  # fmt: skip
    for line in report.lines:
        until = "consented" if line.keep_until is None else _day(line.keep_until, zone)
        consent = "erased" if line.erased else (line.consent or "—")
        table.add_row(
            str(line.customer_id)[:8],
            line.channel,
            consent,
            str(line.evidence_rows),
            _day(line.last_decision_at, zone),
            _day(line.last_sent_at, zone),
            until,
            "yes" if line.purgeable else "no",
        )
    console.print(table)
    if report.address is not None:
        for line in report.lines:
            for e in line.evidence:
                console.print(
                    f"  {line.channel} {_local(e.occurred_at, zone)} {e.status} "
                    f"{e.address} via {e.method or '—'} from {e.source or '—'} "
                    f"(ip {e.ip or '—'})",
                    highlight=False,
                )
    console.print(
        f"{report.evidence_rows} evidence rows in {report.lines_total} lines; "
        f"{report.purgeable_rows} past retention and purgeable."
    )


@retention_app.command("report")
def report_command(
    address: Annotated[str | None, typer.Option(help="One email, phone or LINE id")] = None,
    reveal: Annotated[bool, typer.Option(help="Addresses and IPs in clear (logged)")] = False,
    limit: Annotated[int, typer.Option(help="Lines to show")] = 100,
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Per customer and channel: the evidence, the last send and until when it is kept."""
    slug = workspace or default_workspace()
    with exit_on_error(), open_database() as db:
        report = retention_report(
            db, slug, actor=_actor(), address=address, reveal=reveal, limit=limit
        )
    _print_report(report, _zone(slug))


@retention_app.command("purge")
def purge_command(
    yes: Annotated[bool, typer.Option("--yes", help="Delete (without it: only count)")] = False,
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Delete evidence past retention whose consent ended (opted out or erased)."""
    with exit_on_error(), open_database() as db:
        result = purge_expired_evidence(
            db, workspace or default_workspace(), actor=_actor(), dry_run=not yes
        )
    if result.dry_run:
        console.print(
            f"{result.rows} evidence rows are past retention ({result.months} "
            "month(s)); run with --yes to delete them."
        )
    else:
        console.print(f"Purged {result.rows} evidence rows past retention; logged.")


@retention_app.command("settings")
def settings_command(
    months: Annotated[
        int | None, typer.Option(help="Months to keep evidence after the last send (≥ 1)")
    ] = None,
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Show or change how long consent evidence is kept."""
    slug = workspace or default_workspace()
    with exit_on_error(), open_database() as db:
        if months is not None:
            data = {"evidence_retention_months": months}
            settings = update_privacy_settings(db, slug, data, actor=_actor())
        else:
            with workspace_read(db, slug) as scope:
                settings = load_privacy_settings(scope.conn, scope.workspace_id)
    console.print(
        f"Consent evidence is kept {settings.evidence_retention_months} month(s) "
        "after the last send to an address once its consent has ended."
    )


def register(app: typer.Typer) -> None:
    """Add ``kizuna privacy`` to ``app``."""
    app.add_typer(privacy_app, name="privacy")
