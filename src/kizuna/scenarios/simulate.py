"""Simulating a draft scenario over a range of real history, sending nothing.

:func:`simulate` replays what happened in ``[since, until)`` through the draft
with the engine's own code (:func:`handle_arrivals`, :func:`advance_runs`, the
calendar triggers), inside ONE write transaction that is always rolled back: the
draft is installed as a temporary live scenario (key ``sim-…``), runs, steps and
send intents are written as the engine would write them, counted, and then
discarded, so nothing persists and the outbox never sees an intent.

Time is stepped through the history: before each moment (an event, a segment
change, a calendar trigger), the runs due before it are advanced with "now" at
their due time; then the moment is applied; after the last one, the timers left
run out until ``until``. Moments less than ``step`` apart (default one minute)
are applied together, never two of one customer; ``step=timedelta(0)`` is exact.

Replayed: the trigger, goal and ``wait_for`` events (track events), segment
entered / exited signals the draft starts or waits on, date triggers (one per
local day) and a schedule falling in the range. API-triggered drafts cannot be
replayed (API calls are not kept). See :data:`LIMITS` for what a simulation
cannot know; they are part of every result.

While a simulation runs it holds a write transaction: on SQLite other writers
wait for it; on PostgreSQL the rows it touches (the replayed customers' active
runs, profiles an ``update`` node changes) stay locked until it ends, and two
simulations of the same draft in one workspace run one after the other (the
temporary scenario's id is derived from the draft's key, so both draw the same
holdout).
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.delivery.settings import DeliverySettings, load_delivery_settings
from kizuna.errors import InvalidInput, Problem
from kizuna.scenarios.advance import advance_runs
from kizuna.scenarios.calendar import SCHEDULE_CHUNK, calendar_candidates, enter_chunk
from kizuna.scenarios.definition import (
    ApiTrigger,
    DateTrigger,
    ScenarioSpec,
    ScheduleTrigger,
)
from kizuna.scenarios.inbox import listened_to
from kizuna.scenarios.loaded import LoadedScenario, VersionCache
from kizuna.scenarios.stats import NodeStats, ScenarioStats, ScenarioTotals, scenario_stats
from kizuna.scenarios.triggers import Arrival, handle_arrivals
from kizuna.store.database import Database
from kizuna.store.engine import WRITE_OPTION
from kizuna.store.scenario_runs import RunRecord
from kizuna.store.scenarios import check_spec
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import SignalCursor, read_signals
from kizuna.store.segments import get_segment
from kizuna.store.snapshot import private_engine
from kizuna.store.tables import (
    events,
    messages,
    scenario_runs,
    scenario_versions,
    scenarios,
    segment_signals,
)
from kizuna.store.workspaces import Workspace, get_workspace

__all__ = ["LIMITS", "MAX_RANGE", "SentCount", "Simulation", "simulate"]

MAX_RANGE = timedelta(days=366)
_PAGE = 5_000  # events or signals read per query
_BATCH = 500  # runs advanced per call, as the engine does
_NAMESPACE = uuid.UUID("6b1e2d1c-5f0a-4c41-9d55-7a3c2f9e8b10")  # simulation scenario ids

LIMITS = (
    "Branch conditions, entry filters, consent and suppressions are read as they are "
    "today, not as they were at the simulated moment.",
    "Date triggers on orders or registration, and schedule triggers (the segment's "
    "members), read today's data.",
    "Nobody opens or clicks a simulated message: no-response exits count every customer "
    "who got enough sends.",
    "Frequency caps count the messages really sent, not the simulated ones.",
    "Other scenarios are not replayed: priorities between scenarios are not simulated.",
    "Re-entry rules count only the entries made within the simulated range.",
    "Split paths are drawn at random per run, so their counts vary a little between simulations.",
)


@dataclass(frozen=True, slots=True)
class SentCount:
    """Messages one node would have sent, by channel and template."""

    node_id: str
    channel: str
    template: str | None
    messages: int


@dataclass(frozen=True, slots=True)
class Simulation:
    """What a draft would have done over ``[since, until)``."""

    key: str
    name: str
    since: datetime
    until: datetime
    events: int  # events replayed
    signals: int  # segment changes replayed
    calendar: int  # date / schedule trigger moments replayed
    stats: ScenarioStats
    sends: list[SentCount]
    limits: tuple[str, ...] = LIMITS

    @property
    def nodes(self) -> list[NodeStats]:
        """Per-node counts, in the draft's node order."""
        return self.stats.nodes

    @property
    def totals(self) -> ScenarioTotals:
        """Runs entered, held out, completed, exited by reason, goals, sends."""
        return self.stats.totals

    def frame(self) -> pd.DataFrame:
        """One row per node (see :meth:`ScenarioStats.frame`)."""
        return self.stats.frame()

    def sends_frame(self) -> pd.DataFrame:
        """One row per node, channel and template that would have sent."""
        columns = ["node", "channel", "template", "messages"]
        rows = [(s.node_id, s.channel, s.template, s.messages) for s in self.sends]
        return pd.DataFrame(rows, columns=columns)

    def summary(self) -> dict[str, Any]:
        """The headline numbers, as plain data."""
        t = self.totals
        by_template: dict[str, int] = {}
        for s in self.sends:
            name = f"{s.channel}:{s.template or ''}"
            by_template[name] = by_template.get(name, 0) + s.messages
        return {
            "key": self.key, "since": self.since.isoformat(), "until": self.until.isoformat(),
            "replayed": {"events": self.events, "signals": self.signals,
                         "calendar": self.calendar},
            "entered": t.entered, "held_out": t.held_out, "active": t.active,
            "completed": t.completed, "exited": t.exited, "exits": dict(t.exits),
            "goals": t.goals, "conversion_rate": t.conversion_rate, "sent": t.sent,
            "sent_by_channel": dict(t.channels), "sent_by_template": by_template,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Moment:
    """One thing in the history: an arrival (event, segment change) or a calendar trigger."""

    at: datetime
    arrival: Arrival | None = None
    due: date | datetime | None = None  # a date trigger's day or a schedule's moment


@contextmanager
def _discarded(db: Database) -> Iterator[Connection]:
    """A write transaction that is rolled back whatever happens (on SQLite, on a copy)."""
    with private_engine(db.engine) as engine, engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        transaction = conn.begin()
        try:
            yield conn
        finally:
            transaction.rollback()


def _event_filter(scope: Scope, names: set[str], since: datetime, until: datetime) -> list[Any]:
    e = events.c
    return [e.workspace_id == scope.workspace_id, e.type == "track", e.name.in_(sorted(names)),
            e.occurred_at >= since, e.occurred_at < until]  # fmt: skip


def _events(scope: Scope, names: set[str], since: datetime, until: datetime) -> Iterator[_Moment]:
    """The events in the range, oldest first, read a page at a time."""
    e = events.c
    order = (e.occurred_at, e.customer_id, e.event_id)
    last: Any = None
    while names:
        query = sa.select(*order, e.name, e.properties).where(
            *_event_filter(scope, names, since, until)
        )
        if last is not None:
            start = [sa.literal(v, c.type) for v, c in zip(last[:3], order, strict=True)]
            query = query.where(sa.tuple_(*order) > sa.tuple_(*start))
        rows = scope.conn.execute(query.order_by(*order).limit(_PAGE)).all()
        for at, customer_id, _, name, properties in rows:
            yield _Moment(at, Arrival(customer_id, "event", name, dict(properties or {})))
        if len(rows) < _PAGE:
            return
        last = rows[-1]


def _signals(scope: Scope, segment_id: uuid.UUID, since: datetime,
             until: datetime) -> Iterator[_Moment]:  # fmt: skip
    """One segment's entered / exited signals in the range, oldest first."""
    cursor = SignalCursor(since, uuid.UUID(int=0), uuid.UUID(int=0))  # everything from since
    while True:
        page = read_signals(scope, cursor, _PAGE, segment_id)
        for s in page:
            if s.at >= until:
                return
            yield _Moment(s.at, Arrival(s.customer_id, "segment", s.segment_key,
                                        {"change": s.kind}))  # fmt: skip
        if len(page) < _PAGE:
            return
        cursor = page[-1].cursor


def _calendar(spec: ScenarioSpec, zone: ZoneInfo, since: datetime,
              until: datetime) -> list[_Moment]:  # fmt: skip
    """The moments a date trigger (each local day) or a schedule fires in the range."""
    trigger = spec.trigger
    if isinstance(trigger, ScheduleTrigger):
        at = trigger.at if trigger.at.tzinfo else trigger.at.replace(tzinfo=zone)
        return [_Moment(at.astimezone(UTC), due=at)] if since <= at < until else []
    if not isinstance(trigger, DateTrigger):
        return []
    found, day = [], since.astimezone(zone).date()
    while day <= until.astimezone(zone).date():
        at = datetime.combine(day, trigger.at, zone).astimezone(UTC)
        if since <= at < until:
            found.append(_Moment(at, due=day))
        day += timedelta(days=1)
    return found


@dataclass(slots=True)
class _Replay:
    """The simulated scenario and the transaction it is replayed in."""

    conn: Connection
    db: Database
    workspace: Workspace
    scenario: LoadedScenario
    settings: DeliverySettings
    step: timedelta
    versions: VersionCache = field(default_factory=VersionCache)

    def scope(self, now: datetime) -> Scope:
        """A scope on the workspace whose "now" is a simulated moment."""
        return Scope(self.conn, self.db.cipher, self.workspace.workspace_id, now)

    def advance(self, limit: datetime, *, through: bool) -> None:
        """Advance the simulated runs due before ``limit`` (or at it), each near its due time."""
        r = scenario_runs.c
        while True:
            due = r.due_at <= limit if through else r.due_at < limit
            rows = self.conn.execute(
                sa.select(scenario_runs)
                .where(r.workspace_id == self.workspace.workspace_id,
                       r.scenario_id == self.scenario.scenario_id, r.status == "active", due)
                .order_by(r.due_at, r.run_id)
                .limit(_BATCH)
            ).all()  # fmt: skip
            if not rows:
                return
            found = [RunRecord(*(row._mapping[c] for c in RunRecord.__slots__)) for row in rows]
            due_at = [run.due_at or limit for run in found]  # the query left no None
            cut = due_at[0] + self.step
            batch = [run for run, at in zip(found, due_at, strict=True) if at <= cut]
            now = max(at for at in due_at if at <= cut)  # never before a run is due
            advance_runs(self.scope(now), batch, self.versions, self.workspace, self.settings)

    def arrive(self, moments: Sequence[_Moment]) -> None:
        """Apply arrivals (no two of one customer) at the last one's time."""
        self.advance(moments[0].at, through=False)
        arrivals = [m.arrival for m in moments if m.arrival is not None]
        scope = self.scope(moments[-1].at)
        handle_arrivals(scope, arrivals, [self.scenario], self.versions, self.settings,
                        only_live=True)  # fmt: skip
        self.advance(moments[-1].at, through=True)  # new runs start, woken runs move on

    def fire(self, moment: _Moment) -> None:
        """Enter who a date or schedule trigger names at its moment."""
        assert moment.due is not None
        self.advance(moment.at, through=False)
        scope, zone = self.scope(moment.at), self.workspace.time_zone
        candidates = calendar_candidates(scope, self.scenario, moment.due, zone)
        priorities = {self.scenario.scenario_id: self.scenario.spec.priority}
        for start in range(0, len(candidates), SCHEDULE_CHUNK):
            chunk = candidates[start : start + SCHEDULE_CHUNK]
            enter_chunk(scope, self.scenario, chunk, priorities=priorities,
                        settings=self.settings, only_live=True)  # fmt: skip
        self.advance(moment.at, through=True)


def _replay(replay: _Replay, timeline: Iterator[_Moment], until: datetime,
            progress: Callable[[int], None]) -> None:  # fmt: skip
    """Step through the timeline, then let the timers left run out until ``until``."""
    pending: list[_Moment] = []
    customers: set[uuid.UUID] = set()
    done = 0
    for moment in timeline:
        arrival = moment.arrival
        if pending and (arrival is None or arrival.customer_id in customers
                        or moment.at - pending[0].at >= replay.step):  # fmt: skip
            replay.arrive(pending)
            done += len(pending)
            progress(done)
            pending, customers = [], set()
        if arrival is None:
            replay.fire(moment)
            done += 1
            progress(done)
        else:
            pending.append(moment)
            customers.add(arrival.customer_id)
    if pending:
        replay.arrive(pending)
        progress(done + len(pending))
    replay.advance(until, through=False)


def _install(scope: Scope, spec: ScenarioSpec) -> LoadedScenario:
    """Insert the draft as a live scenario, version 1, in this (discarded) transaction."""
    scenario_id = uuid.uuid5(_NAMESPACE, f"{scope.workspace_id}:{spec.key}")
    key = f"sim-{scenario_id.hex[:12]}"
    installed = spec.model_copy(update={"key": key})
    document = installed.model_dump(mode="json")
    mine = {"workspace_id": scope.workspace_id, "scenario_id": scenario_id}
    scope.conn.execute(scenarios.insert().values(
        **mine, key=key, name=spec.name, priority=spec.priority, status="live", live_version=1,
        draft=document, created_by="simulate", created_at=scope.now, updated_at=scope.now,
    ))  # fmt: skip
    scope.conn.execute(scenario_versions.insert().values(
        **mine, version=1, definition=document, published_by="simulate", published_at=scope.now,
    ))  # fmt: skip
    return LoadedScenario.of(scenario_id, 1, installed)


def _sends(scope: Scope, key: str) -> list[SentCount]:
    """The send intents the replay wrote to the (discarded) outbox, grouped."""
    m = messages.c
    columns = (m.step, m.channel, m.template_key)
    rows = scope.conn.execute(
        sa.select(*columns, sa.func.count())
        .where(m.workspace_id == scope.workspace_id, m.source_kind == "scenario",
               m.source_id == key)
        .group_by(*columns)
        .order_by(*columns)
    )  # fmt: skip
    return [SentCount(step or "", channel, template, n) for step, channel, template, n in rows]


def _bounds(since: datetime, until: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The range in UTC (naive values are the workspace's local time); checked."""
    since, until = (v if v.tzinfo else v.replace(tzinfo=zone) for v in (since, until))
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    if until <= since:
        raise InvalidInput(Problem("invalid_range", "until must be after since", "until"))
    if until - since > MAX_RANGE:
        message = f"simulate at most {MAX_RANGE.days} days at once"
        raise InvalidInput(Problem("range_too_long", message, "until"))
    return since, until


def _replayable(spec: ScenarioSpec) -> None:
    if isinstance(spec.trigger, ApiTrigger):
        message = "API calls are not kept, so an api-triggered scenario cannot be replayed"
        raise InvalidInput(Problem("not_replayable", message, "trigger"))


@dataclass(slots=True)
class _History:
    """What the replay reads, merged by time, counted as it goes."""

    sources: list[Iterator[_Moment]]
    calendar: int
    total: int  # moments in all (for progress bars)
    counted: dict[str, int] = field(default_factory=lambda: {"event": 0, "segment": 0})

    def moments(self) -> Iterator[_Moment]:
        """Every moment, oldest first."""
        for moment in heapq.merge(*self.sources, key=lambda m: m.at):
            if moment.arrival is not None:
                self.counted[moment.arrival.kind] += 1
            yield moment


def _history(scope: Scope, spec: ScenarioSpec, zone: ZoneInfo, since: datetime,
             until: datetime) -> _History:  # fmt: skip
    """The draft's events, segment changes and calendar moments in the range."""
    names, keys = listened_to(spec)
    segment_ids = [get_segment(scope, key).segment_id for key in sorted(keys)]
    dates = _calendar(spec, zone, since, until)
    total = len(dates)
    if names:
        query = sa.select(sa.func.count()).where(*_event_filter(scope, names, since, until))
        total += scope.conn.execute(query).scalar() or 0
    if segment_ids:
        s = segment_signals.c
        query = sa.select(sa.func.count()).where(
            s.workspace_id == scope.workspace_id, s.segment_id.in_(segment_ids),
            s.at >= since, s.at < until,
        )  # fmt: skip
        total += scope.conn.execute(query).scalar() or 0
    sources = [_events(scope, names, since, until), iter(dates)]
    sources += [_signals(scope, segment_id, since, until) for segment_id in segment_ids]
    return _History(sources, len(dates), total)


def simulate(
    db: Database,
    workspace_slug: str,
    spec: ScenarioSpec,
    since: datetime,
    until: datetime,
    *,
    step: timedelta = timedelta(minutes=1),
    progress: Callable[[int, int], None] | None = None,
) -> Simulation:
    """Replay ``[since, until)`` through the draft ``spec``; nothing is kept or sent.

    ``InvalidInput`` for a draft that could not be saved (problems at node paths), an
    api trigger, or a bad range (naive times are the workspace's local time);
    ``NotFound`` for an unknown workspace. ``progress`` is called with (moments
    done, moments in all) as the replay goes.
    """
    report = progress or (lambda _done, _total: None)
    with _discarded(db) as conn:
        workspace = get_workspace(conn, workspace_slug)
        zone = ZoneInfo(workspace.time_zone)
        since, until = _bounds(since, until, zone)
        _replayable(spec)
        scope = Scope(conn, db.cipher, workspace.workspace_id, since)
        check_spec(scope, spec)
        settings = load_delivery_settings(conn, workspace.workspace_id)
        replay = _Replay(conn, db, workspace, _install(scope, spec), settings, step)
        history = _history(scope, spec, zone, since, until)
        report(0, history.total)
        _replay(replay, history.moments(), until, lambda done: report(done, history.total))
        final = replay.scope(until)
        installed = replay.scenario
        found = scenario_stats(final, installed.scenario_id, {1: installed.spec}, installed.spec)
        sends = _sends(final, installed.spec.key)
    stats = ScenarioStats(spec.key, spec.name, None, found.nodes, found.totals)
    return Simulation(spec.key, spec.name, since, until, history.counted["event"],
                      history.counted["segment"], history.calendar, stats, sends)  # fmt: skip
