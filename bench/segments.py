"""Benchmark segments on a big demo shop: a live count, a full refresh, event-to-membership latency.

The shop (``bench/_shop.py``): N customers (88 % with an email address, 60 % opted
in to email, 2.5 % of addresses suppressed, 30 % on LINE), ``--events-per-customer``
× N track events over the last year and ``--orders-per-customer`` × N orders over
three years, both skewed (Gamma(0.6) activity: a few customers very active, many
barely), each event naming a product of the demo catalogue (its category among six).
Cached: a SQLite file under /tmp/kizuna-bench-segments, or a PostgreSQL workspace
named after the size and seed. "Now" is fixed (2026-04-01 03:00 UTC).

Parts (``--only`` picks one):

* ``count``: the issue's behavioural segment — viewed skincare at least 3 times
  in 30 days AND no order in 90 days AND reachable by email — compiled by
  ``kizuna.segments.compiler`` and counted in the store (best of ``--repeat``),
  against the same question answered by DuckDB over the same arrays in memory
  (loading not timed). Aim: under 1 s on PostgreSQL.
* ``refresh``: 20 varied segments (traits, location, birthday, channels, events,
  orders, bought, PB, an RFM metric, nested references) saved as a marketer saves
  them and refreshed in full twice by ``segments.membership.refresh_workspace`` —
  first every member enters, then the steady state — against counting the same
  segments (the anchor: what materializing membership adds).
* ``latency``: those segments plus "Checkout Started in the last day"; track calls
  posted to ``/v1/batch`` (100 per batch, ``--clients`` processes) as fast as the
  server answers, while the segment worker drains the queue (threads in the server
  process on SQLite, as ``kizuna serve``; a process of its own on PostgreSQL, as
  ``kizuna worker``). Latency: from the answer to the batch holding a watched
  customer's Checkout Started to their ``entered`` signal (polled every 10 ms).
  Aim: p95 under 1 s. What was ingested is deleted afterwards.

Building the default shop (1,000,000 customers, 10,000,000 events, 10,000,000
orders) on 2 cores: NumPy 15 s; load 11 min into PostgreSQL, 16 min into SQLite (a
16 GB file); the stored customer metrics the ``metric`` segment needs, computed once
by ``analytics.metrics``: 2.5 min on PostgreSQL, 8.5 min on SQLite; DuckDB's tables
15 s per run. All of it is cached; a rerun starts measuring at once.

    .venv/bin/python bench/segments.py --customers 100000
    .venv/bin/python bench/segments.py --database-url \\
        postgresql+psycopg://kizuna:kizuna@127.0.0.1:54329/kizuna_bench
"""

from __future__ import annotations

import argparse
import base64
import http.client
import multiprocessing
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
import uvicorn

from _shop import (
    EVENT_NAMES,
    NOW,
    US_PER_DAY,
    SegmentShop,
    best,
    cipher,
    event_properties,
    generate_shop,
    micros,
    open_shop,
)
from kizuna.analytics.metrics import refresh_customer_metrics
from kizuna.api import build_app
from kizuna.clock import FixedClock
from kizuna.segments.compiler import CompileContext, compile_counts, compile_segment
from kizuna.segments.definition import Condition, parse_condition, parse_spec
from kizuna.segments.membership import refresh_workspace
from kizuna.store.database import Database
from kizuna.store.engine import make_engine
from kizuna.store.scope import Scope
from kizuna.store.segments import get_segment, save_segment
from kizuna.store.tables import (
    carts,
    customer_metrics,
    events,
    order_items,
    orders,
    segment_members,
    segment_queue,
    segment_signals,
    segments,
)
from kizuna.store.workspaces import Workspace, create_write_key
from kizuna.worker import start_segment_refresh

