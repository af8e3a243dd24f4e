"""Durable execution: SIGKILL a worker at any point, restart, and count every send once.

Also two engines working the same store at once (on PostgreSQL they claim with
``SKIP LOCKED``; on SQLite they take turns): no run is moved twice.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from kizuna.delivery.pipeline import Pipeline
from kizuna.scenarios.api import start_runs
from kizuna.scenarios.engine import ScenarioEngine
from kizuna.store.tables import messages, scenario_inbox, scenario_runs
from tests.integration.scenario_shop import build_shop, intents, publish, runs

ROOT = Path(__file__).resolve().parents[2]
TWO_SENDS = {
    "key": "two-sends", "name": "二通", "trigger": {"type": "api"},
    "entry": {"reentry": "every_time"}, "start": "first",
    "nodes": [
        {"id": "first", "type": "send", "channel": "email", "template": "thanks", "next": "mark"},
        {"id": "mark", "type": "update", "attributes": {"thanked": True}, "next": "second"},
        {"id": "second", "type": "send", "channel": "email", "template": "cart-reminder",
         "next": "end"},
        {"id": "end", "type": "exit"},
    ],
}  # fmt: skip


def _pending(db) -> int:
    with db.read() as conn:
        inbox = conn.execute(sa.select(sa.func.count()).select_from(scenario_inbox)).scalar_one()
        active = conn.execute(sa.select(sa.func.count()).where(
            scenario_runs.c.status == "active")).scalar_one()  # fmt: skip
        unsent = conn.execute(sa.select(sa.func.count()).where(
            messages.c.status.in_(["queued", "sending"]))).scalar_one()  # fmt: skip
    return int(inbox + active + unsent)


def _worker(settings) -> subprocess.Popen[str]:
    env = {**os.environ, "KIZUNA_HOME": str(settings.home),
           "KIZUNA_DATABASE_URL": settings.database_url,
           "KIZUNA_SECRET_KEY": settings.secret_key or ""}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.scenario_worker", "7"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def test_sigkill_at_any_point_loses_no_step_and_sends_nothing_twice(
    db, workspace, scope_factory, clock, settings
):
    ids = build_shop(scope_factory, clock, customers=60)
    publish(scope_factory, TWO_SENDS)
    with scope_factory() as scope:
        start_runs(scope, "two-sends", ids, {})
    rng = random.Random(7)
    kills = 0
    while _pending(db) and kills < 8:
        process = _worker(settings)
        time.sleep(rng.uniform(0.05, 0.6))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        kills += 1
        time.sleep(1.1)  # let the outbox leases of the killed worker run out
    survivor = _worker(settings)  # one last worker finishes what is left
    deadline = time.monotonic() + 120
    while _pending(db) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivor.terminate()
    survivor.wait()
    survivor.stdout.close()  # type: ignore[union-attr]
    assert kills >= 1
    assert _pending(db) == 0
    found = runs(db)
    assert len(found) == 60 and {r["status"] for r in found} == {"completed"}
    per_step = Counter((m["customer_id"], m["step"]) for m in intents(db))
    assert len(per_step) == 120 and set(per_step.values()) == {1}  # each send exactly once
    assert {m["status"] for m in intents(db)} == {"sent"}


def test_two_engines_at_once_move_each_run_once(db, workspace, scope_factory, clock):
    ids = build_shop(scope_factory, clock, customers=50)
    publish(scope_factory, TWO_SENDS)
    with scope_factory() as scope:
        start_runs(scope, "two-sends", ids, {})
    engines = [ScenarioEngine(db, batch_size=5) for _ in range(2)]
    threads = [threading.Thread(target=e.run_until_idle) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ScenarioEngine(db).run_until_idle()  # whatever one found busy while the other held it
    Pipeline(db, lease=timedelta(seconds=1)).drain_all()
    per_step = Counter((m["customer_id"], m["step"]) for m in intents(db))
    assert len(per_step) == 100 and set(per_step.values()) == {1}
    assert {r["status"] for r in runs(db)} == {"completed"}


def test_two_engines_enter_a_scheduled_segment_once(db, workspace, scope_factory, clock):
    """Runs that end at once and re-entry "every time": only the schedule's lock stops a repeat."""
    from kizuna.segments.definition import parse_spec
    from kizuna.segments.membership import refresh_workspace
    from kizuna.store.segments import save_segment

    ids = build_shop(scope_factory, clock, customers=40)
    with scope_factory() as scope:
        everyone = {"type": "trait", "trait": "first_seen_at", "op": "exists"}
        save_segment(scope, parse_spec({"key": "all", "name": "全員", "condition": everyone}), "t")
    refresh_workspace(db, workspace)
    at = (clock.now() - timedelta(minutes=1)).isoformat()
    publish(scope_factory, {"key": "news", "name": "お知らせ", "entry": {"reentry": "every_time"},
                            "trigger": {"type": "schedule", "segment": "all", "at": at},
                            "start": "hello", "nodes": [{"id": "hello", "type": "send",
                                                         "channel": "email",
                                                         "template": "thanks"}]})  # fmt: skip
    barrier = threading.Barrier(3)

    def engine() -> None:
        barrier.wait()
        ScenarioEngine(db, batch_size=7).run_until_idle()

    threads = [threading.Thread(target=engine) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ScenarioEngine(db).run_until_idle()
    per_customer = Counter(r["customer_id"] for r in runs(db))
    assert set(per_customer) == set(ids) and set(per_customer.values()) == {1}
    assert len(intents(db)) == len(ids)
