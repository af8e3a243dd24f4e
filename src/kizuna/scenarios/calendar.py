"""Triggers that come from the calendar: dates (birthday, N days after an order) and schedules.

A date trigger runs once per local day, at its time of day, for the customers whose
date (plus the offset) is that day; each run is keyed by the day, so re-entry
rules count occurrences ("once" means once per birthday). A schedule trigger
enters every current member of a segment once, at its time, in chunks.
"""

from __future__ import annotations

import calendar as cal
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from kizuna.delivery.settings import DeliverySettings
from kizuna.scenarios.definition import DateTrigger, ScheduleTrigger
from kizuna.scenarios.entry import Candidate, EntryReport, enter
from kizuna.scenarios.loaded import LoadedScenario
from kizuna.store.scenario_runs import (
    active_runs_of,
    read_position,
    record_steps,
    save_position,
    update_runs,
)
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import current_members
from kizuna.store.segments import get_segment
from kizuna.store.tables import customers, orders

__all__ = [
    "SCHEDULE_CHUNK",
    "calendar_candidates",
    "date_candidates",
    "due_calendar",
    "enter_chunk",
    "mark_calendar_done",
]

SCHEDULE_CHUNK = 5_000  # customers per transaction when a schedule enters a whole segment


def _local_day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(time_zone)
    start = datetime.combine(day, time(0), zone)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def _birthdays(day: date) -> list[str]:
    """Month-days celebrated on ``day`` (29 February is kept on the 28th in other years)."""
    found = [day.strftime("%m-%d")]
    if day.month == 2 and day.day == 28 and not cal.isleap(day.year):
        found.append("02-29")
    return found


def date_candidates(
    scope: Scope, trigger: DateTrigger, day: date, time_zone: str
) -> list[Candidate]:
    """Customers whose trigger date, moved by the offset, falls on ``day`` (local)."""
    target = day - timedelta(days=trigger.offset_days)
    c, o = customers.c, orders.c
    live = sa.and_(c.workspace_id == scope.workspace_id, c.merged_into.is_(None))
    if trigger.date == "birthday":
        query = sa.select(c.customer_id).where(live, c.birth_md.in_(_birthdays(target)))
    else:
        start, end = _local_day_bounds(target, time_zone)
        if trigger.date in ("last_order", "first_order"):
            edge = sa.func.max(o.ordered_at) if trigger.date == "last_order" else sa.func.min(
                o.ordered_at)  # fmt: skip
            query = (
                sa.select(o.customer_id)
                .where(o.workspace_id == scope.workspace_id, o.status != "cancelled")
                .group_by(o.customer_id)
                .having(sa.and_(edge >= start, edge < end))
            )
        else:  # registered_at
            query = sa.select(c.customer_id).where(live, c.registered_at >= start,
                                                    c.registered_at < end)  # fmt: skip
    context = {"date": day.isoformat()}
    return [Candidate(cid, dict(context), day.isoformat())
            for cid in scope.conn.execute(query).scalars()]  # fmt: skip


def due_calendar(scenario: LoadedScenario, scope: Scope, time_zone: str) -> date | datetime | None:
    """The day (date trigger) or moment (schedule) now due for ``scenario``, if any."""
    trigger = scenario.spec.trigger
    source = f"calendar:{scenario.scenario_id}"
    done = read_position(scope.conn, scope.workspace_id, source) or {}
    if isinstance(trigger, DateTrigger):
        local = scope.now.astimezone(ZoneInfo(time_zone))
        if local.time() < trigger.at or done.get("day") == local.date().isoformat():
            return None
        return local.date()
    if isinstance(trigger, ScheduleTrigger):
        at = trigger.at if trigger.at.tzinfo else trigger.at.replace(tzinfo=ZoneInfo(time_zone))
        if scope.now < at or done.get("at") == at.isoformat():
            return None
        return at
    return None


def calendar_candidates(
    scope: Scope, scenario: LoadedScenario, due: date | datetime, time_zone: str
) -> list[Candidate]:
    """Who the calendar enters now: the day's dates, or the segment's current members."""
    trigger = scenario.spec.trigger
    if isinstance(trigger, DateTrigger):
        assert isinstance(due, date)
        return date_candidates(scope, trigger, due, time_zone)
    assert isinstance(trigger, ScheduleTrigger)
    segment = get_segment(scope, trigger.segment)
    ids = scope.conn.execute(current_members(scope, segment.segment_id)).scalars()
    return [Candidate(cid, {"segment": trigger.segment}) for cid in ids]


def mark_calendar_done(scope: Scope, scenario: LoadedScenario, due: date | datetime) -> None:
    """Remember that ``due`` was handled, so it is not entered again."""
    position = {"at": due.isoformat()} if isinstance(due, datetime) else {"day": due.isoformat()}
    save_position(scope.conn, scope.workspace_id, f"calendar:{scenario.scenario_id}", position,
                  scope.now)  # fmt: skip


def enter_chunk(
    scope: Scope,
    scenario: LoadedScenario,
    chunk: Sequence[Candidate],
    *,
    priorities: dict[uuid.UUID, int],
    settings: DeliverySettings,
    only_live: bool = False,
) -> EntryReport:
    """Enter one chunk of calendar candidates and end the runs they displace."""
    mine = [scenario.scenario_id] if only_live else None  # a simulation sees its own runs
    active = active_runs_of(scope, [c.customer_id for c in chunk], lock=True, scenario_ids=mine)
    report = enter(scope, scenario, chunk, active=active, priorities=priorities,
                   settings=settings)  # fmt: skip
    update_runs(scope.conn, scope.workspace_id, [u for _, u, _ in report.displaced], scope.now)
    record_steps(scope.conn, [s for _, _, s in report.displaced], scope.now)
    return report