CACHE = Path("/tmp/kizuna-bench-segments")
CATEGORY = "skincare"
BEHAVIOURAL: dict[str, Any] = {
    "type": "and",
    "conditions": [
        {"type": "event", "name": "Product Viewed", "at_least": 3, "within": {"days": 30},
         "where": [{"property": "category", "value": CATEGORY}]},
        {"type": "not", "condition": {"type": "orders", "within": {"days": 90}}},
        {"type": "channel", "channel": "email"},
    ],
}  # fmt: skip


# DuckDB: the anchor ---------------------------------------------------------------------------


def _frame(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, sql: str) -> None:
    """Create table ``name`` from ``frame`` (registered as ``raw``) with ``sql`` selecting."""
    con.register("raw", frame)
    con.execute(f"CREATE TABLE {name} AS {sql}")
    con.unregister("raw")


def _consent_frame(shop: SegmentShop) -> pd.DataFrame:
    p, index = shop.people, np.arange(shop.size)
    parts = [("email", p.email_status), ("line", p.line_status)]
    return pd.DataFrame({
        "idx": np.concatenate([index[status >= 0] for _, status in parts]),
        "channel": np.concatenate([np.full(int((status >= 0).sum()), c) for c, status in parts]),
        "opted": np.concatenate([status[status >= 0] for _, status in parts]),
    })  # fmt: skip


def _codes(codes: np.ndarray, names: Any) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int64), categories=pd.Index(list(names)))


def open_duckdb(shop: SegmentShop, ws: Workspace) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the same shop (the columns the segment reads, UUID keys).

    The email address is a stand-in key (the customer's number) on both sides of the
    suppression join, as ``email_hash`` is in the store.
    """
    con = duckdb.connect()
    p, e, o = shop.people, shop.events, shop.orders
    index = np.arange(shop.size)
    con.register("people", pd.DataFrame({"idx": index, "hex": p.hexes}))
    ids = "hex::UUID AS customer_id"
    joined = "FROM raw JOIN people USING (idx)"
    email = pd.arrays.IntegerArray(index, ~p.email)
    _frame(con, "customers", pd.DataFrame({"idx": index, "email_key": email}),
           f"SELECT {ids}, NULL::UUID AS merged_into, email_key {joined}")  # fmt: skip
    _frame(con, "consents", _consent_frame(shop),
           f"SELECT {ids}, channel, CASE opted WHEN 1 THEN 'opted_in' ELSE 'opted_out' END "
           f"AS status {joined}")  # fmt: skip
    _frame(con, "suppressions", pd.DataFrame({"address_key": index[p.suppressed]}),
           "SELECT 'email' AS channel, address_key FROM raw")  # fmt: skip
    events = pd.DataFrame({
        "idx": e.customer, "ts": e.at.astype("datetime64[us]"),
        "name": _codes(e.name, EVENT_NAMES),
        "props": event_properties(shop.catalogue).astype(object)[
            e.name.astype(np.int64) * len(shop.catalogue) + e.sku],
    })  # fmt: skip
    ws_id = f"'{ws.workspace_id}' AS workspace_id"
    _frame(con, "events", events,
           f"SELECT {ws_id}, {ids}, name::VARCHAR AS name, props::JSON AS properties, "
           f"ts AS occurred_at {joined}")  # fmt: skip
    orders = pd.DataFrame({
        "idx": o.customer, "ts": o.at.astype("datetime64[us]"), "total": o.total,
        "status": _codes(o.status, ["placed", "cancelled", "returned"]),
        "refunded": np.where(o.status == 2, o.total, 0.0),
    })  # fmt: skip
    _frame(con, "orders", orders,
           f"SELECT {ws_id}, {ids}, ts AS ordered_at, status::VARCHAR AS status, total, "
           f"refunded {joined}")  # fmt: skip
    con.unregister("people")
    return con


DUCKDB_COUNT = """
WITH viewed AS (
  SELECT customer_id FROM events
  WHERE workspace_id = $ws AND name = 'Product Viewed'
    AND occurred_at >= $since30 AND occurred_at <= $now
    AND json_extract_string(properties, '$.category') = $category
  GROUP BY customer_id HAVING count(*) >= 3
), ordered AS (
  SELECT DISTINCT customer_id FROM orders
  WHERE workspace_id = $ws AND status <> 'cancelled' AND total - refunded > 0
    AND ordered_at >= $since90 AND ordered_at <= $now
), suppressed AS (
  SELECT c.customer_id FROM suppressions s JOIN customers c ON s.address_key = c.email_key
  WHERE s.channel = 'email'
)
SELECT count(*) FROM customers c JOIN viewed USING (customer_id)
WHERE c.merged_into IS NULL AND c.email_key IS NOT NULL
  AND customer_id NOT IN (SELECT customer_id FROM ordered)
  AND customer_id IN (SELECT customer_id FROM consents
                      WHERE channel = 'email' AND status = 'opted_in')
  AND customer_id NOT IN (SELECT customer_id FROM suppressed)
"""


def duckdb_count(con: duckdb.DuckDBPyConnection, ws: Workspace) -> int:
    """The behavioural segment's size, answered by DuckDB."""
    now = NOW.replace(tzinfo=None)
    params = {"ws": str(ws.workspace_id), "now": now, "since30": now - timedelta(days=30),
              "since90": now - timedelta(days=90), "category": CATEGORY}  # fmt: skip
    row = con.execute(DUCKDB_COUNT, params).fetchone()
    assert row is not None
    return int(row[0])


# Part 1: the live count -----------------------------------------------------------------------


def _context(
    engine: sa.Engine, ws: Workspace, segments: dict[str, Condition] | None = None
) -> CompileContext:
    return CompileContext(ws, NOW, engine.dialect.name, segments or {})


def store_count(
    engine: sa.Engine,
    ws: Workspace,
    condition: Condition,
    segments: dict[str, Condition] | None = None,
) -> int:
    """Compile and count the segment in the store (what a live count does)."""
    query = compile_segment(condition, _context(engine, ws, segments)).subquery()
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(query)).scalar_one())


