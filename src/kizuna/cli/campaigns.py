"""``kizuna campaigns …``: save, check, test-send, submit, approve, cancel and list campaigns.

Definitions are YAML or JSON files (by suffix; see ``examples/campaigns/``); a
problem in a file is reported with the file's name, the line and the field's path
(``variants[1].template``). Submitting, approving and cancelling are logged under
the OS account running the CLI. Approved campaigns are sent by the worker when due
(``kizuna worker``, or ``kizuna worker --once``).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import typer
import yaml
from rich.table import Table

from kizuna.bootstrap import open_database
from kizuna.campaigns.definition import CampaignSpec, campaign_schema, load_campaign_text
from kizuna.campaigns.flow import (
    approve_campaign,
    cancel_campaign,
    check_campaign,
    queue_campaign_test_send,
    recipient_counts,
    submit_campaign,
)
from kizuna.cli.app import (
    WorkspaceOption,
    console,
    default_workspace,
    exit_on_error,
    file_errors,
)
from kizuna.documents import read_text
from kizuna.segments.report import workspace_scope
from kizuna.store.campaigns import SavedCampaign, get_campaign, list_campaigns, save_campaign
from kizuna.store.operation_log import Actor
from kizuna.store.profiles import find_customer_id
from kizuna.store.workspaces import get_workspace

__all__ = ["campaigns_app", "read_campaign_file", "register"]

campaigns_app = typer.Typer(
    help="One-shot campaigns / キャンペーン: save, check, test-send, submit, approve, cancel.",
    no_args_is_help=True,
)
KeyArgument = typer.Argument(help="The campaign's key")
FileArgument = typer.Argument(help="A campaign definition, .yaml/.yml or .json")
STATUS_JA = {"draft": "下書き", "awaiting_approval": "承認待ち", "approved": "承認済み",
             "scheduled": "配信予定", "sending": "配信中", "sent": "配信済み",
             "cancelled": "中止"}  # fmt: skip
SEVERITY = {
    "refusal": "[red]refused / 配信不可[/red]",
    "warning": "[yellow]warning / 注意[/yellow]",
}


def read_campaign_file(path: Path) -> CampaignSpec:
    """Load a definition file; ``InvalidInput`` whose problems name the file's lines."""
    fmt: Literal["yaml", "json"] = "json" if path.suffix.lower() == ".json" else "yaml"
    return load_campaign_text(read_text(path), fmt)


def _workspace(workspace: str | None) -> str:
    return workspace or default_workspace()


def _actor() -> Actor:
    return Actor.os_user("cli")


def _status(status: str) -> str:
    return f"{status} / {STATUS_JA.get(status, status)}"


def _print_checks(checks: dict[str, Any]) -> None:
    """Print a check result as stored (``CheckReport.document()``)."""
    console.print(f"Members / 対象者: {checks['members']:,}  reachable / 到達可能: "
                  f"{checks['reachable']:,}  treatment / 配信群: {checks['treatment']:,}  "
                  f"control / コントロール群: {checks['control']:,}")  # fmt: skip
    if not checks["findings"]:
        console.print("[green]All checks passed / すべてのチェックを通過しました[/green]")
        return
    table = Table(title="Pre-send checks / 配信前チェック")
    for header in ("check", "result / 結果", "number / 数値", "message / 内容"):
        table.add_column(header, no_wrap=header == "check")
    for f in checks["findings"]:
        number = "" if f["number"] is None else f"{f['number']:,.4g}"
        table.add_row(f["code"], SEVERITY[f["severity"]], number,
                      f"{f['message_ja']}\n{f['message']}")  # fmt: skip
    console.print(table)


@campaigns_app.command("list")
def list_command(workspace: Annotated[str | None, WorkspaceOption] = None) -> None:
    """List the workspace's campaigns, newest first."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug) as scope:
        saved = list_campaigns(scope)
        zone = ZoneInfo(get_workspace(scope.conn, scope.workspace_id).time_zone)
    table = Table(title="Campaigns / キャンペーン (newest first)")
    headers = ("key", "name / 名前", "status / 状態", "send at / 配信日時", "targeted / 対象",
               "held out / 除外")  # fmt: skip
    for header in headers:
        table.add_column(header, no_wrap=header in ("key", "status / 状態"))
    for c in saved:
        when = c.send_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if c.send_at else ""
        table.add_row(c.key, c.name, _status(c.status), when,
                      "" if c.targeted is None else f"{c.targeted:,}",
                      "" if c.held_out is None else f"{c.held_out:,}")  # fmt: skip
    console.print(table if saved else "No campaigns yet (kizuna campaigns save FILE.yaml).")


@campaigns_app.command("save")
def save_command(
    file: Annotated[Path, FileArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Save the campaign in FILE as a draft (a submitted one goes back to draft)."""
    slug = _workspace(workspace)
    with exit_on_error(), file_errors(file), open_database() as db:
        spec = read_campaign_file(file)
        with workspace_scope(db, slug, write=True) as scope:
            saved = save_campaign(scope, spec, _actor().name)
    console.print(f"Saved campaign [bold]{saved.key}[/bold] ({saved.name}) in {slug}: "
                  f"{_status(saved.status)}. Next: kizuna campaigns check {saved.key}")  # fmt: skip


