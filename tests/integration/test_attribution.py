"""The attribution job: last touch, control groups, refunds, goals, merges, never twice."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import sqlalchemy as sa

from kizuna.domain.records import OrderStatus
from kizuna.measurement.attribution import attribute, attribute_workspace
from kizuna.store.commerce import set_order_status
from kizuna.store.merge import merge_customers
from kizuna.store.messages import MessageEvent, record_message_events
from kizuna.store.tables import events
from kizuna.store.tables_campaigns import attributions
from kizuna.store.types import new_id
from tests.integration import attribution_rows as rows

DAY = timedelta(days=1)


def _ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def test_the_latest_qualifying_touch_wins(scope_factory, db, clock):
    t = clock.now()
    a, b, c, d, e = _ids(5)
    with scope_factory() as scope:
        camp = rows.campaign(scope, t - 10 * DAY)
        cid = str(camp)
        # a: a click 5 days ago beats a more recent open that is out of its 3-day window.
        clicked = rows.message(scope, a, source_id=cid, variant="A", sent_at=t - 6 * DAY,
                               delivered_at=t - 6 * DAY, clicked_at=t - 5 * DAY)  # fmt: skip
        rows.message(scope, a, source_kind="scenario", source_id="welcome", step="mail-1",
                     sent_at=t - 4 * DAY, opened_at=t - 4 * DAY + timedelta(hours=1))  # fmt: skip
        # b: an open yesterday beats a click two days ago (most recent touch wins).
        rows.message(scope, b, source_id=cid, sent_at=t - 3 * DAY, clicked_at=t - 2 * DAY)
        opened = rows.message(scope, b, source_kind="scenario", source_id="welcome",
                              step="mail-2", sent_at=t - DAY,
                              opened_at=t - 20 * timedelta(hours=1))  # fmt: skip
        # c: a delivery yesterday; a click 8 days ago is out of its window.
        delivered = rows.message(scope, c, source_kind="api", sent_at=t - DAY, delivered_at=t - DAY)
        rows.message(scope, c, source_id=cid, sent_at=t - 9 * DAY, clicked_at=t - 8 * DAY)
        # d: only a delivery 4 days ago, and a test send: no credit.
        rows.message(scope, d, source_id=cid, sent_at=t - 4 * DAY, delivered_at=t - 4 * DAY)
        rows.message(scope, d, source_kind="test", sent_at=t - DAY, clicked_at=t - DAY)
        # e: a touch after the order does not count.
        rows.message(scope, e, source_id=cid, sent_at=t, clicked_at=t + timedelta(minutes=5))
        for n, who in enumerate((a, b, c, d, e)):
            rows.order(scope, who, f"O-{n}", t, 1000.0 * (n + 1))
    summary = attribute(db)
    with scope_factory() as scope:
        found = rows.credited(scope)
    assert {k: (v["message_id"], v["touch"]) for k, v in found.items()} == {
        "order:O-0": (clicked, "click"),
        "order:O-1": (opened, "open"),
        "order:O-2": (delivered, "delivery"),
    }
    assert found["order:O-0"]["source_id"] == cid and found["order:O-0"]["variant"] == "A"
    assert found["order:O-1"]["step"] == "mail-2" and found["order:O-1"]["revenue"] == 2000.0
    assert summary.credited == 3


def test_a_campaign_sets_its_own_windows(scope_factory, db, clock):
    t = clock.now()
    a, b = _ids(2)
    with scope_factory() as scope:
        short = rows.campaign(scope, t - 5 * DAY, {"click_window_days": 1}, key="short")
        long = rows.campaign(scope, t - 20 * DAY, {"delivery_window_days": 14}, key="long")
        rows.message(scope, a, source_id=str(short), sent_at=t - 3 * DAY, clicked_at=t - 2 * DAY)
        kept = rows.message(scope, b, source_id=str(long), sent_at=t - 10 * DAY,
                            delivered_at=t - 10 * DAY)  # fmt: skip
        rows.order(scope, a, "O-a", t, 500.0)
        rows.order(scope, b, "O-b", t, 700.0)
    attribute(db)
    with scope_factory() as scope:
        found = rows.credited(scope)
    assert list(found) == ["order:O-b"] and found["order:O-b"]["message_id"] == kept


def test_an_order_is_never_credited_twice(scope_factory, db, clock):
    t = clock.now()
    a = uuid.uuid4()
    with scope_factory() as scope:
        rows.message(scope, a, source_id="x", sent_at=t - DAY, clicked_at=t - DAY)
        rows.order(scope, a, "O-1", t, 1000.0)
    first = attribute(db)
    second = attribute(db)
    clock.advance(timedelta(hours=1))
    with scope_factory() as scope:  # a later message and a re-sent order change nothing
        rows.message(scope, a, source_id="y", sent_at=t - timedelta(hours=1),
                     clicked_at=t - timedelta(minutes=30))  # fmt: skip
        scope.conn.execute(sa.text("UPDATE orders SET updated_at = updated_at"))
    third = attribute(db)
    with scope_factory() as scope:
        assert len(rows.credited(scope)) == 1
        assert rows.credited(scope)["order:O-1"]["source_id"] == "x"
    assert (first.credited, second.credited, third.credited) == (1, 0, 0)


def test_two_workers_at_once_credit_each_order_once(scope_factory, db, workspace, clock):
    t = clock.now()
    customers = _ids(40)
    with scope_factory() as scope:
        for n, who in enumerate(customers):
            rows.message(scope, who, source_id="x", sent_at=t - DAY, opened_at=t - DAY)
            rows.order(scope, who, f"O-{n}", t, 100.0)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            start.wait()
            attribute_workspace(db, workspace.workspace_id)  # no lock: the keys alone decide
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with scope_factory() as scope:
        keys = scope.conn.execute(sa.select(attributions.c.conversion_key)).scalars().all()
    assert sorted(keys) == sorted(f"order:O-{n}" for n in range(40))


def test_held_out_customers_convert_as_the_control_group(scope_factory, db, clock):
    t = clock.now()
    treated, held, late, idle = _ids(4)
    with scope_factory() as scope:
        camp = rows.campaign(scope, t - 3 * DAY, {"window_days": 7})
        sent = rows.message(scope, treated, source_id=str(camp), variant="A",
                            sent_at=t - 3 * DAY, delivered_at=t - 3 * DAY,
                            clicked_at=t - 2 * DAY)  # fmt: skip
        audience = [(treated, False, "A", sent), (held, True, "A", None),
                    (late, True, "B", None), (idle, False, "B", None)]  # fmt: skip
        rows.recipients(scope, camp, audience)
        rows.order(scope, treated, "O-t1", t - DAY, 3000.0)
        rows.order(scope, treated, "O-t2", t, 2000.0)
        rows.order(scope, held, "O-h", t, 1500.0)
        rows.order(scope, late, "O-before", t - 4 * DAY, 900.0)  # before the freeze
        scenario_id = rows.scenario(scope, "winback")
        rows.run(scope, scenario_id, held, t - 2 * DAY, held_out=True)
        rows.run(scope, scenario_id, held, t - 30 * DAY, held_out=True)  # window long over
    attribute(db)
    clock.advance(5 * DAY)
    with scope_factory() as scope:
        rows.order(scope, late, "O-after", t + 5 * DAY, 800.0)  # 8 days after: outside
    attribute(db)
    with scope_factory() as scope:
        control = rows.credited(scope, "control")
        outcome = rows.outcomes(scope, camp)
        message = rows.credited(scope)
    assert sorted(control) == [f"order:O-h@campaign:{camp}", "order:O-h@scenario:winback"]
    assert control[f"order:O-h@campaign:{camp}"]["revenue"] == 1500.0
    assert set(message) == {"order:O-t1", "order:O-t2"}  # the held out got no message
    assert {k: v[:2] for k, v in outcome.items()} == {
        treated: (2, 5000.0),
        held: (1, 1500.0),
        late: (0, 0.0),
        idle: (0, 0.0),
    }
    assert outcome[treated][2] == t - DAY and outcome[idle][2] is None


def test_refunds_and_cancellations_follow(scope_factory, db, clock):
    t = clock.now()
    treated, held = _ids(2)
    with scope_factory() as scope:
        camp = rows.campaign(scope, t - DAY)
        sent = rows.message(scope, treated, source_id=str(camp), sent_at=t - DAY,
                            delivered_at=t - DAY)  # fmt: skip
        rows.recipients(scope, camp, [(treated, False, "A", sent), (held, True, "A", None)])
        rows.order(scope, treated, "O-1", t, 5000.0)
        rows.order(scope, treated, "O-2", t, 1000.0)
        rows.order(scope, held, "O-3", t, 4000.0)
    attribute(db)
    clock.advance(timedelta(hours=2))
    with scope_factory() as scope:
        set_order_status(scope, "O-1", OrderStatus.RETURNED, scope.now, refunded=1500.0)
        set_order_status(scope, "O-2", OrderStatus.CANCELLED, scope.now)
        set_order_status(scope, "O-3", OrderStatus.CANCELLED, scope.now)
    summary = attribute(db)
    with scope_factory() as scope:
        message, control = rows.credited(scope), rows.credited(scope, "control")
        outcome = rows.outcomes(scope, camp)
    assert {k: v["revenue"] for k, v in message.items()} == {"order:O-1": 3500.0}
    assert control == {}
    assert {k: v[:2] for k, v in outcome.items()} == {treated: (1, 3500.0), held: (0, 0.0)}
    assert (summary.dropped, summary.repriced) == (2, 1)


def test_goal_events_convert_goal_campaigns(scope_factory, db, clock):
    t = clock.now()
    treated, held, other = _ids(3)
    with scope_factory() as scope:
        camp = rows.campaign(scope, t - 2 * DAY, {"goal": {"event": "Signed Up"}})
        sent = rows.message(scope, treated, source_id=str(camp), variant="B",
                            sent_at=t - 2 * DAY, clicked_at=t - DAY)  # fmt: skip
        # Another source's more recent touch: a goal event credits only its campaign.
        rows.message(scope, treated, source_kind="scenario", source_id="welcome",
                     sent_at=t - DAY, opened_at=t - timedelta(hours=2))  # fmt: skip
        rows.recipients(scope, camp, [(treated, False, "B", sent), (held, True, "B", None)])
        ids = {}
        for who in (treated, held, other):
            ids[who] = new_id()
            scope.conn.execute(events.insert().values(
                workspace_id=scope.workspace_id, customer_id=who, event_id=ids[who],
                message_id=f"m-{who}", type="track", name="Signed Up", properties={},
                context={}, occurred_at=t, received_at=t))  # fmt: skip
        rows.order(scope, treated, "O-1", t, 2500.0)  # an order is not this campaign's goal
    attribute(db)
    with scope_factory() as scope:
        message, control = rows.credited(scope), rows.credited(scope, "control")
        outcome = rows.outcomes(scope, camp)
    goal = f"event:{ids[treated]}"
    assert message[goal]["message_id"] == sent and message[goal]["touch"] == "click"
    assert message["order:O-1"]["source_id"] == "welcome"
    assert list(control) == [f"event:{ids[held]}@campaign:{camp}"]
    assert {k: v[:2] for k, v in outcome.items()} == {treated: (1, 0.0), held: (1, 0.0)}


def test_attributions_and_recipients_follow_merges(scope_factory, db, clock):
    t = clock.now()
    winner, loser, alone = _ids(3)
    with scope_factory() as scope:
        camp = rows.campaign(scope, t - 2 * DAY)
        sent = rows.message(scope, loser, source_id=str(camp), sent_at=t - DAY,
                            clicked_at=t - DAY)  # fmt: skip
        rows.recipients(scope, camp, [(winner, True, "A", None), (loser, False, "A", sent),
                                      (alone, False, "A", None)])  # fmt: skip
        rows.order(scope, loser, "O-1", t, 1200.0)
        rows.order(scope, winner, "O-2", t, 800.0)
    attribute(db)
    clock.advance(timedelta(hours=1))
    with scope_factory() as scope:
        merge_customers(scope, loser, winner, "same email")
        merge_customers(scope, alone, winner, "same phone")
    attribute(db)
    with scope_factory() as scope:
        credited = rows.credited(scope)
        outcome = rows.outcomes(scope, camp)
    assert credited["order:O-1"]["customer_id"] == winner
    # Both were in the campaign: the survivor's row stands, with everything it bought.
    assert {k: v[:2] for k, v in outcome.items()} == {winner: (2, 2000.0)}


def test_the_job_reads_changed_orders_only(scope_factory, db, clock):
    """Past the few minutes' overlap, a run with nothing new credits and recomputes nothing."""
    t = clock.now()
    a = uuid.uuid4()
    with scope_factory() as scope:
        camp = rows.campaign(scope, t - DAY)
        rows.recipients(scope, camp, [(a, False, "A", None)])
        rows.order(scope, a, "O-1", t, 100.0)
    assert attribute(db).recipients == 1
    clock.advance(timedelta(hours=1))
    attribute(db)  # the overlap re-reads the order once more
    clock.advance(timedelta(hours=1))
    again = attribute(db)
    assert (again.credited, again.controls, again.recipients) == (0, 0, 0)


def test_machine_opens_do_not_count_as_opens(scope_factory, clock):
    t = clock.now()
    a = uuid.uuid4()
    with scope_factory() as scope:
        mid = rows.message(scope, a, source_id="x", sent_at=t - DAY)
        later = t + timedelta(minutes=10)
        record_message_events(scope, [
            MessageEvent(mid, "Message Opened", t, {"machine": True}, "open:machine"),
            MessageEvent(mid, "Message Clicked", t, {"machine": True, "url": "u"}, "click:m"),
        ])  # fmt: skip
        first = rows.message_times(scope, mid)
        record_message_events(scope, [
            MessageEvent(mid, "Message Clicked", later, {"machine": False, "url": "u"}, "c:p"),
            MessageEvent(mid, "Message Opened", later + DAY, {"machine": False}, "open:p"),
            MessageEvent(mid, "Unsubscribed", later, {"channel": "email"}),
        ])  # fmt: skip
        second = rows.message_times(scope, mid)
    assert (first["opened_at"], first["clicked_at"], first["delivered_at"]) == (None, None, t)
    # A person's click proves an open; a later open does not move the first one.
    assert second["opened_at"] == later and second["clicked_at"] == later
    assert second["unsubscribed_at"] == later
