"""Saved scenarios: drafts, published versions, and their life cycle.

A scenario is saved as a *draft* (checked first, so a stored draft always names
real nodes, templates, events and segments). *Publishing* copies the draft into
``scenario_versions`` as the next version and makes it the one new runs enter;
a run stays on the version it entered (the engine reads it with
:func:`get_version`), so editing and republishing never changes a run under way.

Statuses: ``draft`` (never published) → ``live`` ⇄ ``paused`` (no new entries) →
``archived`` (its key is freed for a new scenario; versions stay for reports).
Publishing, pausing, resuming and archiving are written to the operation log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.errors import Conflict, InvalidInput, NotFound
from kizuna.scenarios.checks import check_scenario, parse_scenario
from kizuna.scenarios.definition import ScenarioSpec
from kizuna.scenarios.inbox import forget_watched
from kizuna.store.operation_log import Actor, log_operation
from kizuna.store.scope import Scope
from kizuna.store.tables import scenario_versions, scenarios
from kizuna.store.types import new_id

__all__ = [
    "LiveScenario",
    "SavedScenario",
    "ScenarioVersion",
    "Status",
    "archive_scenario",
    "check_spec",
    "get_scenario",
    "get_version",
    "list_scenarios",
    "live_scenarios",
    "pause_scenario",
    "publish_scenario",
    "resume_scenario",
    "save_scenario",
]

Status = Literal["draft", "live", "paused", "archived"]


@dataclass(frozen=True, slots=True)
class ScenarioVersion:
    """One published version: who published it, when."""

    version: int
    published_by: str
    published_at: datetime


@dataclass(frozen=True, slots=True)
class SavedScenario:
    """A scenario as stored: its latest draft, status and published versions (oldest first)."""

    scenario_id: uuid.UUID
    key: str
    name: str
    priority: int
    status: Status
    live_version: int | None
    draft: ScenarioSpec
    changed: bool  # the draft differs from the live version (or was never published)
    versions: tuple[ScenarioVersion, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class LiveScenario:
    """A scenario new runs may enter now, at its live version (what the engine reads)."""

    scenario_id: uuid.UUID
    key: str
    priority: int
    version: int
    spec: ScenarioSpec


def _document(spec: ScenarioSpec) -> dict[str, Any]:
    # Every field, defaults included: a published version keeps its meaning even if a
    # default changes in a later release.
    return spec.model_dump(mode="json")


def _mine(workspace_id: uuid.UUID) -> sa.ColumnElement[bool]:
    return scenarios.c.workspace_id == workspace_id


def _versions(scope: Scope, scenario_id: uuid.UUID) -> tuple[ScenarioVersion, ...]:
    v = scenario_versions.c
    rows = scope.conn.execute(
        sa.select(v.version, v.published_by, v.published_at)
        .where(v.workspace_id == scope.workspace_id, v.scenario_id == scenario_id)
        .order_by(v.version)
    )
    return tuple(ScenarioVersion(r.version, r.published_by, r.published_at) for r in rows)


def _select() -> sa.Select[Any]:
    """Scenarios with their live version's definition (``live_definition``, or NULL)."""
    s, v = scenarios.c, scenario_versions.c
    live = sa.and_(
        v.workspace_id == s.workspace_id,
        v.scenario_id == s.scenario_id,
        v.version == s.live_version,
    )
    return sa.select(scenarios, v.definition.label("live_definition")).select_from(
        scenarios.outerjoin(scenario_versions, live)
    )


def _saved(scope: Scope, row: sa.Row[Any], *, versions: bool) -> SavedScenario:
    m = row._mapping
    return SavedScenario(
        scenario_id=m["scenario_id"], key=m["key"], name=m["name"], priority=m["priority"],
        status=m["status"], live_version=m["live_version"], draft=parse_scenario(m["draft"]),
        changed=m["live_definition"] != m["draft"],
        versions=_versions(scope, m["scenario_id"]) if versions else (),
        created_by=m["created_by"], created_at=m["created_at"], updated_at=m["updated_at"],
    )  # fmt: skip