def store_counts(engine: sa.Engine, ws: Workspace, condition: Condition) -> dict[str, int]:
    """Compile and run the count with its reachability breakdown per channel."""
    query = compile_counts(condition, _context(engine, ws))
    with engine.connect() as conn:
        return {k: int(v) for k, v in conn.execute(query).one()._mapping.items()}


def run_count(engine: sa.Engine, ws: Workspace, shop: SegmentShop, repeat: int) -> None:
    """Part 1: time the count on the store and on DuckDB, and check they agree."""
    backend = engine.dialect.name
    condition = parse_condition(BEHAVIOURAL)
    count_s, count = best(repeat, lambda: store_count(engine, ws, condition))
    counts_s, counts = best(repeat, lambda: store_counts(engine, ws, condition))
    started = time.perf_counter()
    con = open_duckdb(shop, ws)
    print(f"  (DuckDB tables built in {time.perf_counter() - started:.1f} s, not timed)")
    duck_s, duck = best(repeat, lambda: duckdb_count(con, ws))
    aim = "met" if count_s < 1 else "missed"
    print(f"count: viewed {CATEGORY} ≥ 3 times in 30 days AND no order in 90 days AND email "
          f"reachable — {shop.size:,} customers, {len(shop.events.customer):,} events, "
          f"{len(shop.orders.customer):,} orders ({backend}):")  # fmt: skip
    print(f"  {'count on ' + backend:<34} {count_s:7.3f} s  {count_s / duck_s:6.1f}× DuckDB"
          f"  (aim < 1 s on postgresql: {aim})")  # fmt: skip
    print(f"  {'counts by channel on ' + backend:<34} {counts_s:7.3f} s  "
          f"{counts_s / duck_s:6.1f}× DuckDB")  # fmt: skip
    print(f"  {'DuckDB in memory (anchor)':<34} {duck_s:7.3f} s")
    same = count == counts["customers"] == counts["reachable_email"] == duck
    print(f"  counts agree: {'yes' if same else 'NO'} (store {count:,}, by channel "
          f"{counts['customers']:,} / reachable by email {counts['reachable_email']:,}, "
          f"DuckDB {duck:,})")  # fmt: skip


