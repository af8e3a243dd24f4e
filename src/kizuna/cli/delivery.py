"""``kizuna delivery …``: providers, delivery rules, seed addresses, sending and the message log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kizuna.bootstrap import open_database
from kizuna.cli.app import WorkspaceOption, console, default_workspace, exit_on_error
from kizuna.delivery.pipeline import Pipeline
from kizuna.delivery.settings import (
    load_delivery_settings,
    parse_delivery_settings,
    save_delivery_settings,
)
from kizuna.delivery.test_sends import queue_test_send
from kizuna.errors import InvalidInput, Problem
from kizuna.security.masking import mask_email, mask_phone
from kizuna.segments.report import workspace_scope
from kizuna.store.messages import SendIntent, enqueue, list_messages
from kizuna.store.profiles import find_customer_id
from kizuna.store.providers import configure_provider, list_providers
from kizuna.store.seed_addresses import add_seed_address, list_seed_addresses
from kizuna.store.workspaces import get_workspace

__all__ = ["register"]

delivery_app = typer.Typer(
    help="Delivery: providers, rules (caps, quiet hours, footer), seed addresses, sending.",
    no_args_is_help=True,
)
Pairs = Annotated[list[str] | None, typer.Option(help="KEY=VALUE (repeatable; JSON values ok)")]


def _workspace(workspace: str | None) -> str:
    return workspace or default_workspace()


def _pairs(items: list[str] | None, option: str) -> dict[str, Any]:
    """``KEY=VALUE`` options as a dict; values that parse as JSON become numbers, booleans …."""
    found: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(Problem("bad_option", f"expected KEY=VALUE, got {item!r}", option))
        try:
            found[key] = json.loads(value)
        except ValueError:
            found[key] = value
    return found


@delivery_app.command("settings")
def settings_command(
    file: Annotated[Path | None, typer.Argument(help="YAML/JSON delivery rules to set")] = None,
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Show the delivery rules, or replace them with FILE (caps, quiet hours, sender, topics)."""
    with exit_on_error(), open_database() as db:
        if file is not None:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
            parsed = parse_delivery_settings(data)
            with workspace_scope(db, _workspace(workspace), write=True) as scope:
                save_delivery_settings(scope.conn, scope.workspace_id, parsed)
        with workspace_scope(db, _workspace(workspace)) as scope:
            current = load_delivery_settings(scope.conn, scope.workspace_id)
    console.print_json(current.model_dump_json())


@delivery_app.command("providers")
def providers_command(workspace: Annotated[str | None, WorkspaceOption] = None) -> None:
    """List each channel's provider and health (secrets are never shown)."""
    with exit_on_error(), open_database() as db, workspace_scope(db, _workspace(workspace)) as s:
        rows = list_providers(s.conn, s.workspace_id)
    table = Table("channel", "provider", "settings", "errors", "paused until", title="Providers")
    for r in rows:
        table.add_row(r["channel"], r["provider"], json.dumps(r["settings"], ensure_ascii=False),
                      str(r["error_streak"]), str(r["paused_until"] or "—"))  # fmt: skip
    console.print(table if rows else "No providers yet (kizuna delivery provider CHANNEL NAME).")


