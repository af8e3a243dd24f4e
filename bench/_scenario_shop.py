"""Shared by the scenario benchmarks: the shop, resetting its scenario state, entering
customers in bulk, and engine workers in processes of their own.

The shop is ``bench/_shop.py``'s generated shop (customers with identities, consent
and suppressions; one behaviour event each, so the event names a trigger checks are
known) in a SQLite file under /tmp/kizuna-bench-scenarios or a PostgreSQL workspace.
Its clock stands at ``_shop.NOW``, so every run is due at once and the figures do
not depend on the wall clock.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from _shop import NOW, SegmentShop, analyze, cipher, generate_shop, open_shop
from kizuna.clock import FixedClock
from kizuna.content.library import save_template
from kizuna.content.spec import parse_template_spec
from kizuna.scenarios.definition import ScenarioSpec
from kizuna.scenarios.engine import ScenarioEngine
from kizuna.scenarios.inbox import forget_watched
from kizuna.store.database import Database
from kizuna.store.engine import make_engine
from kizuna.store.operation_log import Actor
from kizuna.store.scenarios import get_scenario, publish_scenario, save_scenario
from kizuna.store.scope import Scope
from kizuna.store.tables import (
    messages,
    scenario_cursors,
    scenario_inbox,
    scenario_runs,
    scenario_steps,
    scenario_versions,
    scenarios,
)
from kizuna.store.templates import get_templates
from kizuna.store.workspaces import Workspace

__all__ = [
    "CACHE",
    "Published",
    "WorkerResult",
    "bench_database",
    "count_rows",
    "enter_customers",
    "open_scenario_shop",
    "publish",
    "reset_scenarios",
    "run_workers",
    "url_of",
]

CACHE = Path("/tmp/kizuna-bench-scenarios")
TEMPLATES = [
    {"key": "bench-a", "channel": "email", "name": "ベンチA", "subject": "{{ last_name | "
     "default('お客') }}様へのおすすめ", "body": "今週のおすすめです。"},
    {"key": "bench-b", "channel": "email", "name": "ベンチB", "subject": "新商品のお知らせ",
     "body": "新商品が入荷しました。"},
]  # fmt: skip


def bench_database(engine: sa.Engine) -> Database:
    """The store as the product opens it, with the clock standing at the shop's "now"."""
    return Database(engine, cipher(), FixedClock(NOW))


def url_of(db: Database) -> str:
    """The store's URL with its password, for worker processes."""
    return db.engine.url.render_as_string(hide_password=False)


def open_scenario_shop(url: str | None, customers: int, seed: int) -> tuple[Database, Workspace]:
    """The cached shop of ``customers`` customers, with the benchmark's templates saved."""
    started = time.perf_counter()
    shop: SegmentShop = generate_shop(customers, 1, 0, seed)
    print(f"  (generated {customers:,} customers in {time.perf_counter() - started:.1f} s)")
    engine, ws = open_shop(url, shop, CACHE)
    db = bench_database(engine)
    with db.write() as conn:
        scope = Scope(conn, db.cipher, ws.workspace_id, NOW)
        saved = get_templates(scope, [t["key"] for t in TEMPLATES])
        for template in TEMPLATES:
            if template["key"] not in saved:
                save_template(scope, parse_template_spec(template), "bench")
    return db, ws


def reset_scenarios(db: Database, ws: Workspace) -> None:
    """Forget every scenario, run, step, inbox item and message of the workspace."""
    tables = (scenario_steps, scenario_runs, scenario_inbox, scenario_cursors, messages,
              scenario_versions, scenarios)  # fmt: skip
    with db.write() as conn:
        for table in tables:
            conn.execute(table.delete().where(table.c.workspace_id == ws.workspace_id))
    forget_watched(ws.workspace_id)
    if db.dialect == "postgresql":
        # Each round starts from clean tables and fresh statistics, not from the
        # previous round's dead rows (autovacuum would get there, at its own pace).
        analyze(db.engine, list(tables))


@dataclass(frozen=True, slots=True)
class Published:
    """A scenario published for a benchmark."""

    scenario_id: uuid.UUID
    version: int
    start: str