# Part 2: a full refresh of 20 segments --------------------------------------------------------

SEGMENTS: dict[str, dict[str, Any]] = {
    "tokyo_women": {"type": "and", "conditions": [
        {"type": "location", "prefectures": ["東京都"]},
        {"type": "trait", "trait": "gender", "op": "eq", "value": "female"}]},
    "kanto": {"type": "location", "regions": ["関東"]},
    "kansai_gold": {"type": "and", "conditions": [
        {"type": "location", "regions": ["関西"]},
        {"type": "trait", "trait": "membership_rank", "op": "in", "value": ["gold", "platinum"]}]},
    "birthday_week": {"type": "birthday", "within_next_days": 7},
    "new_members": {"type": "trait", "trait": "registered_at", "op": "within_last_days",
                    "value": 30},
    "email_reachable": {"type": "channel", "channel": "email"},
    "line_reachable": {"type": "channel", "channel": "line"},
    "contactable": {"type": "or", "conditions": [
        {"type": "segment", "segment": "email_reachable"},
        {"type": "segment", "segment": "line_reachable"}]},
    "skincare_fans": {"type": "event", "name": "Product Viewed", "at_least": 3,
                      "within": {"days": 30},
                      "where": [{"property": "category", "value": CATEGORY}]},
    "cart_abandoners": {"type": "and", "conditions": [
        {"type": "event", "name": "Checkout Started", "within": {"days": 7}},
        {"type": "event", "name": "Order Completed", "at_most": 0, "within": {"days": 7}}]},
    "browse_abandoners": {"type": "and", "conditions": [
        {"type": "event", "name": "Product Viewed", "at_least": 2, "within": {"days": 3}},
        {"type": "event", "name": "Product Added", "at_most": 0, "within": {"days": 3}}]},
    "lapsed_90": {"type": "and", "conditions": [
        {"type": "orders", "within": {"days": 365}},
        {"type": "not", "condition": {"type": "orders", "within": {"days": 90}}}]},
    "big_spenders": {"type": "orders", "measure": "total", "op": "gte", "value": 100_000,
                     "within": {"days": 365}},
    "repeat_buyers": {"type": "orders", "op": "gte", "value": 2},
    "high_aov": {"type": "orders", "measure": "average_value", "op": "gte", "value": 10_000},
    "last_order_180": {"type": "order_date", "which": "last", "op": "older_than_days",
                       "value": 180},
    "supplement_buyers": {"type": "bought", "categories": ["supplements"],
                          "within": {"days": 180}},
    "sale_hunters": {"type": "price_type", "buyer": "sale", "within": {"days": 365}},
    "champions": {"type": "metric", "metric": "rfm_segment", "op": "in",
                  "value": ["champions", "loyal"]},
    "win_back": {"type": "and", "conditions": [
        {"type": "segment", "segment": "lapsed_90"},
        {"type": "segment", "segment": "contactable"},
        {"type": "not", "condition": {"type": "segment", "segment": "big_spenders"}}]},
}  # fmt: skip


def bench_database(engine: sa.Engine) -> Database:
    """The store as the product opens it, with the clock standing at the shop's "now"."""
    return Database(engine, cipher(), FixedClock(NOW))


def save_segments(db: Database, ws: Workspace, specs: dict[str, dict[str, Any]]) -> None:
    """Forget earlier runs' segments and membership, then save ``specs`` (checked as usual)."""
    with db.write() as conn:
        for table in (segment_signals, segment_members, segment_queue, segments):
            conn.execute(table.delete().where(table.c.workspace_id == ws.workspace_id))
        scope = Scope(conn, db.cipher, ws.workspace_id, NOW)
        for key, condition in specs.items():
            spec = parse_spec({"key": key, "name": key, "condition": condition})
            save_segment(scope, spec, "bench")


