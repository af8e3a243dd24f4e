"""Entering customers into a scenario: re-entry rules, entry filter, priorities, control groups.

Held-out customers (the scenario's holdout and the workspace's global control
group) are recorded as runs that end at once with ``held_out`` set: they are what
uplift is measured against. A customer already in a scenario of higher priority
is not entered; entering one takes the customer from active runs of lower priority.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kizuna.delivery.rules import in_global_control
from kizuna.delivery.settings import DeliverySettings
from kizuna.domain.buckets import bucket_of
from kizuna.scenarios.definition import DateTrigger
from kizuna.scenarios.loaded import LoadedScenario
from kizuna.segments.compiler import compile_segment
from kizuna.store.scenario_runs import RunRecord, RunUpdate, Step, insert_runs, last_entries
from kizuna.store.scope import Scope
from kizuna.store.segments import compile_context
from kizuna.store.types import new_id

__all__ = ["Candidate", "EntryReport", "enter"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A customer who met a trigger, with what the trigger carried."""

    customer_id: uuid.UUID
    context: dict[str, Any] = field(default_factory=dict)  # the event's properties
    run_key: str = ""


@dataclass(slots=True)
class EntryReport:
    """What happened to the candidates."""

    entered: int = 0
    held_out: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # reason -> count
    displaced: list[tuple[RunRecord, RunUpdate, Step]] = field(default_factory=list)

    def refuse(self, reason: str) -> None:
        """Count one candidate refused for ``reason``."""
        self.refused[reason] = self.refused.get(reason, 0) + 1


def _held_out(scenario: LoadedScenario, customer_id: uuid.UUID) -> bool:
    share = scenario.spec.holdout_percent
    salt = f"kizuna:holdout:{scenario.scenario_id}"
    return share > 0 and bucket_of(customer_id, salt, 10_000) < share * 100


def _allowed_again(scenario: LoadedScenario, scope: Scope, found: list[Candidate],
                   report: EntryReport) -> list[Candidate]:  # fmt: skip
    entry = scenario.spec.entry
    if entry.reentry == "every_time" or not found:
        return found
    before = last_entries(scope, scenario.scenario_id, [c.customer_id for c in found])
    per_key = isinstance(scenario.spec.trigger, DateTrigger)  # once per occurrence (birthday)
    latest: dict[Any, Any] = {}
    for (customer, key), at in before.items():
        index = (customer, key) if per_key else customer
        latest[index] = max(at, latest.get(index, at))
    kept = []
    for c in found:
        last = latest.get((c.customer_id, c.run_key) if per_key else c.customer_id)
        if last is None or (
            entry.reentry == "after_days"
            and scope.now - last >= timedelta(days=entry.reentry_days or 0)
        ):
            kept.append(c)
        else:
            report.refuse("reentry")
    return kept


def _filtered(scenario: LoadedScenario, scope: Scope, found: list[Candidate],
              report: EntryReport) -> list[Candidate]:  # fmt: skip
    condition = scenario.spec.entry.filter
    if condition is None or not found:
        return found
    ids = list({c.customer_id for c in found})
    query = compile_segment(condition, compile_context(scope, customer_ids=ids))
    passing = set(scope.conn.execute(query).scalars())
    kept = [c for c in found if c.customer_id in passing]
    for _ in range(len(found) - len(kept)):
        report.refuse("entry_filter")
    return kept


def _by_priority(
    scenario: LoadedScenario, found: list[Candidate], active: Sequence[RunRecord],
    priorities: dict[uuid.UUID, int], report: EntryReport,
) -> list[Candidate]:  # fmt: skip
    mine = scenario.spec.priority
    busy: dict[uuid.UUID, list[RunRecord]] = {}
    for run in active:
        if run.scenario_id != scenario.scenario_id:
            busy.setdefault(run.customer_id, []).append(run)
    kept = []
    for c in found:
        others = busy.get(c.customer_id, [])
        if any(priorities.get(r.scenario_id, 0) > mine for r in others):
            report.refuse("higher_priority")
            continue
        kept.append(c)
        for run in others:
            if priorities.get(run.scenario_id, 0) < mine:
                update = RunUpdate(run.run_id, "exited", None, None, None, run.variant,
                                   run.sends, run.steps + 1, ended_at=None,
                                   exit_reason="priority")  # fmt: skip
                step = Step(run, run.steps + 1, run.node_id or "", "exited", "priority")
                report.displaced.append((run, update, step))
    return kept


def enter(
    scope: Scope,
    scenario: LoadedScenario,
    candidates: Sequence[Candidate],
    *,
    active: Sequence[RunRecord],
    priorities: dict[uuid.UUID, int],
    settings: DeliverySettings,
) -> EntryReport:
    """Enter candidates (rules first); new runs are due at once. Displaced runs are returned."""
    report = EntryReport()
    unique: dict[tuple[uuid.UUID, str], Candidate] = {}
    for c in candidates:
        unique.setdefault((c.customer_id, c.run_key), c)  # one entry per customer and key
    found = _allowed_again(scenario, scope, list(unique.values()), report)
    found = _filtered(scenario, scope, found, report)
    found = _by_priority(scenario, found, active, priorities, report)
    for _, update, _ in report.displaced:
        update.ended_at = scope.now
    rows = []
    for c in found:
        control = "global_control" if in_global_control(c.customer_id, settings) else (
            "holdout" if _held_out(scenario, c.customer_id) else None)  # fmt: skip
        rows.append({
            "workspace_id": scope.workspace_id, "run_id": new_id(),
            "scenario_id": scenario.scenario_id, "version": scenario.version,
            "customer_id": c.customer_id, "run_key": c.run_key,
            "status": "exited" if control else "active",
            "node_id": None if control else scenario.spec.start,
            "due_at": None if control else scope.now, "waiting": None,
            "held_out": control is not None, "variant": None, "context": c.context,
            "sends": 0, "steps": 0, "entered_at": scope.now, "updated_at": scope.now,
            "ended_at": scope.now if control else None, "exit_reason": control,
        })  # fmt: skip
        if control:
            report.held_out += 1
    inserted = insert_runs(scope.conn, rows)
    report.entered = inserted - report.held_out
    if inserted < len(rows):
        for _ in range(len(rows) - inserted):
            report.refuse("already_active")
    return report
