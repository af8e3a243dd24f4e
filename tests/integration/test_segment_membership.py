"""Materialized segment membership: full, event-driven and scheduled refreshes, signals."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.analytics.metrics import refresh_customer_metrics
from kizuna.api import build_app
from kizuna.cli import app
from kizuna.config import load_settings
from kizuna.domain.records import (
    Channel,
    ConsentRecord,
    Identifiers,
    OrderRecord,
    SuppressionRecord,
)
from kizuna.errors import ConfigurationError
from kizuna.ingest.pipeline import ingest_transaction
from kizuna.ingest.segment import parse_batch
from kizuna.segments.definition import parse_spec
from kizuna.segments.membership import (
    drain_queue,
    refresh_due,
    refresh_segment,
    refresh_workspace,
)
from kizuna.store.commerce import upsert_orders
from kizuna.store.consent import address_hash, record_consents, suppress
from kizuna.store.identity import IdentityResolver
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import (
    CUSTOMER_CHANGED,
    address_owners,
    claim_queue,
    current_members,
    delete_queued,
    enqueue_changes,
    read_signals,
)
from kizuna.store.segments import get_segment, save_segment
from kizuna.store.tables import segment_members, segment_queue
from kizuna.store.workspaces import create_write_key
from kizuna.worker import SegmentRefresher
from tests.conftest import backend

VIEWED = {"type": "event", "name": "Product Viewed"}
VIEWED_THIS_WEEK = {"type": "event", "name": "Product Viewed", "within": {"days": 7}}
BUYERS = {"type": "orders"}
TOKYO = {"type": "location", "prefectures": ["東京都"]}
QUARTER = timedelta(minutes=15)


def save(scope_factory, key, condition):
    with scope_factory() as scope:
        return save_segment(
            scope, parse_spec({"key": key, "name": key, "condition": condition}), "t"
        )


def ingest(db, workspace, *messages):
    parsed = parse_batch({"batch": list(messages)}, db.clock.now())
    assert not parsed.problems
    return ingest_transaction(db, workspace.workspace_id, db.clock.now(), parsed.messages)


def customer(db, workspace, user_id):
    with db.write() as conn:
        scope = Scope(conn, db.cipher, workspace.workspace_id, db.clock.now())
        return IdentityResolver(scope).resolve(Identifiers(user_id=user_id), scope.now)


def members(db, workspace, key):
    with db.read() as conn:
        scope = Scope(conn, db.cipher, workspace.workspace_id, db.clock.now())
        saved = get_segment(scope, key)
        return set(conn.execute(current_members(scope, saved.segment_id)).scalars())


def signals(db, workspace, after=None, limit=100):
    with db.read() as conn:
        scope = Scope(conn, db.cipher, workspace.workspace_id, db.clock.now())
        return read_signals(scope, after, limit)


def changes(db, workspace):
    return [(s.segment_key, s.customer_id, s.kind) for s in signals(db, workspace)]


def queued(db):
    with db.read() as conn:
        return conn.execute(
            sa.select(segment_queue.c.customer_id, segment_queue.c.causes).order_by(
                segment_queue.c.queued_id
            )
        ).all()


def refresh(db, workspace, key):
    with db.read() as conn:
        scope = Scope(conn, db.cipher, workspace.workspace_id, db.clock.now())
        saved = get_segment(scope, key)
    return refresh_segment(db, workspace, saved)


def known(db, workspace, *users):
    """Create these customers and drain what creating them queued; returns their ids."""
    ingest(db, workspace, *(identify(user) for user in users))
    drain_queue(db)
    assert queued(db) == []
    return [customer(db, workspace, user) for user in users]


def identify(user_id, **traits):
    return {"type": "identify", "userId": user_id, "traits": traits}


def test_full_refresh_enters_and_exits_with_one_signal_each(db, workspace, scope_factory, clock):
    ingest(db, workspace, identify("C1", prefecture="東京都"), identify("C2", prefecture="東京都"),
           identify("C3", prefecture="大阪府"))  # fmt: skip
    c1, c2, c3 = (customer(db, workspace, c) for c in ("C1", "C2", "C3"))
    save(scope_factory, "tokyo", TOKYO)

    first = refresh(db, workspace, "tokyo")
    assert (first.entered, first.exited) == (2, 0)
    assert members(db, workspace, "tokyo") == {c1, c2}

    clock.advance(timedelta(hours=1))
    ingest(db, workspace, identify("C2", prefecture="大阪府"), identify("C3", prefecture="東京都"))
    second = refresh(db, workspace, "tokyo")
    assert (second.entered, second.exited) == (1, 1)
    assert members(db, workspace, "tokyo") == {c1, c3}
    by_customer = lambda found: sorted(found, key=lambda s: s[1])  # noqa: E731
    assert changes(db, workspace) == [
        *by_customer([("tokyo", c1, "entered"), ("tokyo", c2, "entered")]),
        *by_customer([("tokyo", c2, "exited"), ("tokyo", c3, "entered")]),
    ]
    again = refresh(db, workspace, "tokyo")  # nothing changed: nothing written
    assert (again.entered, again.exited) == (0, 0)
    assert len(signals(db, workspace)) == 4


def test_a_customer_who_comes_back_enters_again(db, workspace, scope_factory, clock):
    ingest(db, workspace, identify("C1", prefecture="東京都"))
    c1 = customer(db, workspace, "C1")
    saved = save(scope_factory, "tokyo", TOKYO)
    refresh(db, workspace, "tokyo")
    for state in ("大阪府", "東京都"):
        clock.advance(timedelta(days=1))
        ingest(db, workspace, identify("C1", prefecture=state))
        refresh(db, workspace, "tokyo")
    assert [s.kind for s in signals(db, workspace)] == ["entered", "exited", "entered"]
    with db.read() as conn:
        row = conn.execute(
            sa.select(segment_members).where(segment_members.c.segment_id == saved.segment_id)
        ).one()
    assert row.customer_id == c1 and row.exited_at is None
    assert row.entered_at == clock.now()  # the latest entry, not the first


def test_signals_page_with_a_cursor(db, workspace, scope_factory, clock):
    ingest(db, workspace, *(identify(f"C{n}", prefecture="東京都") for n in range(5)))
    save(scope_factory, "tokyo", TOKYO)
    refresh(db, workspace, "tokyo")
    clock.advance(timedelta(minutes=1))
    ingest(db, workspace, identify("C0", prefecture="大阪府"))
    refresh(db, workspace, "tokyo")
    everything = signals(db, workspace)
    pages, cursor = [], None
    while page := signals(db, workspace, cursor, limit=2):
        pages.extend(page)
        cursor = page[-1].cursor
    assert pages == everything and len(everything) == 6
    assert [s.cursor for s in everything] == sorted(s.cursor for s in everything)


@pytest.fixture
def client(db, workspace):
    with db.write() as conn:
        key = create_write_key(conn, workspace.workspace_id, "test", db.clock.now())
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    with TestClient(build_app(db), headers=auth) as c:
        yield c


def test_an_event_moves_its_customer_into_only_the_segments_it_can_affect(
    db, workspace, scope_factory, client
):
    ingest(db, workspace, identify("C1"), identify("C2"))
    c1 = customer(db, workspace, "C1")
    save(scope_factory, "viewers", VIEWED)
    save(scope_factory, "buyers", BUYERS)
    save(scope_factory, "tokyo", TOKYO)
    refresh_workspace(db, workspace)
    drain_queue(db)
    assert changes(db, workspace) == []
    with scope_factory() as scope:  # an order written behind the queue's back
        upsert_orders(scope, IdentityResolver(scope), [OrderRecord(
            order_id="O1", customer={"user_id": "C1"}, ordered_at="2026-03-30",
            items=[{"sku": "SKU-1", "unit_price": 1000}])])  # fmt: skip

    answer = client.post("/v1/track", json={"userId": "C1", "event": "Product Viewed",
                                            "properties": {"product_id": "P1"}})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert queued(db) == [(c1, ["event:Product Viewed"])]
    assert drain_queue(db) == 1
    assert queued(db) == []
    # Only "viewers" was evaluated: C1 has an order, yet did not enter "buyers" …
    assert changes(db, workspace) == [("viewers", c1, "entered")]
    # … until a segment that depends on orders is evaluated.
    refresh(db, workspace, "buyers")
    assert members(db, workspace, "buyers") == {c1}


def test_ingest_queues_one_row_per_customer_with_every_cause(db, workspace):
    c1, c2 = known(db, workspace, "C1", "C2")
    ingest(db, workspace, identify("C1"))  # an identify with no traits changes no segment
    assert queued(db) == []
    ingest(
        db,
        workspace,
        {"type": "track", "userId": "C1", "event": "Product Viewed"},
        {"type": "page", "userId": "C1", "name": "Home"},
        {"type": "identify", "userId": "C1", "traits": {"plan": "gold"}},
        {"type": "track", "userId": "C1", "event": "Order Completed",
         "properties": {"order_id": "O1", "total": 1000,
                        "products": [{"sku": "S1", "price": 1000}]}},
        {"type": "track", "userId": "C2", "event": "Signed Up"},
    )  # fmt: skip
    assert sorted(queued(db)) == sorted([
        (c1, sorted(["event:Product Viewed", "event:Home", "traits", "event:Order Completed",
                     "orders"])),
        (c2, ["event:Signed Up"]),
    ])  # fmt: skip


def test_a_segment_built_on_another_follows_its_causes(db, workspace, scope_factory):
    ingest(db, workspace, identify("C1", prefecture="東京都"))
    c1 = customer(db, workspace, "C1")
    save(scope_factory, "viewers", VIEWED)
    save(scope_factory, "tokyo_viewers", {"type": "and", "conditions": [
        {"type": "segment", "segment": "viewers"}, TOKYO]})  # fmt: skip
    refresh_workspace(db, workspace)
    drain_queue(db)
    ingest(db, workspace, {"type": "track", "userId": "C1", "event": "Product Viewed"})
    drain_queue(db)
    assert sorted(changes(db, workspace)) == [
        ("tokyo_viewers", c1, "entered"), ("viewers", c1, "entered")]  # fmt: skip


def test_the_schedule_exits_a_customer_when_a_window_passes(db, workspace, scope_factory, clock):
    ingest(db, workspace, identify("C1"))
    c1 = customer(db, workspace, "C1")
    save(scope_factory, "recent", VIEWED_THIS_WEEK)
    save(scope_factory, "ever", VIEWED)
    assert {r.key for r in refresh_due(db, QUARTER)} == {"recent", "ever"}  # never evaluated
    ingest(db, workspace, {"type": "track", "userId": "C1", "event": "Product Viewed"})
    drain_queue(db)
    assert members(db, workspace, "recent") == {c1}

    clock.advance(timedelta(minutes=1))
    assert refresh_due(db, QUARTER) == []  # refreshed a minute ago
    clock.advance(timedelta(days=8))
    done = refresh_due(db, QUARTER)
    assert [(r.key, r.entered, r.exited) for r in done] == [("recent", 0, 1)]
    assert members(db, workspace, "recent") == set()
    assert members(db, workspace, "ever") == {c1}
    assert changes(db, workspace)[-1] == ("recent", c1, "exited")
    assert refresh_due(db, None) == []  # 0 minutes: never by time


def test_an_edited_segment_and_fresh_metrics_make_segments_due(
    db, workspace, scope_factory, clock, hanako
):
    save(scope_factory, "frequent", {"type": "metric", "metric": "frequency", "op": "gte",
                                     "value": 2})  # fmt: skip
    save(scope_factory, "tokyo", TOKYO)
    assert {r.key for r in refresh_due(db, QUARTER)} == {"frequent", "tokyo"}
    assert members(db, workspace, "frequent") == set()  # no metrics stored yet

    clock.advance(timedelta(minutes=1))
    refresh_customer_metrics(db, workspace)
    done = refresh_due(db, QUARTER)
    assert [(r.key, r.entered) for r in done] == [("frequent", 1)]
    assert members(db, workspace, "frequent") == {hanako["customer_id"]}

    clock.advance(timedelta(minutes=1))
    save(scope_factory, "tokyo", {"type": "location", "prefectures": ["大阪府"]})
    done = refresh_due(db, QUARTER)
    assert [(r.key, r.exited) for r in done] == [("tokyo", 1)]


def test_editing_a_segment_makes_the_segments_built_on_it_due(db, workspace, scope_factory, clock):
    ingest(db, workspace, identify("C1", prefecture="東京都", gender="female"))
    c1 = customer(db, workspace, "C1")
    save(scope_factory, "place", TOKYO)
    women = {"type": "trait", "trait": "gender", "op": "eq", "value": "female"}
    save(scope_factory, "women_there", {"type": "and", "conditions": [
        {"type": "segment", "segment": "place"}, women]})  # fmt: skip
    save(scope_factory, "women", women)
    refresh_due(db, QUARTER)
    assert members(db, workspace, "women_there") == {c1}

    clock.advance(timedelta(minutes=1))
    save(scope_factory, "place", {"type": "location", "prefectures": ["大阪府"]})
    done = refresh_due(db, QUARTER)
    assert sorted((r.key, r.exited) for r in done) == [("place", 1), ("women_there", 1)]


def test_queue_rows_are_deleted_only_when_processed(db, workspace, scope_factory, clock):
    known(db, workspace, "C0", "C1", "C2")
    save(scope_factory, "tokyo", TOKYO)
    ingest(db, workspace, *(identify(f"C{n}", prefecture="東京都") for n in range(3)))
    assert len(queued(db)) == 3

    with pytest.raises(RuntimeError), db.write() as conn:  # a worker dies mid-drain
        claimed = claim_queue(conn, 10)
        assert delete_queued(conn, claimed) == 3
        raise RuntimeError("crash")
    assert len(queued(db)) == 3 and members(db, workspace, "tokyo") == set()

    oldest = [cid for cid, _ in queued(db)][:2]
    assert drain_queue(db, limit=2) == 2
    assert members(db, workspace, "tokyo") == set(oldest)
    assert len(queued(db)) == 1
    assert SegmentRefresher(db, QUARTER, drain_limit=2).drain() == 1
    assert queued(db) == [] and len(members(db, workspace, "tokyo")) == 3


@pytest.mark.skipif(backend() != "postgresql", reason="SKIP LOCKED: PostgreSQL workers")
def test_two_workers_never_take_the_same_rows(db, workspace, scope_factory):
    known(db, workspace, "C0", "C1", "C2", "C3")
    save(scope_factory, "tokyo", TOKYO)
    ingest(db, workspace, *(identify(f"C{n}", prefecture="東京都") for n in range(4)))
    held = threading.Event()
    release = threading.Event()

    def first_worker():
        with db.write() as conn:
            claim_queue(conn, 2)
            held.set()
            release.wait(10)

    worker = threading.Thread(target=first_worker)
    worker.start()
    held.wait(10)
    try:
        assert drain_queue(db) == 2  # the two rows not held by the first worker
    finally:
        release.set()
        worker.join()
    assert len(queued(db)) == 2  # the first worker ended without processing its rows


def test_a_merged_customer_leaves_its_segments(db, workspace, scope_factory):
    ingest(db, workspace, {"type": "track", "anonymousId": "a1", "event": "Product Viewed"},
           identify("C1"))  # fmt: skip
    save(scope_factory, "viewers", VIEWED)
    refresh_workspace(db, workspace)
    (visitor,) = members(db, workspace, "viewers")
    c1 = customer(db, workspace, "C1")

    ingest(db, workspace, {"type": "alias", "userId": "C1", "previousId": "a1"})
    with scope_factory() as scope:  # what a merge queues: both records, every segment
        enqueue_changes(scope, {visitor: [CUSTOMER_CHANGED], c1: [CUSTOMER_CHANGED]})
    drain_queue(db)
    assert members(db, workspace, "viewers") == {c1}
    assert changes(db, workspace)[-2:] == sorted(
        [("viewers", visitor, "exited"), ("viewers", c1, "entered")], key=lambda s: s[1]
    )


def test_a_full_refresh_drops_a_merged_customer_too(db, workspace, scope_factory, clock):
    ingest(db, workspace, {"type": "track", "anonymousId": "a1", "event": "Product Viewed"},
           identify("C1"))  # fmt: skip
    save(scope_factory, "viewers", VIEWED)
    refresh_workspace(db, workspace)
    (visitor,) = members(db, workspace, "viewers")
    clock.advance(timedelta(minutes=1))
    ingest(db, workspace, {"type": "alias", "userId": "C1", "previousId": "a1"})
    (done,) = refresh_workspace(db, workspace)
    assert (done.entered, done.exited) == (1, 1)
    assert members(db, workspace, "viewers") == {customer(db, workspace, "C1")} != {visitor}


def test_consent_and_suppression_changes_move_reachability(db, workspace, scope_factory, clock):
    ingest(db, workspace, identify("C1", email="taro@example.jp"), identify("C2"))
    c1 = customer(db, workspace, "C1")
    save(scope_factory, "mailable", {"type": "channel", "channel": "email"})
    refresh_workspace(db, workspace)
    drain_queue(db)
    with scope_factory() as scope:  # what record_consents is to queue
        record_consents(scope, IdentityResolver(scope), [ConsentRecord(
            customer={"user_id": "C1"}, channel="email", status="opted_in",
            occurred_at="2026-03-01", method="form")])  # fmt: skip
        enqueue_changes(scope, {c1: ["consent"]})
    drain_queue(db)
    assert members(db, workspace, "mailable") == {c1}

    clock.advance(timedelta(minutes=1))
    record = SuppressionRecord(channel="email", address="Taro@Example.jp", reason="hard_bounce")
    with scope_factory() as scope:  # what suppress is to queue: whoever holds the address
        suppress(scope, [record])
        owners = address_owners(scope, [address_hash(scope.cipher, Channel.EMAIL, record.address)])
        assert owners == {c1}
        enqueue_changes(scope, dict.fromkeys(owners, ("consent",)))
    drain_queue(db)
    assert members(db, workspace, "mailable") == set()
    assert changes(db, workspace)[-1] == ("mailable", c1, "exited")


def test_segment_refresh_minutes_is_read_and_checked():
    assert load_settings({}).segment_refresh_minutes == 15
    assert load_settings({"KIZUNA_SEGMENT_REFRESH_MINUTES": "0"}).segment_refresh_minutes == 0
    with pytest.raises(ConfigurationError, match="KIZUNA_SEGMENT_REFRESH_MINUTES"):
        load_settings({"KIZUNA_SEGMENT_REFRESH_MINUTES": "-5"})


def test_the_worker_loops_drain_and_refresh_until_stopped(db, workspace, scope_factory):
    save(scope_factory, "tokyo", TOKYO)
    refresher = SegmentRefresher(db, QUARTER, drain_seconds=0.02, check_seconds=0.02)
    stop = threading.Event()
    loops = [threading.Thread(target=loop, args=(stop,))
             for loop in (refresher.drain_until, refresher.refresh_until)]  # fmt: skip
    for loop in loops:
        loop.start()
    try:
        ingest(db, workspace, identify("C1", prefecture="東京都"))
        c1 = customer(db, workspace, "C1")
        for _ in range(500):  # the drain loop picks the change up on its own
            if members(db, workspace, "tokyo") == {c1} and not queued(db):
                break
            stop.wait(0.02)
    finally:
        stop.set()
        for loop in loops:
            loop.join()
    assert members(db, workspace, "tokyo") == {c1}
    with db.read() as conn:
        scope = Scope(conn, db.cipher, workspace.workspace_id, db.clock.now())
        assert get_segment(scope, "tokyo").refreshed_at is not None  # the schedule ran too


def test_worker_once_drains_and_refreshes(cli_env, db, workspace, scope_factory):
    known(db, workspace, "C1")
    ingest(db, workspace, identify("C1", prefecture="東京都"))
    save(scope_factory, "tokyo", TOKYO)
    result = CliRunner().invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "segment queue: 1 changes" in result.output
    assert "shop/tokyo: +0 -0" in result.output  # the drain had already let C1 in
    assert members(db, workspace, "tokyo") == {customer(db, workspace, "C1")}


def test_a_new_customer_enters_a_segment_no_event_names(db, workspace, scope_factory):
    save(scope_factory, "never_bought", {"type": "not", "condition": {"type": "orders"}})
    refresh_workspace(db, workspace)
    ingest(db, workspace, {"type": "page", "anonymousId": "a9", "name": "Home"})
    drain_queue(db)
    assert len(members(db, workspace, "never_bought")) == 1


def test_a_merge_queues_both_records(db, workspace, scope_factory):
    ingest(
        db,
        workspace,
        {"type": "track", "anonymousId": "a1", "event": "Product Viewed"},
        {"type": "identify", "userId": "C1", "traits": {}},
    )
    save(scope_factory, "viewers", VIEWED)
    refresh_workspace(db, workspace)
    drain_queue(db)
    ingest(db, workspace, {"type": "alias", "userId": "C1", "previousId": "a1"})
    drain_queue(db)
    assert members(db, workspace, "viewers") == {customer(db, workspace, "C1")}
