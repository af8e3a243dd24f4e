"""``kizuna audit verify`` and ``kizuna audit log``: the tamper-evident operation log.

``verify`` re-checks the hash chain (:func:`kizuna.store.operation_log.verify_log`)
and exits 1 naming each broken entry. The chain alone cannot show that its newest
entries were deleted (a shorter chain still links up), so after every clean check
``verify`` remembers the newest entry in an anchor file (``$KIZUNA_HOME/audit.anchor``,
or ``--anchor``, best kept on another machine) and the next check fails if that
entry is gone or changed.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import typer
from rich.table import Table
from sqlalchemy.engine import Connection

from kizuna.bootstrap import open_database
from kizuna.cli.app import console, err_console, exit_on_error
from kizuna.config import load_settings
from kizuna.domain.normalize import parse_datetime
from kizuna.errors import Problem
from kizuna.store.operation_log import verify_log
from kizuna.store.tables import operation_log, workspaces

__all__ = ["ANCHOR_FILE_NAME", "audit_app", "register"]

ANCHOR_FILE_NAME = "audit.anchor"

audit_app = typer.Typer(help="The operation log: verify its hash chain, list its entries.")

AnchorOption = typer.Option(
    "--anchor", help="Where the newest verified entry is remembered [default: KIZUNA_HOME]"
)


@audit_app.command("verify")
def verify(anchor: Annotated[Path | None, AnchorOption] = None) -> None:
    """Check that no entry of the operation log was edited, removed or reordered (exit 1 if so)."""
    settings = load_settings()
    anchor_path = anchor or settings.home / ANCHOR_FILE_NAME
    with exit_on_error(), open_database(settings) as db, db.read() as conn:
        problems = verify_log(conn) + _check_anchor(conn, anchor_path)
        count, newest = _newest(conn)
    if problems:
        for problem in problems:
            err_console.print(f"[red]broken:[/red] {problem.message}", highlight=False)
        err_console.print(f"The operation log has been tampered with ({count:,} entries now).")
        raise typer.Exit(1)
    if newest is None:
        console.print("The operation log is empty.")
        return
    _write_anchor(anchor_path, count, newest)
    at = newest.at.astimezone(ZoneInfo(settings.time_zone)).strftime("%Y-%m-%d %H:%M:%S %Z")
    console.print(f"The operation log is intact: {count:,} entries, the newest {newest.entry_id} "
                  f"({newest.action}, {at}).")  # fmt: skip
    console.print(f"Newest hash: {bytes(newest.entry_hash).hex()} (remembered in {anchor_path})")


def _newest(conn: Connection) -> tuple[int, Any]:
    count = int(conn.execute(sa.select(sa.func.count()).select_from(operation_log)).scalar_one())
    query = sa.select(operation_log).order_by(operation_log.c.entry_id.desc()).limit(1)
    return count, conn.execute(query).first()


def _check_anchor(conn: Connection, path: Path) -> list[Problem]:
    """The entry that was newest at the last clean check must still be there, unchanged."""
    if not path.exists():
        return []
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        entry_id, entry_hash = uuid.UUID(saved["entry_id"]), bytes.fromhex(saved["entry_hash"])
    except (ValueError, KeyError, TypeError):
        return [Problem("audit_anchor_unreadable", f"the anchor file {path} cannot be read")]
    found = conn.execute(
        sa.select(operation_log.c.entry_hash).where(operation_log.c.entry_id == entry_id)
    ).scalar_one_or_none()
    if found is None:
        message = (
            f"entry {entry_id}, the newest at the last clean check ({saved.get('entries')} "
            "entries), is missing: entries were deleted from the end of the log"
        )
        return [Problem("operation_log_truncated", message, "operation_log")]
    if bytes(found) != entry_hash:
        message = f"entry {entry_id} is not the one verified before: its hash changed"
        return [Problem("operation_log_altered", message, "operation_log")]
    return []


def _write_anchor(path: Path, count: int, newest: Any) -> None:
    document = {"entry_id": str(newest.entry_id), "entry_hash": bytes(newest.entry_hash).hex(),
                "entries": count}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document) + "\n", encoding="utf-8")
    temporary.replace(path)


@audit_app.command("log")
def log(
    action: Annotated[
        str | None, typer.Option(help="Only this action, or a prefix ending in '*' (segment.*)")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only entries from then on (a date or time, local zone)")
    ] = None,
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="Only this workspace's entries")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="The newest N entries")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """List operation-log entries (who did what, when, from where), oldest first."""
    settings = load_settings()
    zone = ZoneInfo(settings.time_zone)
    with exit_on_error():
        start = None if since is None else parse_datetime(since, "since", settings.time_zone)
        with open_database(settings) as db, db.read() as conn:
            rows = _entries(conn, action, start, workspace, limit)
    if as_json:
        for row in rows:
            typer.echo(_json(row))  # plain: one line per entry, never wrapped
        return
    table = Table("at", "actor", "origin", "action", "workspace", "target", "details")
    for row in rows:
        at = row.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        details = json.dumps(row.details, ensure_ascii=False, sort_keys=True)
        table.add_row(at, row.actor, row.origin or "", row.action, row.slug or "",
                      row.target or "", details)  # fmt: skip
    console.print(table)


def _entries(
    conn: Connection, action: str | None, since: datetime | None, slug: str | None, limit: int
) -> list[Any]:
    log_ = operation_log
    query = sa.select(log_, workspaces.c.slug).select_from(
        log_.outerjoin(workspaces, workspaces.c.workspace_id == log_.c.workspace_id)
    )
    if action is not None and action.endswith("*"):
        query = query.where(log_.c.action.startswith(action[:-1], autoescape=True))
    elif action is not None:
        query = query.where(log_.c.action == action)
    if since is not None:
        query = query.where(log_.c.at >= since)
    if slug is not None:
        query = query.where(workspaces.c.slug == slug)
    newest = conn.execute(query.order_by(log_.c.entry_id.desc()).limit(limit)).all()
    return list(reversed(newest))


def _json(row: Any) -> str:
    document = {"entry_id": str(row.entry_id), "at": row.at.isoformat(), "actor": row.actor,
                "origin": row.origin, "action": row.action, "workspace": row.slug,
                "target": row.target, "details": row.details}  # fmt: skip
    return json.dumps(document, ensure_ascii=False)


def register(app: typer.Typer) -> None:
    """Add the ``audit`` group to ``app`` (safe to call twice)."""
    if any(group.typer_instance is audit_app for group in app.registered_groups):
        return
    app.add_typer(audit_app, name="audit")