def _show(saved: SavedCampaign, zone: ZoneInfo, counts: list[dict[str, Any]]) -> None:
    console.print(f"[bold]{saved.key}[/bold] — {saved.name}  ({_status(saved.status)})")
    console.print(f"Created by {saved.created_by}; submitted by {saved.submitted_by or '-'}; "
                  f"approved by {saved.approved_by or '-'}")  # fmt: skip
    if saved.send_at:
        console.print(f"Send at / 配信日時: {saved.send_at.astimezone(zone):%Y-%m-%d %H:%M %Z}")
    if counts:
        table = Table(title="Frozen audience / 確定した配信対象")
        for header in ("group / 群", "variant", "customers / 人数", "messages / 通数"):
            table.add_column(header)
        for c in counts:
            group = (
                "treatment / 配信群" if c["group"] == "treatment" else "control / コントロール群"
            )
            table.add_row(group, str(c["variant"] or ""), f"{c['customers']:,}",
                          f"{c['messages']:,}")  # fmt: skip
        console.print(table)
    if saved.checks:
        console.print(f"Last checked / 最終チェック: {saved.checks['checked_at']}")
        _print_checks(saved.checks)
    document = saved.spec.model_dump(mode="json", exclude_defaults=True)
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    console.print(text, highlight=False, markup=False, soft_wrap=True)


@campaigns_app.command("show")
def show_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Show a campaign's status, schedule, frozen audience and definition."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug) as scope:
        saved = get_campaign(scope, key)
        zone = ZoneInfo(get_workspace(scope.conn, scope.workspace_id).time_zone)
        counts = recipient_counts(scope, key)
    _show(saved, zone, counts)


@campaigns_app.command("check")
def check_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Run the pre-send checks now (exit 1 when a check refuses the send)."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        report = check_campaign(scope, key)
    _print_checks(report.document())
    if report.refused:
        raise typer.Exit(1)


@campaigns_app.command("test-send")
def test_send_command(
    key: Annotated[str, KeyArgument],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    variant: Annotated[str | None, typer.Option(help="Only this variant [default: all]")] = None,
    customer: Annotated[
        str | None,
        typer.Option(
            help="Render for this customer (id, shop id, email) [default: the "
            "segment's first member]"
        ),
    ] = None,
) -> None:
    """Send the variants to the seed list (kizuna delivery seed …), rendered for a customer."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        who: uuid.UUID | None = None
        if customer:
            who = find_customer_id(scope.conn, scope.cipher, scope.workspace_id, customer)
        sent = queue_campaign_test_send(scope, key, variant=variant, customer_id=who)
    for name, ids in sent.items():
        console.print(
            f"Variant {name}: {len(ids)} test message(s) queued / テスト配信を登録しました"
        )


@campaigns_app.command("submit")
def submit_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Ask for approval (the checks run first; a refusal stops it)."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        report = submit_campaign(scope, key, _actor())
    _print_checks(report.document())
    console.print(f"Submitted {key} for approval / 承認待ちにしました: "
                  f"kizuna campaigns approve {key}")  # fmt: skip


@campaigns_app.command("approve")
def approve_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Approve the production send: checks again, then schedules it."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        saved = approve_campaign(scope, key, _actor())
        zone = ZoneInfo(get_workspace(scope.conn, scope.workspace_id).time_zone)
    when = saved.send_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if saved.send_at else ""
    console.print(f"Approved {key}: it sends at {when} / 承認しました: {when} に配信します")


@campaigns_app.command("cancel")
def cancel_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Cancel a campaign that has not been sent."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        cancel_campaign(scope, key, _actor())
    console.print(f"Cancelled {key} / 中止しました")


@campaigns_app.command("schema")
def schema_command(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file")] = None,
) -> None:
    """Print the JSON Schema of a campaign definition (for editors and validators)."""
    text = json.dumps(campaign_schema(), ensure_ascii=False, indent=2)
    if out is None:
        console.print_json(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        console.print(f"Wrote the schema to {out}")


def register(app: typer.Typer) -> None:
    """Add ``kizuna campaigns`` to ``app``."""
    app.add_typer(campaigns_app, name="campaigns")