@delivery_app.command("provider")
def provider_command(
    channel: Annotated[str, typer.Argument(help="email, line, sms, push or webhook")],
    provider: Annotated[str, typer.Argument(help="smtp, line, twilio, fcm, webhook or null")],
    setting: Pairs = None,
    secret: Pairs = None,
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Point CHANNEL at PROVIDER (``email smtp --setting host=… --secret password=…``)."""
    with exit_on_error(), open_database() as db:
        settings, secrets = _pairs(setting, "--setting"), _pairs(secret, "--secret")
        with workspace_scope(db, _workspace(workspace), write=True) as scope:
            configure_provider(scope, channel, provider, settings, secrets)
    console.print(f"{channel} → {provider} ({len(secrets)} secrets stored encrypted)")


@delivery_app.command("seed")
def seed_command(
    channel: Annotated[str, typer.Argument(help="email, line, sms or push")],
    address: Annotated[str, typer.Argument(help="The test recipient's address")],
    label: Annotated[str | None, typer.Option(help="Who it is")] = None,
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Add a seed address: test sends go there; a development workspace sends only there."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        add_seed_address(scope, channel, address, label)
    console.print(f"Seed {channel} address added ({_mask(channel, address)}).")


@delivery_app.command("seeds")
def seeds_command(workspace: Annotated[str | None, WorkspaceOption] = None) -> None:
    """List seed addresses (masked)."""
    with exit_on_error(), open_database() as db, workspace_scope(db, _workspace(workspace)) as s:
        seeds = list_seed_addresses(s)
    table = Table("channel", "address", "label", title="Seed addresses")
    for seed in seeds:
        table.add_row(seed.channel, _mask(seed.channel, seed.address), seed.label or "")
    console.print(table if seeds else "No seed addresses yet (kizuna delivery seed CHANNEL ADDR).")


def _mask(channel: str, address: str) -> str:
    if channel == "email":
        return mask_email(address)
    return mask_phone(address) if channel == "sms" else address[:4] + "…"


@delivery_app.command("send")
def send_command(
    customer: Annotated[str, typer.Argument(help="Kizuna id, shop customer id, email or phone")],
    template: Annotated[str, typer.Argument(help="The template's key")],
    channel: Annotated[str, typer.Option(help="email, line, sms, push or webhook")] = "email",
    key: Annotated[str | None, typer.Option(help="Idempotency key [default: new]")] = None,
    marketing: Annotated[bool, typer.Option(help="Marketing (consent, caps) or not")] = False,
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Queue one message to one customer (sent by the next drain: ``kizuna delivery drain``)."""
    import uuid

    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        customer_id = find_customer_id(scope.conn, scope.cipher, scope.workspace_id, customer)
        intent = SendIntent(customer_id, channel, template, key or f"cli:{uuid.uuid4()}",
                            purpose="marketing" if marketing else "transactional")  # fmt: skip
        (message_id,) = enqueue(scope, [intent])
    console.print(f"Queued message {message_id}.")


@delivery_app.command("test-send")
def test_send_command(
    template: Annotated[str, typer.Argument(help="The template's key")],
    customer: Annotated[str, typer.Option(help="Render for this customer (id, shop id, email)")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Send TEMPLATE, rendered for CUSTOMER, to every seed address of its channel."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        customer_id = find_customer_id(scope.conn, scope.cipher, scope.workspace_id, customer)
        queued = queue_test_send(scope, template, customer_id)
    console.print(f"Queued {len(queued)} test messages (sent by the next drain).")


@delivery_app.command("drain")
def drain_command() -> None:
    """Send every due message now (what the worker does continuously), with progress."""
    with exit_on_error(), open_database() as db:
        pipeline = Pipeline(db)
        columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        total: dict[str, int] = {}
        try:
            with Progress(*columns, console=console, transient=True) as progress:
                task = progress.add_task("drain", total=None)
                while True:
                    report = pipeline.drain()
                    for k, v in report.outcomes.items():
                        total[k] = total.get(k, 0) + v
                    progress.advance(task, report.claimed)
                    if report.claimed < pipeline.batch_size:
                        break
        finally:
            pipeline.close()
    summary = ", ".join(f"{k} {v:,}" for k, v in sorted(total.items())) or "nothing was due"
    console.print(f"Outbox drained: {summary}.")


@delivery_app.command("messages")
def messages_command(
    status: Annotated[str | None, typer.Option(help="e.g. sent, skipped, failed, dead")] = None,
    customer: Annotated[str | None, typer.Option(help="id, shop id, email or phone")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 30,
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """The message log: status and the reason a message was skipped or failed."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug) as scope:
        zone = ZoneInfo(get_workspace(scope.conn, slug).time_zone)
        customer_id = (
            find_customer_id(scope.conn, scope.cipher, scope.workspace_id, customer)
            if customer
            else None
        )
        found = list_messages(scope, status=status, customer_id=customer_id, limit=limit)
    table = Table("created", "channel", "template", "source", "status", "reason", title="Messages")
    for m in found:
        table.add_row(m.created_at.astimezone(zone).strftime("%m-%d %H:%M"), m.channel,
                      m.template_key or "—", m.source_kind, m.status, m.reason or "")  # fmt: skip
    console.print(table if found else "No messages.")


def register(app: typer.Typer) -> None:
    """Add ``kizuna delivery`` to ``app``."""
    app.add_typer(delivery_app, name="delivery")
