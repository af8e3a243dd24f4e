"""The scenario engine: triggers, waits, branches, splits, sends, goals, exits, control groups."""

from __future__ import annotations

from datetime import timedelta

from kizuna.delivery.settings import FrequencyCap, save_delivery_settings
from kizuna.domain.records import ConsentRecord
from kizuna.store.consent import record_consents
from kizuna.store.identity import IdentityResolver
from tests.delivery.test_tracking import SETTINGS
from tests.integration.scenario_shop import (
    build_shop,
    intents,
    later,
    publish,
    run_engine,
    runs,
    steps,
    track,
)

CART = {
    "key": "cart", "name": "カゴ落ち", "priority": 10,
    "trigger": {"type": "event", "event": "Checkout Started",
                "where": [{"property": "value", "op": "gte", "value": 5000}]},
    "entry": {"reentry": "every_time", "key_property": "cart_id"},
    "goal": {"event": "Order Completed"},
    "start": "wait-1h",
    "nodes": [
        {"id": "wait-1h", "type": "wait", "duration": {"hours": 1}, "next": "remind"},
        {"id": "remind", "type": "send", "channel": "email", "template": "cart-reminder",
         "next": "wait-24h"},
        {"id": "wait-24h", "type": "wait", "duration": {"hours": 24}, "next": "again"},
        {"id": "again", "type": "send", "channel": "email", "template": "cart-reminder",
         "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}  # fmt: skip


def test_an_event_starts_a_run_that_waits_sends_and_completes(db, workspace, scope_factory, clock):
    build_shop(scope_factory, clock)
    publish(scope_factory, CART)
    track(db, workspace, "c1@example.jp", "Checkout Started", {"value": 3000, "cart_id": "A"})
    track(db, workspace, "c1@example.jp", "Checkout Started", {"value": 8000, "cart_id": "B"})
    report = run_engine(db)
    assert report.entered == 1  # the 3,000 JPY cart does not match the trigger's filter
    (run,) = runs(db)
    assert run["status"] == "active" and run["node_id"] == "wait-1h" and run["run_key"] == "B"
    assert run["context"]["value"] == 8000
    assert intents(db) == []
    later(db, clock, timedelta(minutes=59))
    assert intents(db) == []
    later(db, clock, timedelta(minutes=2))
    (first,) = intents(db)
    assert first["template_key"] == "cart-reminder" and first["source_kind"] == "scenario"
    assert first["source_id"] == "cart" and first["step"] == "remind"
    assert first["params"]["cart_id"] == "B"  # the trigger's properties reach the template
    later(db, clock, timedelta(hours=24))
    assert len(intents(db)) == 2
    (run,) = runs(db)
    assert run["status"] == "completed" and run["exit_reason"] == "exit_node"
    assert [s[:2] for s in steps(db)] == [
        ("wait-1h", "waiting"), ("wait-1h", "passed"), ("remind", "sent"),
        ("wait-24h", "waiting"), ("wait-24h", "passed"), ("again", "sent"), ("done", "exited"),
    ]  # fmt: skip


def test_the_goal_ends_a_waiting_run_at_once(db, workspace, scope_factory, clock):
    build_shop(scope_factory, clock)
    publish(scope_factory, CART)
    track(db, workspace, "c1@example.jp", "Checkout Started", {"value": 8000, "cart_id": "B"})
    run_engine(db)
    later(db, clock, timedelta(hours=2))
    assert len(intents(db)) == 1
    track(db, workspace, "c1@example.jp", "Order Completed", {"order_id": "O-1", "total": 8000})
    run_engine(db)
    (run,) = runs(db)
    assert run["status"] == "completed" and run["exit_reason"] == "goal"
    later(db, clock, timedelta(days=2))
    assert len(intents(db)) == 1  # no second reminder after the purchase


def test_one_run_per_cart_and_no_second_run_for_the_same_cart(db, workspace, scope_factory, clock):
    build_shop(scope_factory, clock)
    publish(scope_factory, CART)
    for cart in ("A", "A", "B"):
        track(db, workspace, "c1@example.jp", "Checkout Started", {"value": 9000, "cart_id": cart})
    run_engine(db)
    assert sorted(r["run_key"] for r in runs(db)) == ["A", "B"]


WAIT_FOR = {
    "key": "thanks", "name": "購入待ち",
    "trigger": {"type": "event", "event": "Product Viewed"},
    "entry": {"reentry": "every_time"},
    "start": "wait-order",
    "nodes": [
        {"id": "wait-order", "type": "wait_for", "event": {"event": "Order Completed"},
         "timeout": {"days": 3}, "next": "thank", "timeout_next": "nudge"},
        {"id": "thank", "type": "send", "channel": "email", "template": "thanks"},
        {"id": "nudge", "type": "send", "channel": "line", "template": "cart-line"},
    ],
}  # fmt: skip


def test_wait_for_branches_on_what_came_first(db, workspace, scope_factory, clock):
    build_shop(scope_factory, clock)
    publish(scope_factory, WAIT_FOR)
    track(db, workspace, "c0@example.jp", "Product Viewed", {"sku": "S1"})
    track(db, workspace, "c1@example.jp", "Product Viewed", {"sku": "S1"})
    run_engine(db)
    later(db, clock, timedelta(days=1))
    track(db, workspace, "c1@example.jp", "Order Completed", {"order_id": "O-9", "total": 1})
    run_engine(db)
    later(db, clock, timedelta(days=3))
    sent = {(m["template_key"], m["channel"]) for m in intents(db)}
    assert sent == {("thanks", "email"), ("cart-line", "line")}
    assert {r["status"] for r in runs(db)} == {"completed"}


def test_holdout_and_global_control_are_recorded_and_never_sent(
    db, workspace, scope_factory, clock
):
    build_shop(scope_factory, clock, customers=40)
    with scope_factory() as scope:
        control = SETTINGS.model_copy(update={"global_control_percent": 10})
        save_delivery_settings(scope.conn, scope.workspace_id, control)
    publish(scope_factory, {**WAIT_FOR, "holdout_percent": 30})
    for i in range(40):
        track(db, workspace, f"c{i}@example.jp", "Product Viewed", {"sku": "S1"})
    run_engine(db)
    later(db, clock, timedelta(days=4))
    found = runs(db)
    held = [r for r in found if r["held_out"]]
    assert {r["exit_reason"] for r in held} <= {"holdout", "global_control"}
    assert 5 <= len(held) <= 25  # ~37 % of 40, drawn by a stable hash
    sent_to = {m["customer_id"] for m in intents(db)}
    assert sent_to.isdisjoint({r["customer_id"] for r in held})
    assert len(sent_to) == 40 - len(held)


def test_reentry_once_and_after_days(db, workspace, scope_factory, clock):
    build_shop(scope_factory, clock)
    once = {**WAIT_FOR, "key": "once", "entry": {"reentry": "once"}}
    weekly = {**WAIT_FOR, "key": "weekly", "entry": {"reentry": "after_days", "reentry_days": 7}}
    publish(scope_factory, once)
    publish(scope_factory, weekly)
    for _ in range(10):
        track(db, workspace, "c1@example.jp", "Product Viewed", {"sku": "S1"})
        later(db, clock, timedelta(days=1))
    keys = [r["scenario_id"] for r in runs(db)]
    assert len(keys) == 1 + 2  # once: one run; weekly: days 0 and 7


def test_a_higher_priority_scenario_takes_the_customer(db, workspace, scope_factory, clock):
    build_shop(scope_factory, clock)
    publish(scope_factory, {**WAIT_FOR, "key": "low", "priority": 1})
    publish(scope_factory, {**CART, "key": "high", "priority": 50})
    track(db, workspace, "c1@example.jp", "Product Viewed", {"sku": "S1"})
    run_engine(db)
    track(db, workspace, "c1@example.jp", "Checkout Started", {"value": 9000, "cart_id": "Z"})
    run_engine(db)
    by_key = {r["run_key"] or "low": r for r in runs(db)}
    assert by_key["low"]["status"] == "exited" and by_key["low"]["exit_reason"] == "priority"
    assert by_key["Z"]["status"] == "active"
    track(db, workspace, "c1@example.jp", "Product Viewed", {"sku": "S2"})
    report = run_engine(db)
    assert report.refused.get("higher_priority") == 1


def test_opting_out_ends_the_run_before_the_next_send(db, workspace, scope_factory, clock):
    build_shop(scope_factory, clock)
    publish(scope_factory, CART)
    track(db, workspace, "c1@example.jp", "Checkout Started", {"value": 8000, "cart_id": "B"})
    run_engine(db)
    with scope_factory() as scope:
        record_consents(scope, IdentityResolver(scope), [ConsentRecord(
            customer={"email": "c1@example.jp"}, channel="email", status="opted_out",
            occurred_at=clock.now(), method="preference centre")])  # fmt: skip
    later(db, clock, timedelta(hours=2))
    (run,) = runs(db)
    assert run["status"] == "exited" and run["exit_reason"] == "opted_out"
    assert intents(db) == []


BRANCHES = {
    "key": "ab", "name": "分岐とABテスト",
    "trigger": {"type": "api"},
    "entry": {"reentry": "every_time"},
    "start": "vip",
    "nodes": [
        {"id": "vip", "type": "branch", "yes": "split", "no": "tag",
         "condition": {"type": "channel", "channel": "line"}},
        {"id": "split", "type": "split", "paths": [
            {"weight": 50, "next": "a", "label": "A"}, {"weight": 50, "next": "b", "label": "B"}]},
        {"id": "a", "type": "send", "channel": "line", "template": "cart-line"},
        {"id": "b", "type": "send", "channel": "email", "template": "thanks"},
        {"id": "tag", "type": "update", "attributes": {"journey": "ab"}, "add_tags": ["no-line"]},
    ],
}  # fmt: skip


def test_branch_split_and_profile_update(db, workspace, scope_factory, clock):
    ids = build_shop(scope_factory, clock)
    publish(scope_factory, BRANCHES)
    from kizuna.scenarios.api import start_runs  # the API trigger

    with scope_factory() as scope:
        assert start_runs(scope, "ab", [ids[0], ids[1]], {"reason": "test"}) == 2
    run_engine(db)
    by_customer = {r["customer_id"]: r for r in runs(db)}
    assert by_customer[ids[0]]["variant"] in ("A", "B")  # c0 has LINE: the split
    (sent,) = intents(db)
    assert sent["customer_id"] == ids[0] and sent["variant"] == by_customer[ids[0]]["variant"]
    from kizuna.client import Kizuna

    with Kizuna(db, "shop") as kz:
        profile = kz.profile(str(ids[1]))
    assert profile["attributes"]["journey"] == "ab" and profile["attributes"]["tags"] == ["no-line"]


def test_a_capped_send_exits_when_the_scenario_says_so(db, workspace, scope_factory, clock):
    build_shop(scope_factory, clock)
    with scope_factory() as scope:
        caps = [FrequencyCap(channel="email", max_messages=1, days=7)]
        save_delivery_settings(scope.conn, scope.workspace_id,
                               SETTINGS.model_copy(update={"frequency_caps": caps}))  # fmt: skip
    publish(scope_factory, {**CART, "exits": {"on_frequency_cap": True}})
    track(db, workspace, "c1@example.jp", "Checkout Started", {"value": 8000, "cart_id": "B"})
    run_engine(db)
    later(db, clock, timedelta(hours=2))
    from kizuna.delivery.pipeline import Pipeline

    Pipeline(db).drain_all()  # the first reminder goes out and counts toward the cap
    later(db, clock, timedelta(hours=24))
    (run,) = runs(db)
    assert run["status"] == "exited" and run["exit_reason"] == "frequency_cap"
    assert len(intents(db)) == 1