def _row(scope: Scope, key: str, *, lock: bool = False) -> sa.Row[Any]:
    query = _select().where(
        _mine(scope.workspace_id), scenarios.c.key == key, scenarios.c.status != "archived"
    )
    # Locked, two publishers cannot both take the next version number (PostgreSQL; a
    # SQLite write transaction is already exclusive).
    row = scope.conn.execute(query.with_for_update(of=scenarios) if lock else query).first()
    if row is None:
        raise NotFound(f"no scenario {key!r} in this workspace")
    return row


def get_scenario(scope: Scope, key: str) -> SavedScenario:
    """One scenario by key, with its versions; ``NotFound`` (archived ones too)."""
    return _saved(scope, _row(scope, key), versions=True)


def list_scenarios(scope: Scope) -> list[SavedScenario]:
    """The workspace's scenarios (not archived), by priority (highest first), then key."""
    rows = scope.conn.execute(
        _select()
        .where(_mine(scope.workspace_id), scenarios.c.status != "archived")
        .order_by(scenarios.c.priority.desc(), scenarios.c.key)
    )
    return [_saved(scope, row, versions=False) for row in rows]


def check_spec(scope: Scope, spec: ScenarioSpec) -> None:
    """Raise ``InvalidInput`` with every problem unless ``spec`` can be saved in the workspace."""
    problems = check_scenario(scope, spec)
    if problems:
        raise InvalidInput(problems)


def save_scenario(scope: Scope, spec: ScenarioSpec, actor: str) -> SavedScenario:
    """Create the scenario as a draft, or replace the draft of the one with this key.

    Checked first (``InvalidInput``). A live or paused scenario keeps running its
    published version until the new draft is published.
    """
    check_spec(scope, spec)
    values = {"name": spec.name, "priority": spec.priority, "draft": _document(spec),
              "updated_at": scope.now}  # fmt: skip
    existing = scope.conn.execute(
        sa.select(scenarios.c.scenario_id).where(
            _mine(scope.workspace_id), scenarios.c.key == spec.key,
            scenarios.c.status != "archived",
        )
    ).scalar()  # fmt: skip
    if existing is None:
        scope.conn.execute(
            scenarios.insert().values(
                workspace_id=scope.workspace_id, scenario_id=new_id(), key=spec.key,
                status="draft", live_version=None, created_by=actor, created_at=scope.now,
                **values,
            )
        )  # fmt: skip
    else:
        scope.conn.execute(
            scenarios.update()
            .where(_mine(scope.workspace_id), scenarios.c.scenario_id == existing)
            .values(**values)
        )
    return get_scenario(scope, spec.key)


def _log(scope: Scope, actor: Actor, action: str, key: str, details: dict[str, Any]) -> None:
    log_operation(
        scope.conn, workspace_id=scope.workspace_id, at=scope.now, actor=actor.name,
        origin=actor.origin, action=action, target=f"scenario:{key}", details=details,
    )  # fmt: skip


def _set(scope: Scope, scenario_id: uuid.UUID, **values: Any) -> None:
    scope.conn.execute(
        scenarios.update()
        .where(_mine(scope.workspace_id), scenarios.c.scenario_id == scenario_id)
        .values(updated_at=scope.now, **values)
    )
    forget_watched(scope.workspace_id)  # this process's ingest sees the new triggers at once


def _stored_definition(
    conn: Connection, workspace_id: uuid.UUID, scenario_id: uuid.UUID, version: int
) -> Any:
    v = scenario_versions.c
    return conn.execute(
        sa.select(v.definition).where(
            v.workspace_id == workspace_id, v.scenario_id == scenario_id, v.version == version
        )
    ).scalar()


