"""Which events scenarios listen to, and handing those events to the engine's inbox.

Ingestion calls :func:`notify_events` in its own transaction, so an event and the
inbox item it causes commit together. Only events some live or paused scenario
names (as trigger, goal or ``wait_for``) are queued; the set is read from the
published versions and kept for a few seconds per process.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.scenarios.definition import EventTrigger, ScenarioSpec, SegmentTrigger, WaitFor
from kizuna.store.scenario_runs import enqueue_inbox
from kizuna.store.scope import Scope
from kizuna.store.tables import scenario_versions, scenarios

__all__ = ["forget_watched", "listened_to", "notify_events", "watched_events"]

_TTL_SECONDS = 5.0
_cache: dict[uuid.UUID, tuple[float, frozenset[str]]] = {}
_lock = threading.Lock()


def listened_to(spec: ScenarioSpec) -> tuple[set[str], set[str]]:
    """Event names and segment keys a scenario starts on, ends on or waits for."""
    names = {spec.goal.event} if spec.goal else set()
    keys: set[str] = set()
    if isinstance(spec.trigger, EventTrigger):
        names.add(spec.trigger.event)
    if isinstance(spec.trigger, SegmentTrigger):
        keys.add(spec.trigger.segment)
    for node in spec.nodes:
        if isinstance(node, WaitFor):
            names.update([node.event.event] if node.event else [])
            keys.update([node.segment] if node.segment else [])
    return names, keys


def watched_events(conn: Connection, workspace_id: uuid.UUID) -> frozenset[str]:
    """Event names any live or paused scenario version reacts to."""
    now = time.monotonic()
    with _lock:
        hit = _cache.get(workspace_id)
    if hit is not None and now - hit[0] < _TTL_SECONDS:
        return hit[1]
    v, s = scenario_versions.c, scenarios.c
    rows = conn.execute(
        sa.select(v.definition)
        .join(scenarios, sa.and_(s.workspace_id == v.workspace_id, s.scenario_id == v.scenario_id))
        .where(v.workspace_id == workspace_id, s.status.in_(["live", "paused"]))
    ).scalars()
    names = frozenset(n for d in rows for n in listened_to(ScenarioSpec.model_validate(d))[0])
    with _lock:
        _cache[workspace_id] = (now, names)
    return names


def forget_watched(workspace_id: uuid.UUID) -> None:
    """Drop this process's cached names (after publishing or pausing a scenario)."""
    with _lock:
        _cache.pop(workspace_id, None)


def notify_events(scope: Scope, happened: Sequence[tuple[uuid.UUID, str, dict[str, Any]]]) -> int:
    """Queue (customer, event name, properties) for the engine when a scenario listens."""
    if not happened:
        return 0
    watched = watched_events(scope.conn, scope.workspace_id)
    items = [(c, "event", name, props) for c, name, props in happened if name in watched]
    enqueue_inbox(scope, items)
    return len(items)
