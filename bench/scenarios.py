"""Benchmark the scenario engine: node transitions/s, a whole segment entering, trigger latency.

The shop is ``bench/_shop.py``'s (customers with identities, consent — 88 % with an
email address, 68 % of those opted in, 2.5 % suppressed — and one event each),
cached per size: a SQLite file under /tmp/kizuna-bench-scenarios or a PostgreSQL
workspace. The clock stands at the shop's "now", so every run is due at once.

Parts (``--only`` picks one; ``--customers`` sets the shop size, else each part's own):

* ``transitions`` (default 20,000 customers): every customer entered (one INSERT …
  SELECT, not timed) into split → update → send → branch → send → exit, then
  ``ScenarioEngine.run_until_idle`` in 1 and 4 worker processes (PostgreSQL; 1 on
  SQLite, which has one writer), each process its own engine as ``kizuna worker``
  runs. Transitions = rows written to ``scenario_steps``. The anchor: a plain
  INSERT of as many step rows (executemany, as many rows per transaction as the
  engine wrote per batch) — the floor of what writing the steps costs.
* ``segment`` (default 100,000 customers; ``--customers 1000000`` for the issue's
  figure): a segment of every customer, entered by a due schedule trigger into a
  broadcast scenario (branch on email reachability → A/B split → send → wait 3 days →
  …) exactly as ``kizuna worker`` does it (the calendar step: re-entry, priority and
  holdout rules per customer, chunks of 1,000 per transaction), then advanced until
  every run has reached its first send (an intent in the outbox) or left at the
  branch. Timed from the engines' start to the last intent. Aim: minutes for a
  million (Mautic: days).
* ``latency`` (default 20,000 customers): track calls posted to ``/v1/batch`` (100
  per batch, 2 of them a Checkout Started with a unique ``bench_key``) while the
  engine runs in a thread (``start_scenario_engine``, default poll 0.2 s) beside the
  server, as ``kizuna serve`` runs it; a live scenario triggered by Checkout Started
  keys its runs by ``bench_key``. Latency: from the answer to the batch to the run's
  row (polled every 10 ms). Paced at ``--latency-rates`` events/s (0: as fast as the
  server answers). Aim: p95 under 1 s.

Building a shop (2 cores, not timed): 20,000 customers in 3 s; 100,000 in 15 s;
1,000,000 in about 2.5 min (PostgreSQL) — generation and load are cached.

    .venv/bin/python bench/scenarios.py
    .venv/bin/python bench/scenarios.py --database-url \\
        postgresql+psycopg://kizuna:kizuna@127.0.0.1:54329/kizuna_bench2
    .venv/bin/python bench/scenarios.py --only segment --customers 1000000 --database-url …
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import http.client
import multiprocessing
import pstats
import random
import socket
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
import uvicorn

from _scenario_shop import (
    WorkerResult,
    count_rows,
    enter_customers,
    open_scenario_shop,
    publish,
    reset_scenarios,
    run_workers,
)
from _shop import NOW
from kizuna.api import build_app
from kizuna.scenarios.engine import ScenarioEngine, start_scenario_engine
from kizuna.segments.compiler import compile_segment
from kizuna.segments.definition import parse_condition, parse_spec
from kizuna.store.database import Database
from kizuna.store.scope import Scope
from kizuna.store.segments import compile_context, save_segment
from kizuna.store.tables import (
    carts,
    customers,
    events,
    messages,
    scenario_runs,
    scenario_steps,
    segment_members,
)
from kizuna.store.workspaces import Workspace, create_write_key

DEFAULT_CUSTOMERS = {"transitions": 20_000, "segment": 100_000, "latency": 20_000}
BATCH = 500  # the engine's default batch


# Part 1: node transitions per second ----------------------------------------------------------


def transitions_spec(token: str) -> dict[str, Any]:
    """Six cheap nodes, no waits: every transition happens in the run's first walk."""
    return {
        "key": "bench-transitions", "name": "遷移ベンチ", "trigger": {"type": "api"},
        "entry": {"reentry": "every_time"}, "start": "ab",
        "nodes": [
            {"id": "ab", "type": "split", "paths": [{"weight": 50, "next": "mark", "label": "A"},
                                                    {"weight": 50, "next": "mark", "label": "B"}]},
            # A new value each round, so the profile update writes every time.
            {"id": "mark", "type": "update", "attributes": {"bench_round": token},
             "next": "hello"},
            {"id": "hello", "type": "send", "channel": "email", "template": "bench-a",
             "next": "vip"},
            {"id": "vip", "type": "branch", "condition": {
                "type": "trait", "trait": "membership_rank", "op": "in",
                "value": ["gold", "platinum"]}, "yes": "vip-news", "no": "news"},
            {"id": "vip-news", "type": "send", "channel": "email", "template": "bench-b",
             "next": "done"},
            {"id": "news", "type": "send", "channel": "email", "template": "bench-a",
             "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }  # fmt: skip


def _everyone(ws: Workspace) -> sa.Select[Any]:
    c = customers.c
    return sa.select(c.customer_id).where(
        c.workspace_id == ws.workspace_id, c.merged_into.is_(None)
    )


def _profiled(db: Database) -> WorkerResult:
    """One engine in this process under cProfile; prints where the time went."""
    engine = ScenarioEngine(db, batch_size=BATCH)
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    report = engine.run_until_idle(rounds=1_000_000)
    profile.disable()
    seconds = time.perf_counter() - started
    stats = pstats.Stats(profile)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    return WorkerResult(seconds, report.advanced, (report.advanced,))


def _transition_round(
    db: Database, ws: Workspace, workers: int, profile: bool
) -> tuple[int, float]:
    """Enter everyone (not timed), run the engine; (transitions written, seconds)."""
    reset_scenarios(db, ws)
    scenario = publish(db, ws, transitions_spec(uuid.uuid4().hex[:8]))
    with db.write() as conn:
        entered = enter_customers(conn, ws, scenario, _everyone(ws))
    result = _profiled(db) if profile else run_workers(db, workers, BATCH)
    steps = count_rows(db, ws, scenario_steps)
    active = count_rows(db, ws, scenario_runs, scenario_runs.c.status == "active")
    assert result.advanced == entered and active == 0, (result, entered, active)
    return steps, result.seconds


def steps_anchor(db: Database, ws: Workspace, total: int, per_transaction: int) -> float:
    """Seconds to INSERT ``total`` step rows, ``per_transaction`` at a time (rows built first)."""
    scenario_id, customer = uuid.uuid4(), uuid.uuid4()
    outcomes = ("passed", "passed", "sent", "passed", "sent", "exited")
    rows = []
    run_id = uuid.uuid4()
    for n in range(total):
        k = n % len(outcomes)
        run_id = uuid.uuid4() if k == 0 else run_id
        rows.append({
            "workspace_id": ws.workspace_id, "run_id": run_id, "step": k + 1,
            "scenario_id": scenario_id, "version": 1, "node_id": f"node-{k}",
            "customer_id": customer, "at": NOW, "outcome": outcomes[k],
            "detail": "A" if outcomes[k] == "passed" else None,
        })  # fmt: skip
    started = time.perf_counter()
    for start in range(0, total, per_transaction):
        with db.write() as conn:
            conn.execute(scenario_steps.insert(), rows[start : start + per_transaction])
    seconds = time.perf_counter() - started
    s = scenario_steps.c
    with db.write() as conn:
        conn.execute(scenario_steps.delete().where(s.workspace_id == ws.workspace_id,
                                                   s.scenario_id == scenario_id))  # fmt: skip
    return seconds


def run_transitions(db: Database, ws: Workspace, size: int, workers: list[int],
                    profile: bool) -> None:  # fmt: skip
    """Part 1: transitions/s with each worker count, against the plain INSERT of the steps."""
    backend = db.dialect
    if backend == "sqlite":
        workers = [1]  # one writer: more workers only take turns
    rates: dict[int, float] = {}
    steps = 0
    for count in workers:
        steps, seconds = _transition_round(db, ws, count, profile and count == workers[0])
        rates[count] = steps / seconds
    per_batch = max(1, round(steps / max(1, -(-size // BATCH))))
    anchor = steps / steps_anchor(db, ws, steps, per_batch)
    print(
        f"transitions: {size:,} customers entered into split → update → send → branch → "
        f"send → exit ({backend}, batches of {BATCH} runs, {steps:,} steps written):"
    )
    print(f"  {'plain INSERT of the steps (anchor)':<38} {anchor:9,.0f} rows/s "
          f"({per_batch:,} per transaction)")  # fmt: skip
    for count, rate in rates.items():
        label = f"engine, {count} worker{'s' if count > 1 else ''}"
        print(f"  {label:<38} {rate:9,.0f} transitions/s  ratio to anchor {rate / anchor:.2f}")
    if len(rates) > 1:
        low, high = min(rates), max(rates)
        print(f"  {high} workers / {low} worker: {rates[high] / rates[low]:.2f}× "
              f"(2 cores shared with the database server)")  # fmt: skip


# Part 2: a whole segment enters a broadcast ----------------------------------------------------

SEGMENT_KEY = "bench-everyone"
EVERYONE = {"type": "trait", "trait": "first_seen_at", "op": "exists"}
REACHABLE = {"type": "channel", "channel": "email"}


def broadcast_spec() -> dict[str, Any]:
    """A scheduled broadcast to a segment: reachable by email → A/B → send → wait → follow-up."""
    return {
        "key": "bench-broadcast", "name": "一斉配信ベンチ",
        # Due a minute before the shop's "now": the engines enter the segment at once.
        "trigger": {"type": "schedule", "segment": SEGMENT_KEY,
                    "at": (NOW - timedelta(minutes=1)).isoformat()},
        "start": "reach",
        "nodes": [
            {"id": "reach", "type": "branch", "condition": REACHABLE, "yes": "ab",
             "no": "unreachable"},
            {"id": "ab", "type": "split", "paths": [
                {"weight": 50, "next": "send-a", "label": "A"},
                {"weight": 50, "next": "send-b", "label": "B"}]},
            {"id": "send-a", "type": "send", "channel": "email", "template": "bench-a",
             "next": "wait"},
            {"id": "send-b", "type": "send", "channel": "email", "template": "bench-b",
             "next": "wait"},
            {"id": "wait", "type": "wait", "duration": {"days": 3}, "next": "follow-up"},
            {"id": "follow-up", "type": "send", "channel": "email", "template": "bench-a",
             "next": "done"},
            {"id": "done", "type": "exit"},
            {"id": "unreachable", "type": "exit"},
        ],
    }  # fmt: skip


def _segment_members(db: Database, ws: Workspace) -> tuple[uuid.UUID, int, int]:
    """(Re)build the segment of everyone by one INSERT … SELECT; (id, members, reachable)."""
    with db.write() as conn:
        scope = Scope(conn, db.cipher, ws.workspace_id, NOW)
        saved = save_segment(scope, parse_spec({"key": SEGMENT_KEY, "name": "全顧客",
                                                "condition": EVERYONE}), "bench")  # fmt: skip
        m = segment_members.c
        conn.execute(segment_members.delete().where(m.workspace_id == ws.workspace_id,
                                                    m.segment_id == saved.segment_id))  # fmt: skip
        who = compile_segment(parse_condition(EVERYONE), compile_context(scope)).subquery()
        values = [sa.literal(ws.workspace_id, m.workspace_id.type),
                  sa.literal(saved.segment_id, m.segment_id.type), who.c.customer_id,
                  sa.literal(NOW, m.entered_at.type)]  # fmt: skip
        names = ["workspace_id", "segment_id", "customer_id", "entered_at"]
        conn.execute(segment_members.insert().from_select(names, sa.select(*values)))
        members = count_in(conn, _members_of(ws, saved.segment_id))
        reachable = count_in(conn, compile_segment(parse_condition(REACHABLE),
                                                   compile_context(scope)))  # fmt: skip
    return saved.segment_id, members, reachable


def count_in(conn: sa.Connection, query: sa.Select[Any]) -> int:
    """How many rows ``query`` selects."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one())


def _members_of(ws: Workspace, segment_id: uuid.UUID) -> sa.Select[Any]:
    m = segment_members.c
    mine = sa.and_(m.workspace_id == ws.workspace_id, m.segment_id == segment_id)
    return sa.select(m.customer_id).where(mine, m.exited_at.is_(None))


def run_segment(db: Database, ws: Workspace, workers: int) -> None:
    """Part 2: a whole segment enters; time until every first send intent is in the outbox."""
    reset_scenarios(db, ws)
    started = time.perf_counter()
    _, members, reachable = _segment_members(db, ws)
    print(f"  (segment of {members:,} members built in {time.perf_counter() - started:.1f} s, "
          "not timed)")  # fmt: skip
    publish(db, ws, broadcast_spec())
    result = run_workers(db, workers, BATCH)
    entered = count_rows(db, ws, scenario_runs)
    intents = count_rows(db, ws, messages, messages.c.step.in_(["send-a", "send-b"]))
    waiting = count_rows(db, ws, scenario_runs, scenario_runs.c.node_id == "wait",
                         scenario_runs.c.status == "active")  # fmt: skip
    print(f"segment entry: {members:,} customers of segment {SEGMENT_KEY!r} enter a broadcast "
          f"({db.dialect}, {workers} engine worker{'s' if workers > 1 else ''}):")  # fmt: skip
    print(f"  {'entered and advanced to the first send':<40} {result.seconds:8.1f} s  "
          f"{entered:,} runs, {entered / result.seconds:9,.0f} runs/s  "
          f"(aim: minutes for 1,000,000; Mautic: days)")  # fmt: skip
    same = intents == reachable == waiting
    print(
        f"  first send intents in the outbox: {intents:,} (email-reachable members: "
        f"{reachable:,}; the rest left at the branch) — {'all there' if same else 'MISSING'}"
    )


# Part 3: event to run latency ----------------------------------------------------------------

LATENCY_BATCH = 100
WATCHED_PER_BATCH = 2  # Checkout Started events per batch, each timed to its run
_PREFIX = "slat-"  # message ids of ingested events, deleted afterwards
_OTHER_EVENTS = ("Product Viewed", "Product List Viewed", "Products Searched", "Product Added")


def latency_spec() -> dict[str, Any]:
    """Checkout Started starts a run per ``bench_key``: a reminder, then the end."""
    return {
        "key": "bench-latency", "name": "トリガー遅延ベンチ",
        "trigger": {"type": "event", "event": "Checkout Started"},
        "entry": {"reentry": "every_time", "key_property": "bench_key"},
        "start": "remind",
        "nodes": [
            {"id": "remind", "type": "send", "channel": "email", "template": "bench-a",
             "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }  # fmt: skip


def latency_stream(users: list[str], total: int, run: str) -> tuple[list[bytes], list[list[str]]]:
    """Batches of track calls and, per batch, the ``bench_key`` of its Checkout Started events."""
    rng = random.Random(7)
    stamp = (NOW - timedelta(seconds=30)).isoformat()
    bodies, keys, n = [], [], 0
    for batch in range(total // LATENCY_BATCH):
        items, watched = [], []
        for i in range(LATENCY_BATCH):
            if i < WATCHED_PER_BATCH:
                key = f"{run}-{batch}-{i}"
                name, props = "Checkout Started", {"bench_key": key, "value": 6800.0}
                watched.append(key)
            else:
                name = rng.choice(_OTHER_EVENTS)
                props = {"product_id": f"P{rng.randrange(500)}", "price": 1200.0}
            items.append({"type": "track", "event": name, "userId": rng.choice(users),
                          "properties": props, "messageId": f"{_PREFIX}{run}-{n}",
                          "timestamp": stamp})  # fmt: skip
            n += 1
        rng.shuffle(items)
        bodies.append(orjson.dumps({"batch": items}))
        keys.append(watched)
    return bodies, keys


def post_paced(job: tuple[int, str, list[bytes], float]) -> list[float]:
    """A client process: post each body, ``interval`` s apart (0: back to back); answer times."""
    port, key, payloads, interval = job
    conn = http.client.HTTPConnection("127.0.0.1", port)
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    answered, started = [], time.monotonic()
    for i, body in enumerate(payloads):
        time.sleep(max(0.0, started + i * interval - time.monotonic()))
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


class _Watcher:
    """Polls ``scenario_runs`` every 10 ms; notes when each awaited run key first appears."""

    def __init__(self, db: Database, ws: Workspace, scenario_id: uuid.UUID, keys: set[str]):
        self.db, self.ws, self.scenario_id = db, ws, scenario_id
        self.pending, self.seen = set(keys), dict[str, float]()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        r = scenario_runs.c
        while not self.stop.is_set() and self.pending:
            query = sa.select(r.run_key).where(r.workspace_id == self.ws.workspace_id,
                                               r.scenario_id == self.scenario_id,
                                               r.run_key.in_(list(self.pending)))  # fmt: skip
            with self.db.read() as conn:
                found = conn.execute(query).scalars().all()
            now = time.time()
            for key in found:
                self.seen[key] = now
                self.pending.discard(key)
            self.stop.wait(0.01)


def forget_ingested(db: Database, ws: Workspace) -> None:
    """Delete the events a latency run ingested, so the cached shop stays as generated."""
    e = events.c
    with db.write() as conn:
        ingested = sa.and_(e.message_id >= _PREFIX, e.message_id < "slat.")
        conn.execute(events.delete().where(e.workspace_id == ws.workspace_id, ingested))
        conn.execute(carts.delete().where(carts.c.workspace_id == ws.workspace_id))


def _latency_round(db: Database, ws: Workspace, users: list[str], total: int,
                   rate: float) -> tuple[np.ndarray, float, int]:  # fmt: skip
    """One paced (or flat-out) stream; latencies, the ingest rate, and runs awaited."""
    reset_scenarios(db, ws)
    scenario = publish(db, ws, latency_spec())
    bodies, keys = latency_stream(users, total, uuid.uuid4().hex[:8])
    with db.write() as conn:
        write_key = create_write_key(conn, ws.workspace_id, "bench", NOW)
    watcher = _Watcher(db, ws, scenario.scenario_id, {k for ks in keys for k in ks})
    stop_engine = start_scenario_engine(db)
    server, port = _serve(db)
    interval = LATENCY_BATCH / rate if rate else 0.0
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pool.apply(post_paced, ((port, write_key, [], 0.0),))  # start the client before timing
        watcher.thread.start()
        started = time.time()
        answered = pool.apply(post_paced, ((port, write_key, bodies, interval),))
    ingest_rate = len(bodies) * LATENCY_BATCH / (answered[-1] - started)
    watcher.thread.join(timeout=60)
    watcher.stop.set()
    server.should_exit = True
    stop_engine.set()
    latency = [watcher.seen[k] - at for ks, at in zip(keys, answered, strict=True) for k in ks
               if k in watcher.seen]  # fmt: skip
    forget_ingested(db, ws)
    return np.array(latency), ingest_rate, sum(len(k) for k in keys)


def run_latency(db: Database, ws: Workspace, total: int, rates: list[float]) -> None:
    """Part 3: event ingested → run started, at each rate."""
    forget_ingested(db, ws)
    c = customers.c
    with db.read() as conn:
        users = list(conn.execute(sa.select(c.shop_customer_id).where(
            c.workspace_id == ws.workspace_id, c.shop_customer_id.is_not(None))
            .order_by(c.shop_customer_id).limit(5_000)).scalars())  # fmt: skip
    print(f"latency: event ingested → run started ({db.dialect}, {total:,} track events per "
          f"rate in batches of {LATENCY_BATCH}, {WATCHED_PER_BATCH} Checkout Started each; "
          "engine thread beside the server, poll 0.2 s):")  # fmt: skip
    for rate in rates:
        latency, ingest_rate, awaited = _latency_round(db, ws, users, total, rate)
        wanted = f"{rate:,.0f} events/s" if rate else "flat out"
        p50, p95 = (float(np.percentile(latency, q)) for q in (50, 95))
        met = "met" if p95 < 1 and len(latency) == awaited else "missed"
        print(f"  {wanted:<16} ingested at {ingest_rate:7,.0f} events/s: p50 {p50:6.3f} s, "
              f"p95 {p95:6.3f} s, max {latency.max():6.3f} s over {len(latency)} of {awaited} "
              f"runs (aim p95 < 1 s: {met})")  # fmt: skip


def main() -> None:
    """Open (or build) the shop and run the selected parts."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database-url", default=None, help="default: a cached SQLite file")
    parser.add_argument("--customers", type=int, default=None,
                        help="shop size (default per part: transitions and latency 20,000, "
                             "segment 100,000)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--only", choices=("transitions", "segment", "latency"))
    parser.add_argument("--workers", default="1,4",
                        help="engine processes for transitions (PostgreSQL)")  # fmt: skip
    parser.add_argument(
        "--segment-workers",
        type=int,
        default=None,
        help="engine processes for segment (default: 4 on PostgreSQL, else 1)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the first transitions round in this process under cProfile",
    )
    parser.add_argument("--latency-events", type=int, default=10_000)
    parser.add_argument(
        "--latency-rates",
        default="500,0",
        help="events/s to ingest at, one round each (0: as fast as answered)",
    )
    args = parser.parse_args()
    for part in ("transitions", "segment", "latency"):
        if args.only not in (None, part):
            continue
        size = args.customers or DEFAULT_CUSTOMERS[part]
        print(f"{part}: shop of {size:,} customers")
        db, ws = open_scenario_shop(args.database_url, size, args.seed)
        if part == "transitions":
            workers = [int(w) for w in args.workers.split(",")]
            run_transitions(db, ws, size, workers, args.profile)
        elif part == "segment":
            default = 4 if db.dialect == "postgresql" else 1
            run_segment(db, ws, args.segment_workers or default)
        else:
            rates = [float(r) for r in args.latency_rates.split(",")]
            run_latency(db, ws, args.latency_events, rates)
        db.dispose()


if __name__ == "__main__":
    main()