def ensure_metrics(db: Database, ws: Workspace) -> None:
    """Compute the stored customer metrics (RFM, CLV) once; they stay in the cached store."""
    with db.read() as conn:
        mine = customer_metrics.c.workspace_id == ws.workspace_id
        if conn.execute(sa.select(customer_metrics.c.customer_id).where(mine).limit(1)).first():
            return
    started = time.perf_counter()
    refresh_customer_metrics(db, ws, as_of=NOW)
    print(f"  (customer metrics computed once in {time.perf_counter() - started:.1f} s)")


def run_refresh(engine: sa.Engine, ws: Workspace) -> None:
    """Part 2: full refreshes of 20 segments (first: everyone enters; then: steady state)."""
    db = bench_database(engine)
    ensure_metrics(db, ws)
    save_segments(db, ws, SEGMENTS)
    first = refresh_workspace(db, ws, NOW)
    steady = refresh_workspace(db, ws, NOW)
    conditions = {key: parse_condition(c) for key, c in SEGMENTS.items()}
    counts = {}
    for key, condition in conditions.items():
        started = time.perf_counter()
        store_count(engine, ws, condition, conditions)
        counts[key] = time.perf_counter() - started
    print(f"refresh of {len(first)} segments ({engine.dialect.name}), seconds per segment:")
    print(f"  {'segment':<18} {'members':>9} {'first':>7} {'steady':>7} {'count':>7}")
    for done, again in zip(first, steady, strict=True):
        print(f"  {done.key:<18} {done.entered:>9,} {done.seconds:7.2f} {again.seconds:7.2f}"
              f" {counts[done.key]:7.2f}")  # fmt: skip
    total_first = sum(d.seconds for d in first)
    total_steady = sum(d.seconds for d in steady)
    total_count = sum(counts.values())
    print(f"  full refresh of 20 segments: {total_first:.1f} s with every member entering, "
          f"{total_steady:.1f} s steady — {total_steady / total_count:.2f}× counting them "
          f"({total_count:.1f} s, the anchor)")  # fmt: skip


# Part 3: event-to-membership latency while ingesting ----------------------------------------

LATENCY_KEY = "checkout_today"
LATENCY_SEGMENT = {"type": "event", "name": "Checkout Started", "within": {"days": 1}}
BATCH = 100
WATCHED_PER_BATCH = 2  # customers whose single Checkout Started event is timed
_PREFIX = "lat-"  # message ids (and "L-" order ids) of ingested events, deleted afterwards


def _message(n: int, user: int, name: str, props: dict[str, Any]) -> dict[str, Any]:
    if name == "Order Completed":
        props = {**props, "order_id": f"L-{n:09d}"}
    stamp = (NOW - timedelta(seconds=30)).isoformat()
    return {"type": "track", "event": name, "userId": f"C{user:07d}", "properties": props,
            "messageId": f"{_PREFIX}{n:09d}", "timestamp": stamp}  # fmt: skip


def latency_stream(shop: SegmentShop, total: int) -> tuple[list[bytes], np.ndarray]:
    """Batches of track calls from registered customers, and per batch the watched customers.

    Each watched customer was not in the segment (no Checkout Started in the last day)
    and gets one Checkout Started; everyone else sends the other events of the shop.
    """
    rng = np.random.default_rng([shop.seed, 77])
    p, e = shop.people, shop.events
    recent = np.zeros(shop.size, dtype=bool)
    recent[e.customer[(e.name == EVENT_NAMES.index("Checkout Started"))
                      & (e.at >= micros(NOW) - US_PER_DAY)]] = True  # fmt: skip
    batches = total // BATCH
    watched = rng.choice(np.flatnonzero(p.registered & ~recent), (batches, WATCHED_PER_BATCH),
                         replace=False)  # fmt: skip
    others = rng.choice(np.flatnonzero(p.registered), (batches, BATCH - WATCHED_PER_BATCH))
    names = [n for n in EVENT_NAMES if n != "Checkout Started"]
    props = [orjson.loads(text) for text in event_properties(shop.catalogue).tolist()]
    bodies, n = [], 0
    for batch in range(batches):
        messages = []
        for user in watched[batch].tolist():
            messages.append(_message(n, user, "Checkout Started", {"value": 3000.0}))
            n += 1
        for user in others[batch].tolist():
            name = names[int(rng.integers(len(names)))]
            sku = int(rng.integers(len(shop.catalogue)))
            chosen = props[EVENT_NAMES.index(name) * len(shop.catalogue) + sku]
            messages.append(_message(n, user, name, chosen))
            n += 1
        rng.shuffle(messages)
        bodies.append(orjson.dumps({"batch": messages}))
    return bodies, watched


