"""The scenario engine: one loop that starts, wakes, moves and ends runs.

Each :meth:`ScenarioEngine.tick` takes, in order: the trigger inbox (events from
ingestion, API calls), new segment signals (entered / exited), the date and
schedule triggers that are due, and the runs whose time has come. Every batch is
one transaction; on PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED``,
so any number of workers share the work, and a worker killed mid-batch leaves it
to the next (idempotency keys make a repeated send a no-op).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from kizuna.delivery.settings import load_delivery_settings
from kizuna.scenarios.advance import advance_runs
from kizuna.scenarios.calendar import (
    SCHEDULE_CHUNK,
    calendar_candidates,
    due_calendar,
    enter_chunk,
    mark_calendar_done,
)
from kizuna.scenarios.definition import SegmentTrigger, WaitFor
from kizuna.scenarios.loaded import LoadedScenario, VersionCache
from kizuna.scenarios.triggers import Arrival, TriggerReport, handle_arrivals
from kizuna.store.database import Database
from kizuna.store.locks import held_exclusively
from kizuna.store.scenario_runs import (
    claim_due_runs,
    claim_inbox,
    delete_inbox,
    read_cursor,
    save_cursor,
)
from kizuna.store.scenarios import live_scenarios
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import read_signals
from kizuna.store.workspaces import Workspace, get_workspace, list_workspaces

__all__ = ["EngineReport", "ScenarioEngine", "start_scenario_engine"]

log = logging.getLogger(__name__)
_SIGNALS = "segment_signals"
LIVE_SECONDS = 2.0  # how soon a worker sees a scenario published or paused elsewhere


@dataclass(slots=True)
class EngineReport:
    """What one tick did."""

    arrivals: int = 0
    signals: int = 0
    entered: int = 0
    held_out: int = 0
    goals: int = 0
    woken: int = 0
    advanced: int = 0
    calendar: int = 0  # date / schedule triggers handled
    refused: dict[str, int] = field(default_factory=dict)

    def add(self, found: TriggerReport) -> None:
        """Count a trigger report in."""
        self.entered += found.entered
        self.held_out += found.held_out
        self.goals += found.goals
        self.woken += found.woken
        for reason, count in found.refused.items():
            self.refused[reason] = self.refused.get(reason, 0) + count

    @property
    def busy(self) -> bool:
        """Whether the tick found work (another may find more at once)."""
        return bool(self.arrivals or self.signals or self.advanced or self.calendar)


class ScenarioEngine:
    """Runs scenarios for every workspace of a store."""

    def __init__(
        self, db: Database, *, batch_size: int = 500, live_seconds: float = LIVE_SECONDS
    ) -> None:
        self._db = db
        self._batch = batch_size
        self._live_seconds = live_seconds
        self._live: dict[uuid.UUID, tuple[float, list[LoadedScenario]]] = {}
        self.versions = VersionCache()

    def live(self, conn: Connection, workspace_id: uuid.UUID) -> list[LoadedScenario]:
        """The live scenarios of a workspace at their live versions (re-read every few s)."""
        now = time.monotonic()
        hit = self._live.get(workspace_id)
        if hit is not None and now - hit[0] < self._live_seconds:
            return hit[1]
        found = [
            self.versions.get(conn, workspace_id, s.scenario_id, s.version)
            for s in live_scenarios(conn, workspace_id)
        ]
        self._live[workspace_id] = (now, found)
        return found

    def tick(self) -> EngineReport:
        """Do one round of everything that is due."""
        report = EngineReport()
        self._inbox(report)
        self._signals(report)
        self._calendar(report)
        self._advance(report)
        return report

    def run_until_idle(self, rounds: int = 10_000) -> EngineReport:
        """Tick until nothing is left to do now (tests, ``kizuna worker --once``)."""
        total = EngineReport()
        for _ in range(rounds):
            report = self.tick()
            for name in ("arrivals", "signals", "entered", "held_out", "goals", "woken",
                         "advanced", "calendar"):  # fmt: skip
                setattr(total, name, getattr(total, name) + getattr(report, name))
            for reason, count in report.refused.items():
                total.refused[reason] = total.refused.get(reason, 0) + count
            if not report.busy:
                break
        return total

    def _inbox(self, report: EngineReport) -> None:
        with self._db.write() as conn:
            items = claim_inbox(conn, self._batch)
            by_workspace: dict[uuid.UUID, list[Arrival]] = {}
            for item in items:
                by_workspace.setdefault(item.workspace_id, []).append(
                    Arrival(item.customer_id, item.kind, item.name, dict(item.payload))
                )
            for workspace_id, arrivals in by_workspace.items():
                scope = Scope(conn, self._db.cipher, workspace_id, self._db.clock.now())
                settings = load_delivery_settings(conn, workspace_id)
                live = self.live(conn, workspace_id)
                report.add(handle_arrivals(scope, arrivals, live, self.versions, settings))
            delete_inbox(conn, items)
            report.arrivals += len(items)

    def _signals(self, report: EngineReport) -> None:
        """Segment entered / exited signals, for scenarios that start or wait on them."""
        with self._db.read() as conn:
            workspaces = [w.workspace_id for w in list_workspaces(conn)]
        for workspace_id in workspaces:
            with self._db.write() as conn:
                live = self.live(conn, workspace_id)
                if not any(_reads_segments(s) for s in live):
                    continue
                scope = Scope(conn, self._db.cipher, workspace_id, self._db.clock.now())
                cursor = read_cursor(conn, workspace_id, _SIGNALS)
                signals = read_signals(scope, cursor, self._batch)
                if not signals:
                    continue
                arrivals = [Arrival(s.customer_id, "segment", s.segment_key, {"change": s.kind})
                            for s in signals]  # fmt: skip
                settings = load_delivery_settings(conn, workspace_id)
                report.add(handle_arrivals(scope, arrivals, live, self.versions, settings))
                save_cursor(conn, workspace_id, _SIGNALS, signals[-1].cursor, scope.now)
                report.signals += len(signals)

    def _calendar(self, report: EngineReport) -> None:
        """Date and schedule triggers that are due: each chunk of entries is one transaction.

        One worker at a time enters a scenario's due date or schedule; the others skip
        it, and whoever takes it looks again whether it is still due (another may just
        have finished it).
        """
        with self._db.read() as conn:
            workspaces = list_workspaces(conn)
        for ws in workspaces:
            with self._db.read() as conn:
                scope = Scope(conn, self._db.cipher, ws.workspace_id, self._db.clock.now())
                live = self.live(conn, ws.workspace_id)
                due = [s for s in live if due_calendar(s, scope, ws.time_zone)]
            priorities = {s.scenario_id: s.spec.priority for s in live}
            for scenario in due:
                with held_exclusively(self._db, f"calendar:{scenario.scenario_id}") as mine:
                    if mine:
                        self._enter_calendar(ws, scenario, priorities, report)

    def _enter_calendar(
        self,
        ws: Workspace,
        scenario: LoadedScenario,
        priorities: dict[uuid.UUID, int],
        report: EngineReport,
    ) -> None:
        with self._db.read() as conn:
            scope = Scope(conn, self._db.cipher, ws.workspace_id, self._db.clock.now())
            day = due_calendar(scenario, scope, ws.time_zone)
            if not day:
                return
            candidates = calendar_candidates(scope, scenario, day, ws.time_zone)
        for start in range(0, len(candidates), SCHEDULE_CHUNK):
            with self._db.write() as conn:
                scope = Scope(conn, self._db.cipher, ws.workspace_id, self._db.clock.now())
                settings = load_delivery_settings(conn, ws.workspace_id)
                chunk = candidates[start : start + SCHEDULE_CHUNK]
                entry = enter_chunk(scope, scenario, chunk, priorities=priorities,
                                    settings=settings)  # fmt: skip
                report.entered += entry.entered
                report.held_out += entry.held_out
        with self._db.write() as conn:
            scope = Scope(conn, self._db.cipher, ws.workspace_id, self._db.clock.now())
            mark_calendar_done(scope, scenario, day)
        report.calendar += 1

    def _advance(self, report: EngineReport) -> None:
        with self._db.write() as conn:
            now = self._db.clock.now()
            runs = claim_due_runs(conn, now, self._batch)
            by_workspace: dict[uuid.UUID, list] = {}  # type: ignore[type-arg]
            for run in runs:
                by_workspace.setdefault(run.workspace_id, []).append(run)
            for workspace_id, batch in by_workspace.items():
                scope = Scope(conn, self._db.cipher, workspace_id, now)
                workspace = get_workspace(conn, workspace_id)
                settings = load_delivery_settings(conn, workspace_id)
                advance_runs(scope, batch, self.versions, workspace, settings)
            report.advanced += len(runs)


def _reads_segments(scenario: LoadedScenario) -> bool:
    if isinstance(scenario.spec.trigger, SegmentTrigger):
        return True
    return any(isinstance(n, WaitFor) and n.segment for n in scenario.spec.nodes)


def start_scenario_engine(db: Database, poll_seconds: float = 0.2) -> threading.Event:
    """Run the engine in a daemon thread until the returned event is set."""
    stop = threading.Event()
    engine = ScenarioEngine(db)

    def loop() -> None:
        while not stop.is_set():
            busy = False
            try:
                busy = engine.tick().busy
            except Exception:  # the loop outlives a database hiccup; the log says what
                log.exception("scenario engine tick failed; retrying")
            if not busy:
                stop.wait(poll_seconds)

    threading.Thread(target=loop, daemon=True, name="kizuna-scenarios").start()
    return stop
