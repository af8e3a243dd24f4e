"""Simulating a draft over real history: exact per-node counts, and nothing written or sent."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
import typer
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.api import build_app, scenario_reports
from kizuna.cli.journeys_reports import add_report_commands
from kizuna.domain.records import CustomerTraits
from kizuna.errors import InvalidInput
from kizuna.scenarios.definition import ScenarioSpec
from kizuna.scenarios.simulate import simulate
from kizuna.segments.definition import parse_spec
from kizuna.segments.membership import refresh_workspace
from kizuna.store.customers import apply_traits
from kizuna.store.segments import save_segment
from kizuna.store.tables import (
    messages,
    operation_log,
    scenario_inbox,
    scenario_runs,
    scenario_steps,
    scenario_versions,
    scenarios,
)
from tests.conftest import T0
from tests.integration.scenario_shop import build_shop, publish, run_engine, runs, track
from tests.integration.test_scenario_stats import CART

AUTH = {"Authorization": "Bearer test-token"}
WATCHED = (scenarios, scenario_versions, scenario_runs, scenario_steps, scenario_inbox, messages,
           operation_log)  # fmt: skip
VIEWED = {
    "key": "viewed", "name": "閲覧のお礼", "trigger": {"type": "event", "event": "Product Viewed"},
    "start": "thank", "nodes": [{"id": "thank", "type": "send", "channel": "email",
                                 "template": "thanks"}],
}  # fmt: skip


def _at(clock, offset: timedelta) -> None:
    clock.advance(T0 + offset - clock.now())


def _checkout(db, workspace, clock, offset: timedelta, i: int, value: int = 8000) -> None:
    _at(clock, offset)
    track(db, workspace, f"c{i}@example.jp", "Checkout Started",
          {"value": value, "cart_id": f"cart-{i}"})  # fmt: skip


def _order(db, workspace, clock, offset: timedelta, i: int) -> None:
    _at(clock, offset)
    track(db, workspace, f"c{i}@example.jp", "Order Completed",
          {"order_id": f"O-{i}", "total": 8000})  # fmt: skip


def _snapshot(db) -> dict[str, list[tuple]]:
    with db.read() as conn:
        return {t.name: sorted(map(tuple, conn.execute(sa.select(t)).all()), key=repr)
                for t in WATCHED}  # fmt: skip


@pytest.fixture
def history(db, workspace, scope_factory, clock):
    """Carts and orders of the last days, and a live scenario of the shop's own with a run."""
    build_shop(scope_factory, clock, customers=7)
    publish(scope_factory, VIEWED)
    h = timedelta(hours=1)
    _checkout(db, workspace, clock, 10 * h / 60, 3)  # before the range: never replayed
    _checkout(db, workspace, clock, 1 * h, 0)  # LINE customer: the LINE reminder, then done
    _checkout(db, workspace, clock, 1 * h, 1)
    _checkout(db, workspace, clock, 1 * h, 2)
    _checkout(db, workspace, clock, 1 * h, 5)
    _checkout(db, workspace, clock, 1 * h, 6, value=3000)  # below the trigger's filter
    _order(db, workspace, clock, 1.5 * h, 1)  # bought before the first reminder
    _order(db, workspace, clock, 3 * h, 2)  # bought after the first reminder
    _checkout(db, workspace, clock, 5 * h, 4)  # late: still waiting when the range ends
    track(db, workspace, "c6@example.jp", "Product Viewed", {"sku": "S1"})
    run_engine(db)  # the shop's own scenario runs; the draft is not live
    _checkout(db, workspace, clock, 40 * h, 3)  # after the range
    _at(clock, 48 * h)
    return T0 + 30 * h / 60


def test_per_node_counts_over_a_short_range(db, history, scope_factory):
    before = _snapshot(db)
    sim = simulate(db, "shop", ScenarioSpec.model_validate(CART), history,
                   T0 + timedelta(hours=5, minutes=30))  # fmt: skip
    got = {n.node_id: n for n in sim.nodes}
    assert (sim.events, sim.signals, sim.calendar) == (8, 0, 0)  # c6's small cart too
    wait = got["wait-1h"]
    assert (wait.entered, wait.waiting, wait.passed, wait.exits) == (5, 1, 3, {"goal": 1})
    assert got["has-line"].paths == {"yes": 1, "no": 2}
    assert (got["remind-line"].sent, got["remind"].sent) == (1, 2)
    second = got["wait-24h"]
    assert (second.entered, second.waiting, second.exits) == (2, 1, {"goal": 1})
    assert got["again"].entered == got["done"].entered == 0
    t = sim.totals
    assert (t.entered, t.active, t.completed, t.exited, t.goals) == (5, 2, 3, 0, 2)
    assert t.exits == {"completed": 1, "goal": 2}
    assert [(s.node_id, s.channel, s.template, s.messages) for s in sim.sends] == [
        ("remind", "email", "cart-reminder", 2),
        ("remind-line", "line", "cart-line", 1),
    ]
    assert sim.summary()["sent_by_template"] == {"email:cart-reminder": 2, "line:cart-line": 1}
    assert _snapshot(db) == before  # no scenario, run, step, inbox item, message or log entry


