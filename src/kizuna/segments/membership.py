"""Keeping segment membership current: full refreshes, the schedule, and the change queue.

Three ways a membership is evaluated, all through :func:`compile_segment` and
:func:`~kizuna.store.segment_membership.apply_membership` (set-based, in the database):

- :func:`refresh_segment` / :func:`refresh_workspace`: every customer of the workspace;
- :func:`refresh_due`: the schedule — segments never evaluated, or edited (or built on
  a segment edited) since; those reading the clock (``time`` in ``depends_on``) every
  interval; those reading stored metrics once the metrics were recomputed since;
- :func:`drain_queue`: the customers ingest queued, each only against the segments
  whose ``depends_on`` meets the causes queued for them (``depends_on`` already holds
  the causes of the segments a definition references), in one transaction that deletes
  exactly the queue rows it processed — a crash loses nothing, rows queued meanwhile stay.

Each evaluation is one write transaction per workspace that takes the workspace's
membership lock first and only then reads the clock, so signals commit in time order
(see :mod:`kizuna.store.segment_membership`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from kizuna.errors import KizunaError, NotFound
from kizuna.segments.compiler import CompileContext, compile_segment
from kizuna.segments.definition import Condition
from kizuna.store.database import Database
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import (
    CUSTOMER_CHANGED,
    MembershipChange,
    QueuedChange,
    apply_membership,
    claim_queue,
    delete_queued,
    lock_membership,
    mark_refreshed,
)
from kizuna.store.segments import SavedSegment, get_segment, list_segments
from kizuna.store.tables import customer_metrics, segment_queue, segments, workspaces
from kizuna.store.workspaces import Workspace, get_workspace

if TYPE_CHECKING:
    from kizuna.ingest.segment import Message

__all__ = [
    "SegmentRefresh",
    "drain_queue",
    "message_causes",
    "refresh_due",
    "refresh_segment",
    "refresh_workspace",
]

log = logging.getLogger(__name__)

DRAIN_LIMIT = 500  # queue rows per transaction: a few segments' IN lists stay short
# Membership rows a round of full refreshes may change before the planner's statistics
# are refreshed at once (PostgreSQL): the drains that follow probe these tables by key,
# and with stale statistics (autovacuum comes later) they were planned as scans,
# ten times slower.
ANALYZE_AFTER = 50_000


@dataclass(frozen=True, slots=True)
class SegmentRefresh:
    """What a full evaluation of one segment changed, and how long it took."""

    workspace: str
    key: str
    entered: int
    exited: int
    seconds: float


def _evaluate(
    scope: Scope,
    workspace: Workspace,
    saved: SavedSegment,
    conditions: Mapping[str, Condition],
    customer_ids: Sequence[uuid.UUID] | None,
) -> MembershipChange:
    ctx = CompileContext(workspace, scope.now, scope.conn.dialect.name, conditions, customer_ids)
    matching = compile_segment(saved.condition, ctx)
    return apply_membership(scope, saved.segment_id, matching, customer_ids)


def _refresh(
    db: Database,
    workspace: Workspace,
    key: str,
    now: datetime | None,
    due: Callable[[SavedSegment, datetime], bool] | None = None,
) -> SegmentRefresh | None:
    """Evaluate segment ``key`` for every customer in one transaction (None: not due)."""
    started = time.perf_counter()
    with db.write() as conn:
        lock_membership(conn, workspace.workspace_id)
        scope = Scope(conn, db.cipher, workspace.workspace_id, now or db.clock.now())
        saved = get_segment(scope, key)  # as stored now, not as the caller listed it
        if due is not None and not due(saved, scope.now):
            return None  # another worker refreshed it while this one waited
        conditions = {s.key: s.condition for s in list_segments(scope)}
        change = _evaluate(scope, workspace, saved, conditions, None)
        mark_refreshed(scope, saved.segment_id)
    seconds = time.perf_counter() - started
    return SegmentRefresh(workspace.slug, key, change.entered, change.exited, seconds)


def refresh_segment(
    db: Database, workspace: Workspace, saved: SavedSegment, now: datetime | None = None
) -> SegmentRefresh:
    """Evaluate ``saved`` (as currently stored) for every customer; signals each change.

    ``now`` (default: the clock, read after the workspace's membership lock) ends every
    window and stamps the signals. Raises ``NotFound`` if the segment was archived.
    """
    done = _refresh(db, workspace, saved.key, now)
    assert done is not None  # no due test: always evaluated
    return done


def _segments(db: Database, workspace: Workspace) -> list[SavedSegment]:
    with db.read() as conn:
        return list_segments(Scope(conn, db.cipher, workspace.workspace_id, db.clock.now()))


def refresh_workspace(
    db: Database,
    workspace: Workspace,
    now: datetime | None = None,
    *,
    only_time_dependent: bool = False,
    causes: Collection[str] | None = None,
) -> list[SegmentRefresh]:
    """Refresh every segment of ``workspace`` (one transaction each), by rank.

    ``only_time_dependent`` keeps the segments that read the clock; ``causes`` those
    depending on any of them (``{"metrics"}`` after a metrics refresh).
    """
    wanted = set(causes or ()) | ({"time"} if only_time_dependent else set())
    done = []
    for saved in _segments(db, workspace):
        if wanted and not wanted & saved.depends_on:
            continue
        try:
            done.append(refresh_segment(db, workspace, saved, now))
        except NotFound:
            continue  # archived since it was listed
    _refresh_statistics(db, done)
    return done


def _refresh_statistics(db: Database, done: Sequence[SegmentRefresh]) -> None:
    """ANALYZE the membership tables on PostgreSQL after a round that changed many rows."""
    if db.dialect != "postgresql" or sum(d.entered + d.exited for d in done) < ANALYZE_AFTER:
        return
    with db.write() as conn:
        conn.execute(sa.text("ANALYZE segment_members, segment_signals"))


def _metrics_computed(db: Database) -> dict[uuid.UUID, datetime]:
    """When each workspace's stored metrics were computed (a refresh replaces them all)."""
    m = customer_metrics.c
    newest = (
        sa.select(m.computed_at)
        .where(m.workspace_id == workspaces.c.workspace_id)
        .limit(1)
        .scalar_subquery()
    )
    with db.read() as conn:
        rows = conn.execute(sa.select(workspaces.c.workspace_id, newest))
        return {ws: at for ws, at in rows if at is not None}


def _is_due(
    every: timedelta | None, metrics_at: datetime | None, edited: Mapping[str, datetime]
) -> Callable[[SavedSegment, datetime], bool]:
    """The due test of one workspace; ``edited`` holds each segment's ``updated_at`` by key."""

    def due(saved: SavedSegment, now: datetime) -> bool:
        last = saved.refreshed_at
        if last is None or saved.updated_at > last:
            return True  # never evaluated in full, or edited since
        inlined = (c.removeprefix("segment:") for c in saved.depends_on if c.startswith("segment:"))
        if any(edited.get(key, last) > last for key in inlined):
            return True  # a segment it is built on was edited
        if every is not None and "time" in saved.depends_on and now - last >= every:
            return True
        return "metrics" in saved.depends_on and metrics_at is not None and metrics_at > last

    return due


def refresh_due(db: Database, every: timedelta | None) -> list[SegmentRefresh]:
    """Refresh the segments that are due in every workspace (see the module docstring).

    ``every`` is the interval of segments that read the clock (None: never by time).
    """
    metrics = _metrics_computed(db)
    now = db.clock.now()
    with db.read() as conn:
        listed = conn.execute(
            sa.select(segments.c.workspace_id).where(segments.c.archived_at.is_(None)).distinct()
        )
        workspace_list = [get_workspace(conn, ws) for ws in sorted(listed.scalars())]
    done = []
    for workspace in workspace_list:
        listed_segments = _segments(db, workspace)
        edited = {s.key: s.updated_at for s in listed_segments}
        due = _is_due(every, metrics.get(workspace.workspace_id), edited)
        for saved in listed_segments:
            if not due(saved, now):
                continue
            try:
                result = _refresh(db, workspace, saved.key, None, due)
            except NotFound:
                continue  # archived since it was listed
            except KizunaError as exc:  # one broken segment must not stop the others
                log.warning("refresh of segment %s/%s failed: %s", workspace.slug, saved.key, exc)
                continue
            if result is not None:
                done.append(result)
    _refresh_statistics(db, done)
    return done


def _queued(db: Database) -> bool:
    with db.read() as conn:
        return conn.execute(sa.select(segment_queue.c.queued_id).limit(1)).first() is not None


def drain_queue(db: Database, limit: int = DRAIN_LIMIT) -> int:
    """Evaluate up to ``limit`` queued changes (oldest first) and delete them; returns how many.

    Per workspace, each segment is evaluated only for the queued customers whose causes
    meet its ``depends_on`` (a created or merged customer meets every segment). On
    PostgreSQL rows another worker holds are skipped, so no change is processed twice.
    """
    if not _queued(db):
        return 0  # spares SQLite's write lock when there is nothing to do
    with db.write() as conn:
        claimed = claim_queue(conn, limit)
        by_workspace: dict[uuid.UUID, list[QueuedChange]] = {}
        for change in claimed:
            by_workspace.setdefault(change.workspace_id, []).append(change)
        for workspace_id in sorted(by_workspace):  # one lock order, so workers never deadlock
            lock_membership(conn, workspace_id)
        now = db.clock.now()
        for workspace_id, changes in sorted(by_workspace.items()):
            _drain_workspace(Scope(conn, db.cipher, workspace_id, now), changes)
        delete_queued(conn, claimed)
    return len(claimed)


def _drain_workspace(scope: Scope, changes: Sequence[QueuedChange]) -> None:
    """Evaluate the affected segments of one workspace for the customers queued."""
    causes: dict[uuid.UUID, set[str]] = {}
    for change in changes:
        causes.setdefault(change.customer_id, set()).update(change.causes)
    saved_list = list_segments(scope)
    if not saved_list:
        return
    workspace = get_workspace(scope.conn, scope.workspace_id)
    conditions = {s.key: s.condition for s in saved_list}
    for saved in saved_list:
        affected = sorted(
            customer
            for customer, why in causes.items()
            if CUSTOMER_CHANGED in why or not why.isdisjoint(saved.depends_on)
        )
        if not affected:
            continue
        try:
            _evaluate(scope, workspace, saved, conditions, affected)
        except KizunaError as exc:  # raised while compiling, before any write
            # One segment that no longer compiles must not hold up the queue for the rest;
            # a full refresh of it reports the same error.
            log.warning("segment %s skipped in drain: %s", saved.key, exc)


def message_causes(
    applied: Iterable[tuple[Message, uuid.UUID]], changed_customers: Iterable[uuid.UUID] = ()
) -> dict[uuid.UUID, set[str]]:
    """What the stored messages changed, per customer (for ``enqueue_changes``).

    A track names its event, a page or screen its name (``event:<name>``); traits
    give ``traits``; an order, a cancellation or a refund gives ``orders``.
    ``changed_customers`` (created or merged records) get ``customer``: every segment.
    """
    changes: dict[uuid.UUID, set[str]] = {c: {CUSTOMER_CHANGED} for c in changed_customers}
    for message, customer_id in applied:
        raw = message.raw
        why: set[str] = set()
        name = raw.event if raw.type == "track" else raw.name
        if raw.type in ("track", "page", "screen") and name:
            why.add(f"event:{name}")
        if message.traits is not None and any(v not in (None, {}) for _, v in message.traits):
            why.add("traits")  # an identify with nothing to set changes no profile
        commerce = message.commerce
        if commerce is not None and (commerce.order is not None or commerce.status is not None):
            why.add("orders")
        if why:
            changes.setdefault(customer_id, set()).update(why)
    return changes