def _add_version(scope: Scope, row: sa.Row[Any], actor: Actor) -> int:
    v = scenario_versions.c
    last = scope.conn.execute(
        sa.select(sa.func.max(v.version)).where(
            v.workspace_id == scope.workspace_id, v.scenario_id == row.scenario_id
        )
    ).scalar()
    version = int(last or 0) + 1
    scope.conn.execute(
        scenario_versions.insert().values(
            workspace_id=scope.workspace_id, scenario_id=row.scenario_id, version=version,
            definition=row.draft, published_by=actor.name, published_at=scope.now,
        )
    )  # fmt: skip
    return version


def publish_scenario(scope: Scope, key: str, actor: Actor) -> int:
    """Publish the draft as the next version and make it live; returns the live version.

    The draft is checked again (a template may have been archived since it was
    saved). A draft equal to the live version publishes nothing new: the scenario
    goes live (again) on that version.
    """
    row = _row(scope, key, lock=True)
    check_spec(scope, parse_scenario(row.draft))
    version: int | None = row.live_version
    # Read after taking the lock: a publish that committed while this one waited is seen.
    live = version and _stored_definition(scope.conn, scope.workspace_id, row.scenario_id, version)
    if version is None or live != row.draft:
        version = _add_version(scope, row, actor)
    _set(scope, row.scenario_id, status="live", live_version=version)
    _log(scope, actor, "scenario.publish", key, {"version": version, "was": row.status})
    return version


def _move(scope: Scope, key: str, actor: Actor, action: str, frm: Status, to: Status) -> None:
    row = _row(scope, key, lock=True)
    if row.status != frm:
        raise Conflict(f"cannot {action} scenario {key!r}: it is {row.status}, not {frm}")
    _set(scope, row.scenario_id, status=to)
    _log(scope, actor, f"scenario.{action}", key, {"version": row.live_version})


def pause_scenario(scope: Scope, key: str, actor: Actor) -> None:
    """Stop new entries into a live scenario; ``Conflict`` unless it is live."""
    _move(scope, key, actor, "pause", "live", "paused")


def resume_scenario(scope: Scope, key: str, actor: Actor) -> None:
    """Let customers enter a paused scenario again; ``Conflict`` unless it is paused."""
    _move(scope, key, actor, "resume", "paused", "live")


def archive_scenario(scope: Scope, key: str, actor: Actor) -> None:
    """Archive a scenario: no new entries, its key free for reuse; versions stay for reports."""
    row = _row(scope, key)
    renamed = f"{key[:55]}~{row.scenario_id.hex[:8]}"  # frees the key (unique per workspace)
    _set(scope, row.scenario_id, status="archived", key=renamed)
    _log(scope, actor, "scenario.archive", key, {"version": row.live_version, "was": row.status})


def live_scenarios(conn: Connection, workspace_id: uuid.UUID) -> list[LiveScenario]:
    """Every live scenario at its live version, by priority (highest first), then key."""
    s, v = scenarios.c, scenario_versions.c
    rows = conn.execute(
        sa.select(s.scenario_id, s.key, s.priority, v.version, v.definition)
        .join(
            scenario_versions,
            sa.and_(
                v.workspace_id == s.workspace_id,
                v.scenario_id == s.scenario_id,
                v.version == s.live_version,
            ),
        )
        .where(_mine(workspace_id), s.status == "live")
        .order_by(s.priority.desc(), s.key)
    )
    return [
        LiveScenario(r.scenario_id, r.key, r.priority, r.version, parse_scenario(r.definition))
        for r in rows
    ]


def get_version(
    conn: Connection, workspace_id: uuid.UUID, scenario_id: uuid.UUID, version: int
) -> ScenarioSpec:
    """A published version's definition; ``NotFound`` when there is no such version."""
    definition = _stored_definition(conn, workspace_id, scenario_id, version)
    if definition is None:
        raise NotFound(f"scenario {scenario_id} has no version {version}")
    return parse_scenario(definition)
