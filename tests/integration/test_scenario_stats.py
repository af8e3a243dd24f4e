"""Per-node statistics of a scenario driven by the engine: Python, HTTP and CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.api import build_app, scenario_reports
from kizuna.cli.journeys_reports import add_report_commands
from kizuna.delivery.settings import save_delivery_settings
from kizuna.domain.records import ConsentRecord
from kizuna.errors import NotFound
from kizuna.scenarios.definition import ScenarioSpec
from kizuna.scenarios.stats import node_stats
from kizuna.store.consent import record_consents
from kizuna.store.identity import IdentityResolver
from kizuna.store.scenarios import save_scenario
from tests.delivery.test_tracking import SETTINGS
from tests.integration.scenario_shop import build_shop, later, publish, run_engine, runs, track

AUTH = {"Authorization": "Bearer test-token"}

CART = {
    "key": "cart", "name": "カゴ落ち",
    "trigger": {"type": "event", "event": "Checkout Started",
                "where": [{"property": "value", "op": "gte", "value": 5000}]},
    "entry": {"reentry": "every_time", "key_property": "cart_id"},
    "goal": {"event": "Order Completed"},
    "start": "wait-1h",
    "nodes": [
        {"id": "wait-1h", "type": "wait", "duration": {"hours": 1}, "next": "has-line"},
        {"id": "has-line", "type": "branch", "condition": {"type": "channel", "channel": "line"},
         "yes": "remind-line", "no": "remind"},
        {"id": "remind-line", "type": "send", "channel": "line", "template": "cart-line"},
        {"id": "remind", "type": "send", "channel": "email", "template": "cart-reminder",
         "next": "wait-24h"},
        {"id": "wait-24h", "type": "wait", "duration": {"hours": 24}, "next": "again"},
        {"id": "again", "type": "send", "channel": "email", "template": "cart-reminder",
         "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}  # fmt: skip


def _checkout(db, workspace, i: int, value: int = 8000) -> None:
    track(db, workspace, f"c{i}@example.jp", "Checkout Started",
          {"value": value, "cart_id": f"cart-{i}"})  # fmt: skip


def _opt_out(scope_factory, clock, email: str) -> None:
    with scope_factory() as scope:
        record_consents(scope, IdentityResolver(scope), [ConsentRecord(
            customer={"email": email}, channel="email", status="opted_out",
            occurred_at=clock.now(), method="preference centre")])  # fmt: skip


@pytest.fixture
def driven(db, workspace, scope_factory, clock):
    """The cart scenario after five customers went through it (see the test for each path)."""
    build_shop(scope_factory, clock, customers=6)
    publish(scope_factory, CART)
    for i in (0, 1, 2, 3):
        _checkout(db, workspace, i)
    _checkout(db, workspace, 4, value=3000)  # below the trigger's filter: never enters
    run_engine(db)
    _opt_out(scope_factory, clock, "c3@example.jp")
    later(db, clock, timedelta(hours=2))  # c0 (LINE) is sent to and done; c1, c2 wait 24 h
    track(db, workspace, "c1@example.jp", "Order Completed", {"order_id": "O-1", "total": 8000})
    later(db, clock, timedelta(hours=25))  # c2 gets the second reminder and exits
    _checkout(db, workspace, 5)  # c5 enters last and waits its first hour
    run_engine(db)


def test_per_node_counts_and_totals(driven, scope_factory):
    with scope_factory() as scope:
        stats = node_stats(scope, "cart")
    got = {n.node_id: n for n in stats.nodes}
    assert [n.node_id for n in stats.nodes] == [n["id"] for n in CART["nodes"]]
    wait = got["wait-1h"]
    assert (wait.type, wait.entered, wait.waiting, wait.passed, wait.exited) == ("wait", 5, 1, 4, 0)
    branch = got["has-line"]
    assert (branch.entered, branch.passed, branch.paths) == (4, 4, {"yes": 1, "no": 3})
    line = got["remind-line"]
    assert (line.entered, line.sent, line.channels, line.templates) == (
        1, 1, {"line": 1}, {"cart-line": 1})  # fmt: skip
    remind = got["remind"]
    assert (remind.entered, remind.sent, remind.exited, remind.exits) == (
        3, 2, 1, {"opted_out": 1})  # fmt: skip
    assert remind.channels == {"email": 2} and remind.templates == {"cart-reminder": 2}
    second = got["wait-24h"]
    assert (second.entered, second.waiting, second.passed, second.exits) == (2, 0, 1, {"goal": 1})
    assert (got["again"].entered, got["again"].sent) == (1, 1)
    assert (got["done"].entered, got["done"].exits) == (1, {"exit_node": 1})
    assert all(n.skipped == 0 for n in stats.nodes)
    t = stats.totals
    assert (t.entered, t.held_out, t.active, t.completed, t.exited) == (5, 0, 1, 3, 1)
    assert t.exits == {"completed": 1, "goal": 1, "exit_node": 1, "opted_out": 1}
    assert (t.goals, t.conversion_rate) == (1, pytest.approx(0.2))
    assert (t.sent, t.channels) == (4, {"line": 1, "email": 3})


def test_the_frame_has_a_row_per_node_and_a_column_per_reason(driven, scope_factory):
    with scope_factory() as scope:
        frame = node_stats(scope, "cart").frame().set_index("node")
    assert list(frame.index) == [n["id"] for n in CART["nodes"]]
    assert frame.loc["remind", "exited:opted_out"] == 1
    assert frame.loc["wait-24h", "exited:goal"] == 1
    assert frame.loc["has-line", "path:no"] == 3
    assert frame.loc["again", "template:cart-reminder"] == 1
    assert frame.loc["wait-1h", "exited:goal"] == 0  # absent reasons are zero, not missing
    assert int(frame["sent"].sum()) == 4


def test_versions_are_counted_apart_and_together(db, workspace, scope_factory, clock):
    build_shop(scope_factory, clock, customers=3)
    simple = {
        **CART,
        "start": "remind",
        "nodes": [
            {"id": "remind", "type": "send", "channel": "email", "template": "cart-reminder"}
        ],
    }
    publish(scope_factory, simple)
    _checkout(db, workspace, 1)
    run_engine(db)
    by_line = {
        **simple,
        "nodes": [{"id": "remind", "type": "send", "channel": "line", "template": "cart-line"}],
    }
    publish(scope_factory, by_line)  # version 2: the same node now sends on LINE
    _checkout(db, workspace, 0)
    run_engine(db)
    with scope_factory() as scope:
        every = node_stats(scope, "cart").node("remind")
        first = node_stats(scope, "cart", version=1).node("remind")
        second = node_stats(scope, "cart", version=2).node("remind")
        with pytest.raises(NotFound):
            node_stats(scope, "cart", version=3)
        with pytest.raises(NotFound):
            node_stats(scope, "nope")
    assert (every.sent, every.channels) == (2, {"email": 1, "line": 1})
    assert (first.sent, first.channels, first.templates) == (1, {"email": 1}, {"cart-reminder": 1})
    assert (second.sent, second.channels) == (1, {"line": 1})


def test_a_draft_never_published_has_its_nodes_at_zero(scope_factory, clock):
    build_shop(scope_factory, clock, customers=1)
    with scope_factory() as scope:
        save_scenario(scope, ScenarioSpec.model_validate(CART), "test")
        stats = node_stats(scope, "cart")
    assert [n.entered for n in stats.nodes] == [0] * len(CART["nodes"])
    assert stats.totals.entered == 0 and stats.totals.conversion_rate is None


def test_held_out_customers_are_totals_not_node_visits(db, workspace, scope_factory, clock):
    build_shop(scope_factory, clock, customers=30)
    with scope_factory() as scope:
        control = SETTINGS.model_copy(update={"global_control_percent": 10})
        save_delivery_settings(scope.conn, scope.workspace_id, control)
    publish(scope_factory, {**CART, "holdout_percent": 30})
    for i in range(30):
        _checkout(db, workspace, i)
    run_engine(db)
    found = runs(db)
    held = [r for r in found if r["held_out"]]
    with scope_factory() as scope:
        stats = node_stats(scope, "cart")
    t = stats.totals
    assert t.held_out == len(held) and t.held_out > 0
    assert t.holdout == sum(r["exit_reason"] == "holdout" for r in held)
    assert t.global_control == sum(r["exit_reason"] == "global_control" for r in held)
    assert t.entered == t.active == 30 - len(held)
    wait = stats.node("wait-1h")
    assert wait.entered == wait.waiting == 30 - len(held)
    assert "holdout" not in t.exits and "global_control" not in t.exits


# --- HTTP and CLI -------------------------------------------------------------------------


def _app(db):
    app = build_app(db, "test-token")
    if not any(getattr(r, "path", "").endswith("/{key}/stats") for r in app.routes):
        app.include_router(scenario_reports.router)  # until the app includes it itself
    return app


def test_http_stats(driven, db):
    with TestClient(_app(db)) as http:
        answer = http.get("/api/workspaces/shop/scenarios/cart/stats", headers=AUTH)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["key"] == "cart" and body["version"] is None
        assert body["totals"]["entered"] == 5 and body["totals"]["goals"] == 1
        nodes = {n["node_id"]: n for n in body["nodes"]}
        assert nodes["remind"]["exits"] == {"opted_out": 1}
        assert nodes["has-line"]["paths"] == {"yes": 1, "no": 3}
        one = http.get("/api/workspaces/shop/scenarios/cart/stats?version=1", headers=AUTH)
        assert one.json()["version"] == 1
        assert http.get("/api/workspaces/shop/scenarios/cart/stats?version=9",
                        headers=AUTH).status_code == 404  # fmt: skip
        assert http.get("/api/workspaces/shop/scenarios/nope/stats",
                        headers=AUTH).status_code == 404  # fmt: skip
        assert http.get("/api/workspaces/shop/scenarios/cart/stats").status_code == 401


def _cli() -> typer.Typer:
    journeys = typer.Typer()
    add_report_commands(journeys)
    return journeys


def test_cli_stats(driven, cli_env):
    result = CliRunner().invoke(_cli(), ["stats", "cart", "-w", "shop"])
    assert result.exit_code == 0, result.output
    assert "到達" in result.output and "entered" in result.output
    assert "opted_out 1" in result.output and "goal 1" in result.output
    assert "20.0%" in result.output  # the conversion rate
    missing = CliRunner().invoke(_cli(), ["stats", "nope", "-w", "shop"])
    assert missing.exit_code == 1 and "nope" in missing.output
