"""Saved scenarios: drafts, versions, publishing, pausing, archiving; the HTTP API and the CLI."""

from __future__ import annotations

import copy
import getpass
import json
import threading

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.api import build_app
from kizuna.api.scenarios import router
from kizuna.cli import app
from kizuna.cli.journeys import register
from kizuna.content.library import save_template
from kizuna.content.spec import parse_template_spec
from kizuna.errors import Conflict, InvalidInput, NotFound
from kizuna.scenarios.checks import parse_scenario
from kizuna.store.operation_log import Actor, verify_log
from kizuna.store.scenarios import (
    archive_scenario,
    get_scenario,
    get_version,
    list_scenarios,
    live_scenarios,
    pause_scenario,
    publish_scenario,
    resume_scenario,
    save_scenario,
)
from kizuna.store.scope import Scope
from kizuna.store.tables import operation_log
from kizuna.store.templates import archive_template
from kizuna.store.workspaces import create_workspace

ACTOR = Actor("hanako", "test")
AUTH = {"Authorization": "Bearer test-token"}
BASE = "/api/workspaces/shop/scenarios"
CART = {
    "key": "cart-abandonment",
    "name": "カゴ落ちリマインド",
    "priority": 10,
    "trigger": {"type": "event", "event": "Checkout Started"},
    "goal": {"event": "Order Completed"},
    "start": "wait-1h",
    "nodes": [
        {"id": "wait-1h", "type": "wait", "duration": {"hours": 1}, "next": "remind"},
        {"id": "remind", "type": "send", "channel": "email", "template": "cart-reminder",
         "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}  # fmt: skip
CART_YAML = """\
key: cart-abandonment
name: カゴ落ちリマインド
trigger: {type: event, event: Checkout Started}
start: wait-1h
nodes:
  - {id: wait-1h, type: wait, duration: {hours: 1}, next: remind}
  - id: remind
    type: send
    channel: email
    template: cart-reminder
    next: done
  - {id: done, type: exit}
"""


def _edited(**node_changes: object) -> dict[str, object]:
    data = copy.deepcopy(CART)
    data["nodes"][0].update(node_changes)  # type: ignore[index]
    return data


@pytest.fixture
def shop(scope_factory):
    with scope_factory() as scope:
        for template in (
            {"key": "cart-reminder", "channel": "email", "name": "カゴ落ち",
             "subject": "カートに商品が残っています",
             "body": "{{ last_name | default('お客') }}様"},
            {"key": "cart-line", "channel": "line", "name": "カゴ落ちLINE",
             "body": "カートをご確認ください"},
        ):  # fmt: skip
            save_template(scope, parse_template_spec(template), "test")


def _log(db):
    with db.read() as conn:
        assert verify_log(conn) == []
        return conn.execute(sa.select(operation_log).order_by(operation_log.c.entry_id)).all()


# --- The store ----------------------------------------------------------------------------


def test_save_creates_a_draft_and_replaces_it_by_key(scope_factory, shop):
    with scope_factory() as scope:
        saved = save_scenario(scope, parse_scenario(CART), "hanako")
        assert (saved.status, saved.live_version, saved.changed) == ("draft", None, True)
        assert saved.draft == parse_scenario(CART) and saved.created_by == "hanako"
        again = save_scenario(scope, parse_scenario({**CART, "name": "カゴ落ち v2"}), "taro")
        assert again.scenario_id == saved.scenario_id and again.name == "カゴ落ち v2"
        assert again.created_by == "hanako" and again.versions == ()
        assert [s.key for s in list_scenarios(scope)] == ["cart-abandonment"]
        assert live_scenarios(scope.conn, scope.workspace_id) == []


def test_a_bad_definition_is_refused_at_save_with_the_node_and_reason(scope_factory, shop):
    bad = copy.deepcopy(CART)
    bad["nodes"][1]["template"] = "cart-line"  # a LINE template on an email node
    bad["nodes"].append({"id": "orphan", "type": "exit"})
    with scope_factory() as scope, pytest.raises(InvalidInput) as caught:
        save_scenario(scope, parse_scenario(bad), "hanako")
    assert [(p.code, p.field) for p in caught.value.problems] == [
        ("unreachable_node", "nodes.orphan"),
        ("template_channel", "nodes.remind.template"),
    ]
    with scope_factory() as scope, pytest.raises(NotFound):
        get_scenario(scope, "cart-abandonment")


def test_publishing_makes_versions_and_running_customers_keep_theirs(scope_factory, shop):
    with scope_factory() as scope:
        save_scenario(scope, parse_scenario(CART), "hanako")
        assert publish_scenario(scope, "cart-abandonment", ACTOR) == 1
        (live,) = live_scenarios(scope.conn, scope.workspace_id)
        assert (live.key, live.version, live.priority) == ("cart-abandonment", 1, 10)
        assert live.spec == parse_scenario(CART)
        edited = parse_scenario(_edited(duration={"hours": 2}))
        saved = save_scenario(scope, edited, "hanako")
        assert (saved.status, saved.live_version, saved.changed) == ("live", 1, True)
        assert live_scenarios(scope.conn, scope.workspace_id)[0].version == 1  # until published
        assert publish_scenario(scope, "cart-abandonment", ACTOR) == 2
        assert publish_scenario(scope, "cart-abandonment", ACTOR) == 2  # nothing new to publish
        one = get_version(scope.conn, scope.workspace_id, live.scenario_id, 1)
        two = get_version(scope.conn, scope.workspace_id, live.scenario_id, 2)
        assert one.nodes[0].duration.hours == 1 and two.nodes[0].duration.hours == 2
        assert live_scenarios(scope.conn, scope.workspace_id)[0].spec == two
        current = get_scenario(scope, "cart-abandonment")
        assert [v.version for v in current.versions] == [1, 2] and not current.changed
        assert {v.published_by for v in current.versions} == {"hanako"}
        with pytest.raises(NotFound):
            get_version(scope.conn, scope.workspace_id, live.scenario_id, 3)


def test_two_publishers_at_once_make_one_version(db, scope_factory, shop):
    with scope_factory() as scope:
        saved = save_scenario(scope, parse_scenario(CART), "hanako")
        workspace_id = scope.workspace_id
    start, results, errors = threading.Barrier(2), [], []

    def publish() -> None:
        try:
            with db.write() as conn:
                scope = Scope(conn, db.cipher, workspace_id, db.clock.now())
                if conn.dialect.name == "postgresql":
                    start.wait()  # both transactions open (SQLite lets one writer in at a time)
                results.append(publish_scenario(scope, "cart-abandonment", ACTOR))
        except Exception as exc:  # reported below; a thread cannot raise into the test
            errors.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [1, 1]
    with scope_factory() as scope:
        assert [v.version for v in get_scenario(scope, "cart-abandonment").versions] == [1]
        assert get_scenario(scope, "cart-abandonment").scenario_id == saved.scenario_id


def test_publish_checks_the_draft_again(scope_factory, shop):
    with scope_factory() as scope:
        save_scenario(scope, parse_scenario(CART), "hanako")
        archive_template(scope, "cart-reminder")
        with pytest.raises(InvalidInput) as caught:
            publish_scenario(scope, "cart-abandonment", ACTOR)
    assert caught.value.problems[0].field == "nodes.remind.template"


def test_pause_resume_archive_and_the_operation_log(db, scope_factory, shop):
    with scope_factory() as scope:
        first = save_scenario(scope, parse_scenario(CART), "hanako")
        with pytest.raises(Conflict):
            pause_scenario(scope, "cart-abandonment", ACTOR)  # a draft does not run
        publish_scenario(scope, "cart-abandonment", ACTOR)
        pause_scenario(scope, "cart-abandonment", ACTOR)
        assert get_scenario(scope, "cart-abandonment").status == "paused"
        assert live_scenarios(scope.conn, scope.workspace_id) == []
        with pytest.raises(Conflict):
            pause_scenario(scope, "cart-abandonment", ACTOR)
        resume_scenario(scope, "cart-abandonment", ACTOR)
        assert len(live_scenarios(scope.conn, scope.workspace_id)) == 1
        archive_scenario(scope, "cart-abandonment", ACTOR)
        assert live_scenarios(scope.conn, scope.workspace_id) == []
        with pytest.raises(NotFound):
            get_scenario(scope, "cart-abandonment")
        # The key is free again; the archived scenario's versions stay readable.
        second = save_scenario(scope, parse_scenario(CART), "hanako")
        assert second.scenario_id != first.scenario_id and second.status == "draft"
        assert get_version(scope.conn, scope.workspace_id, first.scenario_id, 1).key == CART["key"]
    entries = [(e.actor, e.origin, e.action, e.target, e.details) for e in _log(db)]
    target = "scenario:cart-abandonment"
    assert entries == [
        ("hanako", "test", "scenario.publish", target, {"version": 1, "was": "draft"}),
        ("hanako", "test", "scenario.pause", target, {"version": 1}),
        ("hanako", "test", "scenario.resume", target, {"version": 1}),
        ("hanako", "test", "scenario.archive", target, {"version": 1, "was": "live"}),
    ]


def test_scenarios_stay_in_their_workspace(db, scope_factory, shop):
    with scope_factory() as scope:
        save_scenario(scope, parse_scenario(CART), "hanako")
        publish_scenario(scope, "cart-abandonment", ACTOR)
    with db.write() as conn:
        other = create_workspace(conn, "other", now=db.clock.now())
        assert live_scenarios(conn, other.workspace_id) == []


# --- HTTP API -----------------------------------------------------------------------------


@pytest.fixture
def http(db, shop):
    api = build_app(db, "test-token")
    if not any(getattr(r, "path", "").startswith(router.prefix) for r in api.routes):
        api.include_router(router)  # until api/app.py mounts it
    with TestClient(api) as client:
        yield client


def test_http_save_publish_pause_resume_archive(http, db):
    saved = http.post(BASE, json=CART, headers=AUTH)
    assert saved.status_code == 200, saved.text
    assert saved.json()["status"] == "draft" and saved.json()["created_by"] == "api-token"
    assert [s["key"] for s in http.get(BASE, headers=AUTH).json()] == ["cart-abandonment"]
    published = http.post(f"{BASE}/cart-abandonment/publish", headers=AUTH)
    assert published.json() == {"key": "cart-abandonment", "version": 1, "status": "live"}
    assert http.post(BASE, json=_edited(duration={"hours": 3}), headers=AUTH).status_code == 200
    one = http.get(f"{BASE}/cart-abandonment", headers=AUTH).json()
    assert (one["live_version"], one["changed"]) == (1, True)
    assert one["draft"]["nodes"][0]["duration"] == {"hours": 3}
    assert [v["version"] for v in one["versions"]] == [1]
    version = http.get(f"{BASE}/cart-abandonment/versions/1", headers=AUTH).json()
    assert version["nodes"][0]["duration"] == {"hours": 1}
    assert http.get(f"{BASE}/cart-abandonment/versions/9", headers=AUTH).status_code == 404
    paused = http.post(f"{BASE}/cart-abandonment/pause", headers=AUTH)
    assert paused.json()["status"] == "paused"
    assert http.post(f"{BASE}/cart-abandonment/pause", headers=AUTH).status_code == 409
    assert http.post(f"{BASE}/cart-abandonment/resume", headers=AUTH).json()["status"] == "live"
    assert http.post(f"{BASE}/cart-abandonment/archive", headers=AUTH).status_code == 204
    assert http.get(f"{BASE}/cart-abandonment", headers=AUTH).status_code == 404
    actions = [(e.actor, e.origin, e.action) for e in _log(db)]
    assert actions == [("api-token", "testclient", f"scenario.{a}")
                       for a in ("publish", "pause", "resume", "archive")]  # fmt: skip


def test_http_validate_and_bad_input_name_the_node(http):
    assert http.post(f"{BASE}/validate", json=CART, headers=AUTH).json() == {
        "ok": True, "problems": []}  # fmt: skip
    bad = copy.deepcopy(CART)
    bad["nodes"][1]["template"] = "cart-remindr"
    bad["trigger"]["event"] = "Checkout Begun"
    checked = http.post(f"{BASE}/validate", json=bad, headers=AUTH).json()
    assert checked["ok"] is False
    assert [(p["code"], p["field"]) for p in checked["problems"]] == [
        ("unknown_event", "trigger.event"),
        ("unknown_template", "nodes.remind.template"),
    ]
    refused = http.post(BASE, json=bad, headers=AUTH)
    assert (
        refused.status_code == 400
        and refused.json()["errors"][1]["field"] == "nodes.remind.template"
    )
    shape = _edited(duration={"hours": 0})
    answer = http.post(BASE, json=shape, headers=AUTH)
    assert (
        answer.status_code == 400
        and answer.json()["errors"][0]["field"] == "nodes.wait-1h.duration"
    )
    assert http.get(f"{BASE}/cart-abandonment", headers=AUTH).status_code == 404
    assert http.post(f"{BASE}/nothing/publish", headers=AUTH).status_code == 404
    schema = http.get(f"{BASE}/schema", headers=AUTH).json()
    assert {"trigger", "nodes", "start"} <= set(schema["properties"])
    assert http.get(BASE).status_code == 401
    assert http.get("/api/workspaces/nowhere/scenarios", headers=AUTH).status_code == 404


# --- CLI ----------------------------------------------------------------------------------

runner = CliRunner()
COMMANDS = ("list", "save", "validate", "show", "publish", "pause", "resume", "archive", "schema")


@pytest.fixture(scope="module", autouse=True)
def journeys_command():
    """``kizuna journeys`` (mounted here until cli/__init__ registers it)."""
    if not any(group.name == "journeys" for group in app.registered_groups):
        register(app)


def test_every_journeys_command_has_help():
    for command in COMMANDS:
        result = runner.invoke(app, ["journeys", command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, command


def test_cli_save_publish_show_pause_resume_archive(cli_env, shop, db, tmp_path):
    spec = tmp_path / "cart.yaml"
    spec.write_text(CART_YAML, encoding="utf-8")
    checked = runner.invoke(app, ["journeys", "validate", str(spec), "-w", "shop"])
    assert checked.exit_code == 0 and "OK" in checked.output, checked.output
    saved = runner.invoke(app, ["journeys", "save", str(spec), "-w", "shop"])
    assert saved.exit_code == 0 and "cart-abandonment" in saved.output, saved.output
    published = runner.invoke(app, ["journeys", "publish", "cart-abandonment", "-w", "shop"])
    assert published.exit_code == 0 and "version 1 is live" in published.output
    listed = runner.invoke(app, ["journeys", "list", "-w", "shop"])
    assert "cart-abandonment" in listed.output and "live (v1)" in listed.output
    shown = runner.invoke(app, ["journeys", "show", "cart-abandonment", "-w", "shop"])
    assert shown.exit_code == 0 and "v1: published by" in shown.output
    assert "template: cart-reminder" in shown.output
    old = runner.invoke(
        app, ["journeys", "show", "cart-abandonment", "--version", "1", "-w", "shop"]
    )
    assert old.exit_code == 0 and "Version 1:" in old.output
    for command, word in (("pause", "Paused"), ("resume", "Resumed"), ("archive", "Archived")):
        result = runner.invoke(app, ["journeys", command, "cart-abandonment", "-w", "shop"])
        assert result.exit_code == 0 and word in result.output, result.output
    missing = runner.invoke(app, ["journeys", "pause", "cart-abandonment", "-w", "shop"])
    assert missing.exit_code == 1 and "no scenario 'cart-abandonment'" in missing.output
    actions = [(e.actor, e.origin, e.action) for e in _log(db)]
    assert actions == [(getpass.getuser(), "cli", f"scenario.{a}")
                       for a in ("publish", "pause", "resume", "archive")]  # fmt: skip


def test_cli_names_the_file_line_and_node_of_bad_input(cli_env, shop, tmp_path):
    bad = tmp_path / "cart.yaml"
    bad.write_text(CART_YAML.replace("template: cart-reminder", "template: cart-line"),
                   encoding="utf-8")  # fmt: skip
    result = runner.invoke(app, ["journeys", "save", str(bad), "-w", "shop"])
    assert result.exit_code == 2
    assert f"{bad}: line 10, field 'nodes.remind.template'" in result.output
    assert "is for line, but node 'remind' sends email" in result.output
    shape = tmp_path / "shape.yaml"
    shape.write_text(CART_YAML.replace("hours: 1", "hours: 0"), encoding="utf-8")
    result = runner.invoke(app, ["journeys", "validate", str(shape), "-w", "shop"])
    assert result.exit_code == 2 and "line 6, field 'nodes.wait-1h.duration'" in result.output
    result = runner.invoke(app, ["journeys", "validate", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "none.yaml" in result.output


def test_cli_schema(cli_env, tmp_path):
    out = tmp_path / "scenario.schema.json"
    result = runner.invoke(app, ["journeys", "schema", "--out", str(out)])
    assert result.exit_code == 0
    assert "nodes" in json.loads(out.read_text(encoding="utf-8"))["properties"]