def publish(db: Database, ws: Workspace, spec: dict[str, Any]) -> Published:
    """Save and publish ``spec`` (checked as a marketer's would be)."""
    parsed = ScenarioSpec.model_validate(spec)
    with db.write() as conn:
        scope = Scope(conn, db.cipher, ws.workspace_id, NOW)
        save_scenario(scope, parsed, "bench")
        version = publish_scenario(scope, parsed.key, Actor("bench", "bench"))
        saved = get_scenario(scope, parsed.key)
    forget_watched(ws.workspace_id)  # ingestion in this process sees the new trigger at once
    return Published(saved.scenario_id, version, parsed.start)


def _new_run_id(dialect: str) -> sa.ColumnElement[Any]:
    if dialect == "postgresql":
        return sa.func.gen_random_uuid()
    return sa.func.lower(sa.func.hex(sa.func.randomblob(16)))  # a UUID as SQLite keeps it


def enter_customers(
    conn: sa.Connection, ws: Workspace, scenario: Published, who: sa.Select[Any]
) -> int:
    """Enter every customer ``who`` selects (one ``customer_id`` column) with one INSERT … SELECT.

    The rows are those ``scenarios.entry.enter`` writes for a customer who is not held
    out: active, at the start node, due now.
    """
    r = scenario_runs.c
    picked = who.subquery()

    def bound(value: Any, column: sa.Column[Any]) -> sa.ColumnElement[Any]:
        return sa.literal(value, type_=column.type)

    values: dict[str, sa.ColumnElement[Any]] = {
        "workspace_id": bound(ws.workspace_id, r.workspace_id),
        "run_id": _new_run_id(conn.dialect.name),
        "scenario_id": bound(scenario.scenario_id, r.scenario_id),
        "version": bound(scenario.version, r.version), "customer_id": picked.c.customer_id,
        "run_key": bound("", r.run_key), "status": bound("active", r.status),
        "node_id": bound(scenario.start, r.node_id), "due_at": bound(NOW, r.due_at),
        "held_out": bound(False, r.held_out), "context": bound({}, r.context),
        "sends": bound(0, r.sends), "steps": bound(0, r.steps),
        "entered_at": bound(NOW, r.entered_at), "updated_at": bound(NOW, r.updated_at),
    }  # fmt: skip
    insert = scenario_runs.insert().from_select(list(values), sa.select(*values.values()))
    conn.execute(insert)
    # rowcount is -1 for INSERT … SELECT through psycopg; count the scenario's runs instead.
    mine = sa.and_(r.workspace_id == ws.workspace_id, r.scenario_id == scenario.scenario_id)
    return int(conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one())


def count_rows(db: Database, ws: Workspace, table: sa.Table, *where: Any) -> int:
    """Rows of ``table`` in the workspace matching ``where``."""
    query = sa.select(sa.func.count()).select_from(table)
    with db.read() as conn:
        return int(conn.execute(query.where(table.c.workspace_id == ws.workspace_id, *where))
                   .scalar_one())  # fmt: skip


# Engine workers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """What the workers did, and how long the slowest took from the common start."""

    seconds: float
    advanced: int
    per_worker: tuple[int, ...]


def _engine_worker(url: str, batch: int, barrier: Any, results: Any) -> None:
    """A worker process: connect, wait for the others, tick until idle, report."""
    db = bench_database(make_engine(url))
    engine = ScenarioEngine(db, batch_size=batch)
    with db.read() as conn:  # connect before the clock starts
        conn.execute(sa.select(1))
    barrier.wait()
    report = engine.run_until_idle(rounds=1_000_000)
    results.put((report.advanced, time.time()))
    db.dispose()


def _result(results: Any, processes: list[Any]) -> tuple[int, float]:
    """The next worker's report; raises if a worker died without one."""
    while True:
        try:
            found: tuple[int, float] = results.get(timeout=1)
            return found
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in processes):
                raise RuntimeError("an engine worker failed; its error is above") from None


def run_workers(db: Database, workers: int, batch: int = 500) -> WorkerResult:
    """Run ``workers`` engine processes, each ``ScenarioEngine.run_until_idle``, at once.

    Processes, not threads, so they do not share a GIL (as separate ``kizuna
    worker`` processes). Timed from the moment all are connected to the last one done.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    processes: list[Any] = [
        context.Process(target=_engine_worker, args=(url_of(db), batch, barrier, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    barrier.wait(timeout=300)
    started = time.time()
    done: Sequence[tuple[int, float]] = [_result(results, processes) for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"an engine worker failed (exit code {process.exitcode})")
    seconds = max(at for _, at in done) - started
    return WorkerResult(seconds, sum(n for n, _ in done), tuple(n for n, _ in done))
