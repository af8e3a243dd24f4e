"""Triggers beyond events: segment changes, birthdays and other dates, schedules, API calls."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from kizuna.domain.records import CustomerTraits
from kizuna.segments.definition import parse_spec
from kizuna.segments.membership import refresh_workspace
from kizuna.store.customers import apply_traits
from kizuna.store.segments import save_segment
from tests.integration.scenario_shop import build_shop, intents, publish, run_engine, runs

THANKS = [{"id": "thank", "type": "send", "channel": "email", "template": "thanks"}]


def _birthday(scope_factory, customer_id, day: date) -> None:
    with scope_factory() as scope:
        apply_traits(scope, customer_id, CustomerTraits(birthday=day))


def test_birthdays_enter_once_a_year_at_the_local_time(db, workspace, scope_factory, clock):
    ids = build_shop(scope_factory, clock)
    clock.advance(datetime(2026, 5, 9, 15, 0, tzinfo=UTC) - clock.now())  # 00:00 on 10 May, Tokyo
    _birthday(scope_factory, ids[0], date(1990, 5, 10))
    _birthday(scope_factory, ids[1], date(1988, 5, 11))
    publish(scope_factory, {"key": "birthday", "name": "誕生日",
                            "trigger": {"type": "date", "date": "birthday", "at": "10:00"},
                            "start": "thank", "nodes": THANKS})  # fmt: skip
    run_engine(db)
    assert runs(db) == []  # not 10:00 yet
    clock.advance(timedelta(hours=10, minutes=1))
    run_engine(db)
    run_engine(db)  # the same day again: nothing new
    (run,) = runs(db)
    assert run["customer_id"] == ids[0] and run["run_key"] == "2026-05-10"
    assert run["context"] == {"date": "2026-05-10"}
    assert len(intents(db)) == 1
    clock.advance(timedelta(days=365))  # the next birthday (reentry "once" is per occurrence)
    run_engine(db)
    assert sorted(r["run_key"] for r in runs(db)) == ["2026-05-10", "2027-05-10"]


def test_days_after_the_last_order(db, workspace, scope_factory, clock):
    from kizuna.domain.records import OrderRecord
    from kizuna.store.commerce import upsert_orders
    from kizuna.store.identity import IdentityResolver

    build_shop(scope_factory, clock)
    ordered = clock.now()
    with scope_factory() as scope:
        upsert_orders(scope, IdentityResolver(scope), [OrderRecord(
            order_id="O-1", customer={"email": "c2@example.jp"}, ordered_at=ordered,
            total=5000, items=[{"sku": "S1", "quantity": 1, "unit_price": 5000}])])  # fmt: skip
    publish(scope_factory, {"key": "winback-30", "name": "30日離反",
                            "trigger": {"type": "date", "date": "last_order", "offset_days": 30,
                                        "at": "10:00"},
                            "start": "thank", "nodes": THANKS})  # fmt: skip
    clock.advance(timedelta(days=29, hours=10))
    run_engine(db)
    assert runs(db) == []
    clock.advance(timedelta(days=1))
    run_engine(db)
    assert len(runs(db)) == 1


def test_segment_entry_starts_runs_and_a_schedule_enters_the_whole_segment(
    db, workspace, scope_factory, clock
):
    ids = build_shop(scope_factory, clock, customers=5)
    for i in (1, 2):
        with scope_factory() as scope:
            apply_traits(scope, ids[i], CustomerTraits(prefecture="東京都"))
    with scope_factory() as scope:
        tokyo = {"type": "location", "prefectures": ["東京都"]}
        spec = parse_spec({"key": "tokyo", "name": "東京", "condition": tokyo})
        save_segment(scope, spec, "t")
    publish(scope_factory, {"key": "welcome-tokyo", "name": "東京の方へ",
                            "trigger": {"type": "segment", "segment": "tokyo"},
                            "start": "thank", "nodes": THANKS})  # fmt: skip
    at = (clock.now() + timedelta(hours=1)).isoformat()
    publish(scope_factory, {"key": "tokyo-news", "name": "東京ニュース", "priority": 0,
                            "trigger": {"type": "schedule", "segment": "tokyo", "at": at},
                            "start": "thank", "nodes": THANKS})  # fmt: skip
    refresh_workspace(db, workspace)  # membership signals: two customers entered "tokyo"
    run_engine(db)
    assert sorted(str(r["customer_id"]) for r in runs(db)) == sorted(str(i) for i in ids[1:3])
    clock.advance(timedelta(hours=1))
    run_engine(db)
    run_engine(db)
    assert len(runs(db)) == 4  # the schedule entered both members once more, in its scenario
    assert len(intents(db)) == 4
