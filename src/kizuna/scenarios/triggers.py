"""What arrives for customers — events, segment changes, API calls — and what it does to runs.

For each arrival, in order: a run whose goal it is ends (``goal``), also while
waiting; a run waiting for it moves on at once; a scenario it triggers enters
the customer (subject to the entry rules).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kizuna.delivery.settings import DeliverySettings
from kizuna.scenarios.definition import ApiTrigger, EventMatch, EventTrigger, SegmentTrigger
from kizuna.scenarios.entry import Candidate, enter
from kizuna.scenarios.loaded import LoadedScenario, VersionCache
from kizuna.scenarios.matching import event_matches, property_value
from kizuna.store.scenario_runs import (
    RunRecord,
    RunUpdate,
    Step,
    active_runs_of,
    record_steps,
    update_runs,
)
from kizuna.store.scope import Scope

__all__ = ["Arrival", "TriggerReport", "handle_arrivals"]


@dataclass(frozen=True, slots=True)
class Arrival:
    """An event, a segment change or an API call for one customer."""

    customer_id: uuid.UUID
    kind: str  # event | segment | api
    name: str  # event name, segment key or scenario key
    payload: dict[str, Any] = field(default_factory=dict)  # properties; {"change": …}; context


@dataclass(slots=True)
class TriggerReport:
    """Counts of what the arrivals did."""

    entered: int = 0
    held_out: int = 0
    goals: int = 0
    woken: int = 0
    refused: dict[str, int] = field(default_factory=dict)


def _run_key(scenario: LoadedScenario, payload: dict[str, Any]) -> str | None:
    """The run key for an entry (None: the keyed property is missing, so no entry)."""
    prop = scenario.spec.entry.key_property
    if prop is None:
        return ""
    value = property_value(payload, prop)  # a sentinel when absent
    return str(value) if isinstance(value, str | int | float) and value != "" else None


def _triggered(scenario: LoadedScenario, a: Arrival) -> bool:
    t = scenario.spec.trigger
    if a.kind == "event" and isinstance(t, EventTrigger):
        return event_matches(t, a.name, a.payload)
    if a.kind == "segment" and isinstance(t, SegmentTrigger):
        return t.segment == a.name and t.change == a.payload.get("change")
    return a.kind == "api" and isinstance(t, ApiTrigger) and a.name == scenario.spec.key


def _awaits(run: RunRecord, a: Arrival) -> bool:
    waiting = run.waiting or {}
    if a.kind == "event" and "event" in waiting:
        return event_matches(EventMatch.model_validate(waiting["event"]), a.name, a.payload)
    if a.kind == "segment" and "segment" in waiting:
        return waiting["segment"] == a.name and waiting.get("change") == a.payload.get("change")
    return False


def _is_goal(scenario: LoadedScenario, a: Arrival) -> bool:
    goal = scenario.spec.goal
    return a.kind == "event" and goal is not None and event_matches(goal, a.name, a.payload)


def handle_arrivals(
    scope: Scope,
    arrivals: Sequence[Arrival],
    live: Sequence[LoadedScenario],
    versions: VersionCache,
    settings: DeliverySettings,
    *,
    only_live: bool = False,
) -> TriggerReport:
    """Apply arrivals to runs (goals, waits) and start the runs they trigger.

    ``only_live`` looks at runs of the ``live`` scenarios alone (a simulation must not
    lock or count the workspace's real runs).
    """
    report = TriggerReport()
    scope_ids = [s.scenario_id for s in live] if only_live else None
    runs = active_runs_of(scope, {a.customer_id for a in arrivals}, lock=True,
                          scenario_ids=scope_ids)  # fmt: skip
    by_customer: dict[uuid.UUID, list[RunRecord]] = {}
    for run in runs:
        by_customer.setdefault(run.customer_id, []).append(run)
    updates: dict[uuid.UUID, RunUpdate] = {}
    steps: list[Step] = []
    candidates: dict[uuid.UUID, list[Candidate]] = {}
    for a in arrivals:
        for run in by_customer.get(a.customer_id, []):
            if run.run_id in updates:
                continue
            scenario = versions.get(scope.conn, scope.workspace_id, run.scenario_id, run.version)
            if _is_goal(scenario, a):
                updates[run.run_id] = RunUpdate(run.run_id, "completed", None, None, None,
                                                run.variant, run.sends, run.steps + 1,
                                                scope.now, "goal")  # fmt: skip
                steps.append(Step(run, run.steps + 1, run.node_id or "", "exited", "goal"))
                report.goals += 1
            elif _awaits(run, a):
                node = scenario.nodes[str((run.waiting or {})["node"])]
                following = getattr(node, "next", None)
                updates[run.run_id] = RunUpdate(run.run_id, "active", following, scope.now, None,
                                                run.variant, run.sends, run.steps + 1)  # fmt: skip
                steps.append(Step(run, run.steps + 1, node.id, "passed", f"arrived: {a.name}"))
                report.woken += 1
        for scenario in live:
            if _triggered(scenario, a):
                key = _run_key(scenario, a.payload)
                if key is not None:
                    candidates.setdefault(scenario.scenario_id, []).append(
                        Candidate(a.customer_id, dict(a.payload), key)
                    )
    _enter_all(scope, live, candidates, runs, settings, report, updates, steps)
    update_runs(scope.conn, scope.workspace_id, list(updates.values()), scope.now)
    record_steps(scope.conn, steps, scope.now)
    return report


def _enter_all(
    scope: Scope, live: Sequence[LoadedScenario], candidates: dict[uuid.UUID, list[Candidate]],
    runs: Sequence[RunRecord], settings: DeliverySettings, report: TriggerReport,
    updates: dict[uuid.UUID, RunUpdate], steps: list[Step],
) -> None:  # fmt: skip
    priorities = {s.scenario_id: s.spec.priority for s in live}
    # Higher priorities enter first, so a lower one sees the runs they start as taken.
    for scenario in sorted(live, key=lambda s: -s.spec.priority):
        found = candidates.get(scenario.scenario_id)
        if not found:
            continue
        entry = enter(scope, scenario, found, active=runs, priorities=priorities,
                      settings=settings)  # fmt: skip
        report.entered += entry.entered
        report.held_out += entry.held_out
        for reason, count in entry.refused.items():
            report.refused[reason] = report.refused.get(reason, 0) + count
        for run, update, step in entry.displaced:
            if run.run_id not in updates:
                updates[run.run_id] = update
                steps.append(step)
