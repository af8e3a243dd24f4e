"""Core commands: init, serve, workspaces, keys, customers."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
import typer
from rich.table import Table

from kizuna.bootstrap import open_database
from kizuna.cli.app import WorkspaceOption, console, default_workspace, exit_on_error
from kizuna.config import DEFAULT_TIME_ZONE, load_settings
from kizuna.errors import NotFound
from kizuna.profiles import customer_profile, customer_timeline, profile_view
from kizuna.security.tokens import load_or_create_api_token
from kizuna.store import workspaces as ws_store
from kizuna.store.database import Database
from kizuna.worker import (
    start_attribution,
    start_background_refresh,
    start_campaign_sends,
    start_outbox_drain,
    start_segment_refresh,
)

__all__ = ["ensure_workspace_pair", "register"]

workspaces_app = typer.Typer(help="Create and list workspaces (one per brand and environment).")
keys_app = typer.Typer(
    help="Ingestion write keys (list, create, revoke) and the personal-data encryption key "
    "(rotate, status)."
)
customers_app = typer.Typer(help="Look up customers.")


def init(
    workspace: Annotated[
        str, typer.Option("--workspace", "-w", help="Slug of the first workspace")
    ] = "demo",
    time_zone: Annotated[str, typer.Option(help="The workspace's time zone")] = DEFAULT_TIME_ZONE,
) -> None:
    """Create the data directory, the encryption key, the schema and a first workspace pair."""
    settings = load_settings()
    with exit_on_error():
        open_database(settings).dispose()  # creates the data directory, key and schema
        token = load_or_create_api_token(settings.home, settings.api_token)
        created = ensure_workspace_pair(workspace, time_zone)
    console.print(f"Store: [bold]{_safe_url(settings.database_url)}[/bold]")
    console.print(f"Data directory: {settings.home} (encryption key and api.token inside)")
    for slug, key in created.items():
        console.print(f"Workspace [bold]{slug}[/bold] created, write key: [green]{key}[/green]")
    if not created:
        console.print(f"Workspace [bold]{workspace}[/bold] already exists.")
    console.print(f"API token: {token[:8]}… (full value in {settings.home / 'api.token'})")


def ensure_workspace_pair(slug: str, time_zone: str = DEFAULT_TIME_ZONE) -> dict[str, str]:
    """Create ``slug`` (production) and ``slug-dev`` (development) if missing; new keys by slug."""
    created: dict[str, str] = {}
    with open_database() as db, db.write() as conn:
        for env, name in (("production", slug), ("development", f"{slug}-dev")):
            try:
                ws_store.get_workspace(conn, name)
                continue
            except NotFound:
                pass
            ws = ws_store.create_workspace(
                conn, name, environment=env, brand=slug, time_zone=time_zone, now=db.clock.now()
            )
            created[name] = ws_store.create_write_key(
                conn, ws.workspace_id, "default", db.clock.now()
            )
    return created


def _safe_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    demo: Annotated[
        bool, typer.Option(help="Create and fill the demo shop first if empty")
    ] = False,
    demo_customers: Annotated[int, typer.Option(help="Customers in the demo shop")] = 10_000,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) on the configured store."""
    import uvicorn

    from kizuna.api import build_app

    settings = load_settings()
    with exit_on_error():
        if demo:
            _prepare_demo(demo_customers)
        db = open_database(settings)
        token = load_or_create_api_token(settings.home, settings.api_token)
    host, port = host or settings.host, port or settings.port
    console.print(f"Kizuna on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    console.print(f"Read API token: {settings.home / 'api.token'}")
    with db:
        stop = start_background_refresh(db, settings.metrics_refresh_hours)
        segments_stop = start_segment_refresh(db, settings.segment_refresh_minutes)
        outbox_stop = start_outbox_drain(db)
        from kizuna.scenarios.engine import start_scenario_engine

        scenarios_stop = start_scenario_engine(db)
        campaigns_stop = start_campaign_sends(db)
        attribution_stop = start_attribution(db)
        try:
            uvicorn.run(build_app(db, token), host=host, port=port, log_level="info")
        finally:
            attribution_stop.set()
            campaigns_stop.set()
            scenarios_stop.set()
            outbox_stop.set()
            segments_stop.set()
            if stop is not None:
                stop.set()


def worker(
    once: Annotated[
        bool, typer.Option(help="Do what is due once (refresh, drain, send), then exit (for cron)")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between checks")] = 60.0,
    drain: Annotated[
        float, typer.Option(help="Seconds between drains of the segment change queue")
    ] = 0.2,
) -> None:
    """Run the background work (metrics, segments, scenarios, the outbox) in the foreground."""
    from datetime import timedelta

    from kizuna.worker import MetricsRefresher

    settings = load_settings()
    with exit_on_error(), open_database(settings) as db:
        hours = settings.metrics_refresh_hours or 24.0
        refresher = MetricsRefresher(db, timedelta(hours=hours))
        if once:
            for slug, done in refresher.run_once().items():
                text = done if isinstance(done, str) else f"{done.customers:,} customers"
                console.print(f"{slug}: {text}")
            _segments_once(db, settings.segment_refresh_minutes)
            _scenarios_once(db)
            _campaigns_once(db)
            _outbox_once(db)
            _attribution_once(db)
            return
        minutes = settings.segment_refresh_minutes
        console.print(f"Refreshing customer metrics every {hours:g} h, segments reading the "
                      f"clock every {minutes:g} min (Ctrl-C stops)")  # fmt: skip
        stop = start_segment_refresh(db, minutes, drain)
        outbox_stop = start_outbox_drain(db)
        from kizuna.scenarios.engine import start_scenario_engine

        scenarios_stop = start_scenario_engine(db)
        campaigns_stop = start_campaign_sends(db)
        attribution_stop = start_attribution(db)
        try:
            refresher.run_until(stop, poll)
        except KeyboardInterrupt:
            stop.set()
            outbox_stop.set()
            scenarios_stop.set()
            campaigns_stop.set()
            attribution_stop.set()


def _scenarios_once(db: Database) -> None:
    """Move every scenario run that is due now, saying what happened."""
    from kizuna.scenarios.engine import ScenarioEngine

    done = ScenarioEngine(db).run_until_idle()
    console.print(f"scenarios: {done.entered:,} entered, {done.advanced:,} runs moved, "
                  f"{done.goals:,} reached their goal")  # fmt: skip


def _campaigns_once(db: Database) -> None:
    """Freeze and send every approved campaign that is due, saying how many."""
    from kizuna.campaigns.send import send_due_campaigns

    console.print(f"campaigns: {send_due_campaigns(db):,} sent")


def _attribution_once(db: Database) -> None:
    """Credit new orders to messages once, saying how many."""
    from kizuna.measurement.attribution import attribute

    done = attribute(db)
    console.print(f"attribution: {done.credited:,} orders credited to messages, "
                  f"{done.controls:,} control-group conversions")  # fmt: skip


def _outbox_once(db: Database) -> None:
    """Send every due message once, saying what became of them."""
    from kizuna.delivery.pipeline import Pipeline

    pipeline = Pipeline(db)
    try:
        report = pipeline.drain_all()
    finally:
        pipeline.close()
    outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(report.outcomes.items()))
    console.print(f"outbox: {report.claimed:,} messages" + (f" ({outcomes})" if outcomes else ""))


def _segments_once(db: Database, minutes: float) -> None:
    """Drain the segment queue and run the due segment refreshes once, saying what changed."""
    from datetime import timedelta

    from kizuna.worker import SegmentRefresher

    every = timedelta(minutes=minutes) if minutes > 0 else None
    drained, refreshed = SegmentRefresher(db, every).run_once()
    console.print(f"segment queue: {drained:,} changes")
    for done in refreshed:
        console.print(f"{done.workspace}/{done.key}: +{done.entered:,} -{done.exited:,}")


def _prepare_demo(customers: int) -> None:
    """Create the demo workspaces and fill ``demo`` once; a filled shop is left as it is."""
    from kizuna.demo import DemoOptions, generate_demo_data
    from kizuna.errors import Conflict

    created = ensure_workspace_pair("demo")
    for slug, key in created.items():
        console.print(f"Workspace [bold]{slug}[/bold] created, write key: [green]{key}[/green]")
    with open_database() as db:
        try:
            console.print(f"Generating a demo shop of {customers:,} customers …")
            summary = generate_demo_data(db, DemoOptions(customers=customers, workspace="demo"))
        except Conflict:
            console.print("The demo shop already has customers; serving it as it is.")
            return
    total = sum(summary.counts.values())
    console.print(f"Demo shop ready: {total:,} rows in {summary.seconds:.1f} s")


@workspaces_app.command("list")
def workspaces_list() -> None:
    """List workspaces."""
    with exit_on_error(), open_database() as db, db.read() as conn:
        rows = ws_store.list_workspaces(conn)
    table = Table("slug", "name", "environment", "brand", "time zone", "created (UTC)")
    for w in rows:
        table.add_row(
            w.slug,
            w.name,
            w.environment,
            w.brand,
            w.time_zone,
            w.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@workspaces_app.command("create")
def workspaces_create(
    slug: Annotated[str, typer.Argument(help="Lower-case letters, digits and '-'")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    environment: Annotated[str, typer.Option(help="production or development")] = "production",
    brand: Annotated[str | None, typer.Option(help="Brand grouping its environments")] = None,
    time_zone: Annotated[str, typer.Option(help="IANA time zone")] = DEFAULT_TIME_ZONE,
) -> None:
    """Create one workspace and print its first write key."""
    with exit_on_error(), open_database() as db, db.write() as conn:
        ws = ws_store.create_workspace(
            conn,
            slug,
            name=name,
            environment=environment,
            brand=brand,
            time_zone=time_zone,
            now=db.clock.now(),
        )
        key = ws_store.create_write_key(conn, ws.workspace_id, "default", db.clock.now())
    console.print(f"Workspace [bold]{ws.slug}[/bold] ({ws.environment}, {ws.time_zone})")
    console.print(f"Write key: [green]{key}[/green]  (shown once; only its hash is stored)")


@keys_app.command("list")
def keys_list(workspace: Annotated[str | None, WorkspaceOption] = None) -> None:
    """List a workspace's write keys (prefixes only)."""
    with exit_on_error(), open_database() as db, db.read() as conn:
        ws = ws_store.get_workspace(conn, workspace or default_workspace())
        keys = ws_store.list_write_keys(conn, ws.workspace_id)
    table = Table("prefix", "name", "created (UTC)", "revoked")
    for k in keys:
        table.add_row(
            k.prefix + "…",
            k.name,
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "",
        )
    console.print(table)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'shopify'")] = "default",
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Create a write key for the ingestion API and print it once."""
    with exit_on_error(), open_database() as db, db.write() as conn:
        ws = ws_store.get_workspace(conn, workspace or default_workspace())
        key = ws_store.create_write_key(conn, ws.workspace_id, name, db.clock.now())
    console.print(f"Write key for [bold]{ws.slug}[/bold]: [green]{key}[/green]")


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix as `keys list` shows it")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Revoke a write key; ingestion with it answers 401 from now on."""
    with exit_on_error(), open_database() as db, db.write() as conn:
        ws = ws_store.get_workspace(conn, workspace or default_workspace())
        count = ws_store.revoke_write_key(conn, ws.workspace_id, prefix, db.clock.now())
    console.print(f"Revoked {count} key(s) of {ws.slug}.")


@customers_app.command("show")
def customers_show(
    ref: Annotated[str, typer.Argument(help="Kizuna id, shop customer id, email or phone")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    reveal: Annotated[bool, typer.Option(help="Show personal data in clear")] = False,
    limit: Annotated[int, typer.Option(help="Timeline entries to show")] = 30,
) -> None:
    """Show a customer's profile with the timeline of events, orders and consent."""
    from kizuna.cli.profile_view import render_profile

    with exit_on_error(), open_database() as db:
        slug = workspace or default_workspace()
        ws, profile = customer_profile(db, slug, ref)
        _, customer_id, entries = customer_timeline(db, slug, ref, limit)
        if reveal:  # every clear view of personal data is logged (by id, never the ref)
            from kizuna.security.access import log_event
            from kizuna.store.operation_log import Actor

            with db.write() as conn:
                log_event(conn, db.clock.now(), Actor.os_user("cli"), "customer.reveal",
                          workspace_id=ws.workspace_id, target=str(customer_id))  # fmt: skip
    render_profile(console, ws, profile_view(profile, reveal=reveal), entries)


def register(app: typer.Typer) -> None:
    """Add the core commands to ``app``."""
    app.command()(init)
    app.command()(serve)
    app.command()(worker)
    app.add_typer(workspaces_app, name="workspaces")
    app.add_typer(keys_app, name="keys")
    app.add_typer(customers_app, name="customers")
