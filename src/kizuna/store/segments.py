"""Saved segments: create or replace by key (checked first), read, list, archive.

A definition is checked against the workspace before it is saved (unknown names,
types, cycles; see :mod:`kizuna.segments.checks`), so a stored segment always
compiles. The event names and attribute keys a check needs are read with index-only
scans and kept for a minute per workspace, so checking while typing stays cheap.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.errors import InvalidInput, NotFound, Problem
from kizuna.segments.checks import Vocabulary, check_condition, dependencies
from kizuna.segments.compiler import CompileContext
from kizuna.segments.definition import Condition, SegmentSpec, parse_condition
from kizuna.store.scope import Scope
from kizuna.store.tables import customers, events, segments
from kizuna.store.types import new_id
from kizuna.store.workspaces import get_workspace

__all__ = [
    "SavedSegment",
    "archive_segment",
    "check_condition_in",
    "check_spec",
    "compile_context",
    "get_segment",
    "list_segments",
    "load_vocabulary",
    "save_segment",
    "segment_conditions",
]

_VOCABULARY_SECONDS = 60.0
_cache: dict[tuple[int, uuid.UUID], tuple[float, frozenset[str], frozenset[str]]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class SavedSegment:
    """A segment as stored."""

    segment_id: uuid.UUID
    key: str
    name: str
    description: str | None
    rank: int | None
    condition: Condition
    depends_on: frozenset[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    refreshed_at: datetime | None

    def spec(self) -> SegmentSpec:
        """The spec this segment was saved from."""
        return SegmentSpec(
            key=self.key,
            name=self.name,
            description=self.description,
            rank=self.rank,
            condition=self.condition,
        )


def _row_to_segment(row: sa.Row[Any]) -> SavedSegment:
    m = row._mapping
    return SavedSegment(
        segment_id=m["segment_id"], key=m["key"], name=m["name"],
        description=m["description"], rank=m["rank"],
        condition=parse_condition(m["definition"]), depends_on=frozenset(m["depends_on"]),
        created_by=m["created_by"], created_at=m["created_at"], updated_at=m["updated_at"],
        refreshed_at=m["refreshed_at"],
    )  # fmt: skip


def _live(scope: Scope) -> list[sa.ColumnElement[bool]]:
    return [segments.c.workspace_id == scope.workspace_id, segments.c.archived_at.is_(None)]


def list_segments(scope: Scope) -> list[SavedSegment]:
    """The workspace's segments (not archived), by rank then key."""
    rows = scope.conn.execute(
        sa.select(segments)
        .where(*_live(scope))
        .order_by(segments.c.rank.is_(None), segments.c.rank, segments.c.key)
    )
    return [_row_to_segment(row) for row in rows]


def get_segment(scope: Scope, key: str) -> SavedSegment:
    """One segment by key; raises ``NotFound``."""
    row = scope.conn.execute(
        sa.select(segments).where(*_live(scope), segments.c.key == key)
    ).first()
    if row is None:
        raise NotFound(f"no segment {key!r} in this workspace")
    return _row_to_segment(row)


def segment_conditions(scope: Scope) -> dict[str, Condition]:
    """Every live segment's condition by key (what ``segment`` nodes may name)."""
    rows = scope.conn.execute(sa.select(segments.c.key, segments.c.definition).where(*_live(scope)))
    return {key: parse_condition(definition) for key, definition in rows}


def compile_context(scope: Scope, *, customer_ids: list[uuid.UUID] | None = None) -> CompileContext:
    """A compile context for the scope's workspace at ``scope.now`` with its segments."""
    workspace = get_workspace(scope.conn, scope.workspace_id)
    return CompileContext(
        workspace, scope.now, scope.conn.dialect.name, segment_conditions(scope), customer_ids
    )


def _distinct_event_names(conn: Connection, workspace_id: uuid.UUID) -> frozenset[str]:
    # A loose index scan over (workspace_id, name, …): one probe per distinct name.
    e = events.c
    mine = e.workspace_id == workspace_id
    first = sa.select(sa.func.min(e.name).label("name")).where(mine).cte("names", recursive=True)
    step = sa.select(
        sa.select(sa.func.min(e.name)).where(mine, e.name > first.c.name).scalar_subquery()
    ).where(first.c.name.is_not(None))
    names = first.union_all(step)
    return frozenset(n for n in conn.execute(sa.select(names.c.name)).scalars() if n is not None)


def _attribute_keys(conn: Connection, workspace_id: uuid.UUID) -> frozenset[str]:
    mine = customers.c.workspace_id == workspace_id
    if conn.dialect.name == "postgresql":
        keys = sa.select(sa.func.jsonb_object_keys(customers.c.attributes)).where(mine).distinct()
        return frozenset(conn.execute(keys).scalars())
    each = sa.func.json_each(customers.c.attributes).table_valued("key")
    query = sa.select(each.c.key).select_from(customers).join(each, sa.true()).where(mine)
    return frozenset(conn.execute(query.distinct()).scalars())