def post_batches(job: tuple[int, str, list[bytes]]) -> list[float]:
    """A client process: post each body in turn; the wall time each one's answer arrived."""
    port, key, payloads = job
    conn = http.client.HTTPConnection("127.0.0.1", port)
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    answered = []
    for body in payloads:
        conn.request("POST", "/v1/batch", body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}")
        answered.append(time.time())
    conn.close()
    return answered


def _serve(db: Database) -> tuple[uvicorn.Server, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(build_app(db), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off", ws="none", access_log=False)  # fmt: skip
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, port


def _watch(db: Database, ws: Workspace, segment_id: Any, pending: set[Any],
           seen: dict[Any, float], stop: threading.Event) -> None:  # fmt: skip
    """Poll the segment's signals every 10 ms; note when each watched customer's appears."""
    s = segment_signals.c
    while not stop.is_set() and pending:
        query = sa.select(s.customer_id).where(
            s.workspace_id == ws.workspace_id, s.segment_id == segment_id, s.kind == "entered",
            s.customer_id.in_(list(pending)))  # fmt: skip
        with db.read() as conn:
            found = conn.execute(query).scalars().all()
        now = time.time()
        for customer in found:
            seen[customer] = now
            pending.discard(customer)
        stop.wait(0.01)


def forget_ingested(db: Database, ws: Workspace) -> None:
    """Delete what a latency run ingested, so the cached shop stays as generated."""
    mine = ws.workspace_id
    with db.write() as conn:
        conn.execute(events.delete().where(events.c.workspace_id == mine,
                                           events.c.message_id >= _PREFIX,
                                           events.c.message_id < "lat."))  # fmt: skip
        for table in (orders, order_items):
            conn.execute(table.delete().where(table.c.workspace_id == mine,
                                              table.c.order_id >= "L-",
                                              table.c.order_id < "L."))  # fmt: skip
        conn.execute(carts.delete().where(carts.c.workspace_id == mine))


def _ingest(db: Database, ws: Workspace, bodies: list[bytes], clients: int) -> list[float]:
    with db.write() as conn:
        key = create_write_key(conn, ws.workspace_id, "bench", NOW)
    server, port = _serve(db)
    jobs = [(port, key, bodies[i::clients]) for i in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        pool.map(post_batches, [(port, key, [])] * clients)  # start the workers before timing
        answered = pool.map(post_batches, jobs)
    server.should_exit = True
    times = [0.0] * len(bodies)
    for i, client_times in enumerate(answered):
        times[i::clients] = client_times
    return times


def segment_worker(url: str, stop: Any) -> None:
    """A ``kizuna worker`` process: the queue drain and the schedule, until ``stop`` is set."""
    db = bench_database(make_engine(url))
    stopping = start_segment_refresh(db, 0)
    stop.wait()
    stopping.set()
    db.dispose()


def _start_worker(db: Database) -> Callable[[], None]:
    """Start the segment refresher as each deployment runs it; returns how to stop it.

    SQLite: threads inside the serving process (``kizuna serve``). PostgreSQL: a
    process of its own (``kizuna worker``), so it does not share the server's GIL.
    """
    if db.dialect == "sqlite":
        stop_threads = start_segment_refresh(db, 0)
        return stop_threads.set
    context = multiprocessing.get_context("spawn")
    stop_process = context.Event()
    url = db.engine.url.render_as_string(hide_password=False)
    process = context.Process(target=segment_worker, args=(url, stop_process))
    process.start()

    def stop() -> None:
        stop_process.set()
        process.join()

    return stop


def run_latency(engine: sa.Engine, ws: Workspace, shop: SegmentShop, total: int,
                clients: int) -> None:  # fmt: skip
    """Part 3: ingest at full speed over HTTP while the segment worker drains the queue."""
    db = bench_database(engine)
    forget_ingested(db, ws)
    save_segments(db, ws, {**SEGMENTS, LATENCY_KEY: LATENCY_SEGMENT})
    started = time.perf_counter()
    refresh_workspace(db, ws, NOW)
    print(f"  (segments refreshed in full before ingesting: {time.perf_counter() - started:.1f} s)")
    bodies, watched = latency_stream(shop, total)
    with db.read() as conn:
        segment_id = get_segment(Scope(conn, db.cipher, ws.workspace_id, NOW), LATENCY_KEY)
    ids = [uuid.UUID(h) for h in shop.people.hexes[watched.ravel()].tolist()]
    pending, seen, stop_watch = set(ids), dict[Any, float](), threading.Event()
    watcher = threading.Thread(target=_watch, args=(db, ws, segment_id.segment_id, pending, seen,
                                                    stop_watch))  # fmt: skip
    stop_worker = _start_worker(db)
    watcher.start()
    sent = time.time()
    answered = _ingest(db, ws, bodies, clients)
    rate = len(bodies) * BATCH / (max(answered) - sent)  # fmt: skip
    watcher.join(timeout=60)
    stop_watch.set()
    stop_worker()
    returned = np.repeat(np.array(answered), WATCHED_PER_BATCH)
    latency = np.array([seen[c] - t for c, t in zip(ids, returned, strict=True) if c in seen])
    p50, p95 = (float(np.percentile(latency, q)) for q in (50, 95)) if len(latency) else (0, 0)
    events_sent = len(bodies) * BATCH
    print(f"latency: event → segment signal while ingesting ({engine.dialect.name}, "
          f"{events_sent:,} track events in batches of {BATCH}, {clients} clients):")  # fmt: skip
    print(f"  ingest rate meanwhile            {rate:9,.0f} events/s")
    print(f"  latency p50 {p50:6.3f} s, p95 {p95:6.3f} s, max {latency.max():6.3f} s over "
          f"{len(latency)} of {len(ids)} watched customers  (aim p95 < 1 s: "
          f"{'met' if p95 < 1 and len(latency) == len(ids) else 'missed'})")  # fmt: skip
    forget_ingested(db, ws)


def main() -> None:
    """Generate or reuse the shop and run the selected parts."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events-per-customer", type=int, default=10)
    parser.add_argument("--orders-per-customer", type=int, default=10)
    parser.add_argument("--database-url", default=None, help="default: a cached SQLite file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("count", "refresh", "latency"))
    parser.add_argument("--latency-events", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=2, help="HTTP client processes")
    args = parser.parse_args()
    started = time.perf_counter()
    shop = generate_shop(args.customers, args.events_per_customer, args.orders_per_customer,
                         args.seed)  # fmt: skip
    events, orders = len(shop.events.customer), len(shop.orders.customer)
    print(f"generated {shop.size:,} customers, {events:,} events and {orders:,} orders "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    engine, ws = open_shop(args.database_url, shop, CACHE)
    if args.only in (None, "count"):
        run_count(engine, ws, shop, args.repeat)
    if args.only in (None, "refresh"):
        run_refresh(engine, ws)
    if args.only in (None, "latency"):
        run_latency(engine, ws, shop, args.latency_events, args.clients)
    engine.dispose()


if __name__ == "__main__":
    main()
