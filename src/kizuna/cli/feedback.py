"""``kizuna bounces …``: import a bounce mailbox, or run the bounce SMTP receiver.

Both apply DSN bounces and ARF complaints to one workspace: hard bounces and
complaints suppress the address at once, soft bounces after the workspace's
``soft_bounce_limit``; complaints also opt the customer out (see
:mod:`kizuna.delivery.feedback`).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kizuna.bootstrap import open_database
from kizuna.cli.app import WorkspaceOption, console, default_workspace, err_console, exit_on_error
from kizuna.delivery.bounce_mailbox import MailboxSummary, import_mailbox, start_bounce_server
from kizuna.errors import NotFound
from kizuna.segments.report import workspace_scope
from kizuna.store.database import Database
from kizuna.store.providers import load_provider

__all__ = ["bounces_app", "register"]

bounces_app = typer.Typer(
    help="Bounces and complaints: import a mailbox, or receive them over SMTP.",
    no_args_is_help=True,
)


@bounces_app.command("import")
def import_command(
    path: Annotated[
        Path, typer.Argument(help="An mbox file, a Maildir, a directory of .eml files or one .eml")
    ],
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Apply every bounce and complaint in a mailbox (importing it again changes nothing)."""
    slug = workspace or default_workspace()
    with exit_on_error(), open_database() as db:
        summary = import_mailbox(db, slug, path)
    _print_summary(summary, slug)


def _print_summary(summary: MailboxSummary, slug: str) -> None:
    table = Table("", "count", title=f"Bounce mail applied to {slug}")
    table.add_row("messages read", str(summary.read))
    table.add_row("reports", str(summary.reports))
    table.add_row("not reports (ignored)", str(summary.not_reports))
    for verdict, count in sorted(summary.verdicts.items()):
        table.add_row(f"  {verdict.replace('_', ' ')}", str(count))
    table.add_row("new events", str(summary.events))
    table.add_row("addresses suppressed", str(summary.suppressed))
    table.add_row("customers opted out", str(summary.opted_out))
    console.print(table)
    for problem in summary.problems:
        err_console.print(f"[yellow]skipped:[/yellow] {problem}", highlight=False)


@bounces_app.command("serve")
def serve_command(
    port: Annotated[int, typer.Option(help="Port to listen on (25 needs privileges)")] = 2525,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    domain: Annotated[
        list[str] | None,
        typer.Option(
            help="Domain the mailbox receives for (repeatable) "
            "[default: the email provider's bounce_domain setting]"
        ),
    ] = None,
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Receive bounce and complaint mail over SMTP and apply it until interrupted."""
    slug = workspace or default_workspace()
    with exit_on_error():
        db = open_database()
        domains = domain or _provider_domains(db, slug)
        controller = start_bounce_server(db, slug, host, port, domains)
    console.print(
        f"Bounce mailbox for [bold]{slug}[/bold] on smtp://{host}:{port} "
        f"receiving for {', '.join(domains)} (Ctrl-C stops)"
    )
    stop = threading.Event()
    # A service manager stops with SIGTERM: finish the message in hand, then close.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
        db.dispose()


def _provider_domains(db: Database, slug: str) -> list[str]:
    """The bounce domain from the workspace's email provider settings, when it names one."""
    with workspace_scope(db, slug) as scope:
        try:
            settings = load_provider(scope, "email").settings
        except NotFound:  # no email provider yet: no default domain
            return []
    found = settings.get("bounce_domain")
    return [str(found)] if found else []


def register(app: typer.Typer) -> None:
    """Add ``kizuna bounces`` to ``app``."""
    app.add_typer(bounces_app, name="bounces")