def load_vocabulary(scope: Scope, *, fresh: bool = False) -> Vocabulary:
    """Event names and attribute keys seen in the workspace, and its segments."""
    key = (id(scope.conn.engine), scope.workspace_id)
    with _cache_lock:
        cached = _cache.get(key)
    if fresh or cached is None or time.monotonic() - cached[0] > _VOCABULARY_SECONDS:
        names = _distinct_event_names(scope.conn, scope.workspace_id)
        attributes = _attribute_keys(scope.conn, scope.workspace_id)
        cached = (time.monotonic(), names, attributes)
        with _cache_lock:
            _cache[key] = cached
    return Vocabulary(cached[1], cached[2], segment_conditions(scope))


def check_condition_in(
    scope: Scope, condition: Condition, *, key: str | None = None
) -> CompileContext:
    """Check ``condition`` (saved under ``key``) against the workspace; its compile context.

    Raises ``InvalidInput`` with every problem and its node path (from the tree's root).
    """
    ctx = compile_context(scope)
    try:
        check_condition(condition, load_vocabulary(scope), ctx, key=key)
    except InvalidInput:  # a name may have arrived within the vocabulary's cache minute
        check_condition(condition, load_vocabulary(scope, fresh=True), ctx, key=key)
    return ctx


def check_spec(scope: Scope, spec: SegmentSpec) -> None:
    """Raise ``InvalidInput`` unless ``spec`` can be saved; paths name the spec's fields.

    A spec holds its tree under ``condition``, so a node's path reads
    ``condition.conditions[1].within`` — where a marketer's file or request has it.
    """
    try:
        check_condition_in(scope, spec.condition, key=spec.key)
    except InvalidInput as exc:
        raise InvalidInput(
            [
                Problem(
                    p.code, p.message, f"condition.{p.field}" if p.field else "condition", p.line
                )
                for p in exc.problems
            ]
        ) from None


def save_segment(scope: Scope, spec: SegmentSpec, actor: str) -> SavedSegment:
    """Create the segment, or replace the one with the same key; checked first."""
    check_spec(scope, spec)
    conditions = {**segment_conditions(scope), spec.key: spec.condition}
    values = {
        "name": spec.name, "description": spec.description, "rank": spec.rank,
        "definition": spec.condition.model_dump(mode="json", exclude_defaults=True),
        "depends_on": sorted(dependencies(spec.condition, conditions)), "updated_at": scope.now,
    }  # fmt: skip
    existing = scope.conn.execute(
        sa.select(segments.c.segment_id).where(*_live(scope), segments.c.key == spec.key)
    ).scalar()
    if existing is None:
        scope.conn.execute(
            segments.insert().values(
                workspace_id=scope.workspace_id, segment_id=new_id(), key=spec.key,
                created_by=actor, created_at=scope.now, **values,
            )
        )  # fmt: skip
    else:
        scope.conn.execute(
            segments.update()
            .where(segments.c.workspace_id == scope.workspace_id)
            .where(segments.c.segment_id == existing)
            .values(**values)
        )
    _refresh_dependants(scope, spec.key)
    return get_segment(scope, spec.key)


def _refresh_dependants(scope: Scope, key: str) -> None:
    """Recompute ``depends_on`` of segments that reference ``key`` (their causes changed)."""
    conditions = segment_conditions(scope)
    for saved in list_segments(scope):
        if f"segment:{key}" in saved.depends_on and saved.key != key:
            scope.conn.execute(
                segments.update()
                .where(segments.c.workspace_id == scope.workspace_id)
                .where(segments.c.segment_id == saved.segment_id)
                .values(depends_on=sorted(dependencies(saved.condition, conditions)))
            )


def archive_segment(scope: Scope, key: str) -> None:
    """Archive a segment (its members and signals stay for reports); ``NotFound`` if absent.

    Raises ``InvalidInput`` when another segment still refers to it.
    """
    saved = get_segment(scope, key)
    users = [s.key for s in list_segments(scope) if f"segment:{key}" in s.depends_on]
    if users:
        raise InvalidInput(
            Problem("segment_in_use", f"segments {', '.join(users)} refer to {key}", "key")
        )
    scope.conn.execute(
        segments.update()
        .where(segments.c.workspace_id == scope.workspace_id)
        .where(segments.c.segment_id == saved.segment_id)
        .values(archived_at=scope.now, key=f"{key[:55]}~{saved.segment_id.hex[:8]}")
    )