def test_other_connections_never_see_the_simulated_scenario_runs_or_intents(db, history):
    seen = []

    def look(done: int, total: int) -> None:
        if done == total:  # every moment replayed: the draft's intents are in the outbox
            with db.read() as conn:  # what the outbox drain and the engine see meanwhile
                seen.append(tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                                  for t in (scenarios, scenario_runs, messages)))  # fmt: skip

    sim = simulate(db, "shop", ScenarioSpec.model_validate(CART), history,
                   T0 + timedelta(hours=5, minutes=30), progress=look)  # fmt: skip
    assert sim.totals.sent == 3
    assert seen == [(1, 1, 1)]  # only the shop's own scenario, its run and its message


def test_timers_run_out_until_the_end_of_the_range(db, history):
    sim = simulate(db, "shop", ScenarioSpec.model_validate(CART), history,
                   T0 + timedelta(hours=29))  # fmt: skip
    got = {n.node_id: n for n in sim.nodes}
    # c5 gets the second reminder at 26 h and exits; c4 (entered at 5 h) waits until 30 h.
    assert (got["again"].sent, got["done"].exits) == (1, {"exit_node": 1})
    assert (got["wait-24h"].entered, got["wait-24h"].waiting) == (3, 1)
    assert got["wait-24h"].exits == {"goal": 1}
    assert sim.totals.sent == 5 and sim.totals.channels == {"email": 4, "line": 1}
    frame = sim.frame().set_index("node")
    assert frame.loc["done", "exited:exit_node"] == 1
    assert sim.sends_frame()["messages"].sum() == 5


def test_the_same_draft_simulated_twice_gives_the_same_answer(db, history):
    spec = ScenarioSpec.model_validate({**CART, "holdout_percent": 40})
    first = simulate(db, "shop", spec, history, T0 + timedelta(hours=29))
    second = simulate(db, "shop", spec, history, T0 + timedelta(hours=29))
    assert first.stats == second.stats and first.sends == second.sends
    assert first.totals.held_out == first.totals.holdout
    assert first.totals.entered + first.totals.held_out == 5


def test_a_live_scenario_with_the_same_key_is_left_alone(db, history, scope_factory):
    publish(scope_factory, CART)  # the real one, live since "now": it saw none of the history
    before = _snapshot(db)
    sim = simulate(db, "shop", ScenarioSpec.model_validate(CART), history,
                   T0 + timedelta(hours=5, minutes=30))  # fmt: skip
    assert sim.totals.entered == 5
    assert _snapshot(db) == before
    assert len(runs(db)) == 1  # VIEWED's run for c6, from before


def test_birthdays_in_the_range_enter_on_their_day(db, workspace, scope_factory, clock):
    ids = build_shop(scope_factory, clock, customers=3)
    with scope_factory() as scope:
        apply_traits(scope, ids[1], CustomerTraits(birthday=date(1990, 4, 3)))
        apply_traits(scope, ids[2], CustomerTraits(birthday=date(1985, 6, 1)))
    draft = {"key": "birthday", "name": "誕生日", "start": "thank",
             "trigger": {"type": "date", "date": "birthday", "at": "10:00"},
             "nodes": VIEWED["nodes"]}  # fmt: skip
    _at(clock, timedelta(days=10))
    sim = simulate(db, "shop", ScenarioSpec.model_validate(draft), T0, T0 + timedelta(days=7))
    assert sim.calendar == 7  # one moment per local day
    assert sim.totals.entered == 1 and sim.nodes[0].sent == 1
    assert runs(db) == []


def test_segment_changes_and_a_schedule_in_the_range_start_runs(
    db, workspace, scope_factory, clock
):
    ids = build_shop(scope_factory, clock, customers=4)
    with scope_factory() as scope:
        spec = parse_spec(
            {
                "key": "tokyo",
                "name": "東京",
                "condition": {"type": "location", "prefectures": ["東京都"]},
            }
        )
        save_segment(scope, spec, "t")  # fmt: skip
        for i in (1, 2):
            apply_traits(scope, ids[i], CustomerTraits(prefecture="東京都"))
    _at(clock, timedelta(hours=2))
    refresh_workspace(db, workspace)  # two "entered" signals, two hours into the range
    _at(clock, timedelta(days=1))
    draft = {
        "key": "welcome-tokyo",
        "name": "東京の方へ",
        "start": "thank",
        "trigger": {"type": "segment", "segment": "tokyo"},
        "nodes": VIEWED["nodes"],
    }
    sim = simulate(db, "shop", ScenarioSpec.model_validate(draft), T0, T0 + timedelta(hours=3))
    assert (sim.signals, sim.totals.entered, sim.totals.sent) == (2, 2, 2)
    early = simulate(db, "shop", ScenarioSpec.model_validate(draft), T0, T0 + timedelta(hours=1))
    assert early.signals == early.totals.entered == 0
    at = (T0 + timedelta(hours=2)).isoformat()
    batch = {**draft, "key": "tokyo-news", "trigger": {"type": "schedule", "segment": "tokyo",
                                                       "at": at}}  # fmt: skip
    sim = simulate(db, "shop", ScenarioSpec.model_validate(batch), T0, T0 + timedelta(hours=3))
    assert (sim.calendar, sim.totals.entered, sim.totals.sent) == (1, 2, 2)  # today's members
    after = simulate(db, "shop", ScenarioSpec.model_validate(batch), T0, T0 + timedelta(hours=2))
    assert after.calendar == after.totals.entered == 0  # the schedule falls outside the range


def test_bad_drafts_and_ranges_are_refused(db, history):
    missing = {
        **CART,
        "nodes": [
            *CART["nodes"][:-1],
            {"id": "done", "type": "send", "channel": "email", "template": "nope"},
        ],
    }
    with pytest.raises(InvalidInput) as bad:
        simulate(db, "shop", ScenarioSpec.model_validate(missing), history, T0 + timedelta(1))
    assert [p.field for p in bad.value.problems] == ["nodes.done.template"]
    api = {**VIEWED, "trigger": {"type": "api"}}
    with pytest.raises(InvalidInput) as refused:
        simulate(db, "shop", ScenarioSpec.model_validate(api), history, T0 + timedelta(1))
    assert refused.value.problems[0].field == "trigger"
    with pytest.raises(InvalidInput) as backwards:
        simulate(db, "shop", ScenarioSpec.model_validate(CART), history, history)
    assert backwards.value.problems[0].field == "until"
    with pytest.raises(InvalidInput):
        simulate(db, "shop", ScenarioSpec.model_validate(CART), history, T0 + timedelta(400))


# --- HTTP and CLI -------------------------------------------------------------------------


def _app(db):
    app = build_app(db, "test-token")
    if not any(getattr(r, "path", "").endswith("/scenarios/simulate") for r in app.routes):
        app.include_router(scenario_reports.router)  # until the app includes it itself
    return app


def test_http_simulate(db, history):
    body = {
        "spec": CART,
        "since": "2026-04-01T12:30:00",  # Tokyo time: T0 + 30 min
        "until": (T0 + timedelta(hours=5, minutes=30)).isoformat(),
    }
    before = _snapshot(db)
    with TestClient(_app(db)) as http:
        answer = http.post("/api/workspaces/shop/scenarios/simulate", json=body, headers=AUTH)
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert found["replayed"] == {"events": 8, "signals": 0, "calendar": 0}
        assert found["totals"]["entered"] == 5 and found["totals"]["goals"] == 2
        nodes = {n["node_id"]: n for n in found["nodes"]}
        assert nodes["wait-1h"]["exits"] == {"goal": 1}
        assert {(s["node_id"], s["messages"]) for s in found["sends"]} == {
            ("remind", 2), ("remind-line", 1)}  # fmt: skip
        assert found["limits"]
        broken = {**body, "spec": {**CART, "nodes": CART["nodes"][:-1]}}  # "again" -> nowhere
        bad = http.post("/api/workspaces/shop/scenarios/simulate", json=broken, headers=AUTH)
        assert bad.status_code == 400
        assert "spec.nodes.again.next" in {e["field"] for e in bad.json()["errors"]}
        shape = {**body, "spec": {**CART, "start": None}}
        assert http.post("/api/workspaces/shop/scenarios/simulate", json=shape,
                         headers=AUTH).json()["errors"][0]["field"] == "spec.start"  # fmt: skip
        late = {**body, "until": "2026-03-01"}
        answer = http.post("/api/workspaces/shop/scenarios/simulate", json=late, headers=AUTH)
        assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "until"
    assert _snapshot(db) == before


def test_cli_simulate(db, history, cli_env, tmp_path):
    draft = tmp_path / "cart.yaml"
    draft.write_text(yaml.safe_dump(CART, allow_unicode=True), encoding="utf-8")
    journeys = typer.Typer()
    add_report_commands(journeys)
    args = ["simulate", str(draft), "--since", "2026-04-01T12:30", "--until",
            "2026-04-01T17:30", "-w", "shop"]  # fmt: skip
    result = CliRunner().invoke(journeys, args)
    assert result.exit_code == 0, result.output
    assert "Replayed 8 events" in result.output and "cart-reminder" in result.output
    assert "シミュレーション" in result.output and "goal 1" in result.output
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({**CART, "nodes": CART["nodes"][:-1]}), encoding="utf-8")
    result = CliRunner().invoke(journeys, ["simulate", str(broken), *args[2:]])
    assert result.exit_code == 2 and "nodes.again.next" in result.output
    assert f"{broken}: line" in result.output
    result = CliRunner().invoke(journeys, ["simulate", str(draft), "--since", "soon",
                                           *args[4:]])  # fmt: skip
    assert result.exit_code == 2 and "since" in result.output
