"""Scenarios API: save drafts, validate, publish versions, pause, resume and archive.

Bodies are parsed by the scenario language itself (not by FastAPI), so a bad
definition answers 400 with every problem at its node's path
(``nodes.remind.template``). Publishing, pausing, resuming and archiving are written
to the operation log with the caller and the client's address. Reading needs
``scenarios.read``, drafts ``scenarios.write``, going live or stopping ``scenarios.publish``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from pydantic import BaseModel

from kizuna.api.deps import get_db, require
from kizuna.errors import InvalidInput, Problem
from kizuna.scenarios.checks import parse_scenario, scenario_schema
from kizuna.security.access import Caller
from kizuna.segments.report import workspace_scope
from kizuna.store.database import Database
from kizuna.store.scenarios import (
    SavedScenario,
    archive_scenario,
    check_spec,
    get_scenario,
    get_version,
    list_scenarios,
    pause_scenario,
    publish_scenario,
    resume_scenario,
    save_scenario,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/workspaces/{workspace}/scenarios", tags=["scenarios"])
Db = Annotated[Database, Depends(get_db)]
_READ = [Depends(require("scenarios.read"))]
_WRITE = [Depends(require("scenarios.write"))]
Writer = Annotated[Caller, Depends(require("scenarios.write"))]
Publisher = Annotated[Caller, Depends(require("scenarios.publish"))]
_EXAMPLE = {
    "key": "cart-abandonment",
    "name": "カゴ落ちリマインド",
    "priority": 10,
    "trigger": {"type": "event", "event": "Checkout Started",
                "where": [{"property": "value", "op": "gte", "value": 5000}]},
    "entry": {"reentry": "every_time"},
    "goal": {"event": "Order Completed"},
    "start": "wait-1h",
    "nodes": [
        {"id": "wait-1h", "type": "wait", "duration": {"hours": 1}, "next": "remind"},
        {"id": "remind", "type": "send", "channel": "email", "template": "cart-reminder",
         "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}  # fmt: skip
SpecBody = Annotated[
    dict[str, Any],
    Body(description="A scenario definition: key, name, trigger, entry, goal, exits, "
                     "holdout_percent, start, nodes (see /schema)",
         openapi_examples={"cart-abandonment": {"value": _EXAMPLE}}),
]  # fmt: skip


class VersionOut(BaseModel):
    """One published version."""

    version: int
    published_by: str
    published_at: datetime


class ScenarioOut(BaseModel):
    """A scenario: its status, live version and latest draft."""

    key: str
    name: str
    priority: int
    status: str
    live_version: int | None
    changed: bool  # the draft differs from the live version
    draft: dict[str, Any]
    versions: list[VersionOut]
    created_by: str
    created_at: datetime
    updated_at: datetime


class ProblemOut(BaseModel):
    """One problem of a definition, at its node's path."""

    code: str
    message: str
    field: str | None
    line: int | None


class ValidationOut(BaseModel):
    """Whether a definition could be saved, and if not, why."""

    ok: bool
    problems: list[ProblemOut]


class PublishedOut(BaseModel):
    """The version new runs enter now."""

    key: str
    version: int
    status: str


def _out(saved: SavedScenario) -> ScenarioOut:
    return ScenarioOut(
        key=saved.key, name=saved.name, priority=saved.priority, status=saved.status,
        live_version=saved.live_version, changed=saved.changed,
        draft=saved.draft.model_dump(mode="json", exclude_defaults=True),
        versions=[VersionOut.model_validate(asdict(v)) for v in saved.versions],
        created_by=saved.created_by, created_at=saved.created_at, updated_at=saved.updated_at,
    )  # fmt: skip


@router.get("", dependencies=_READ, response_model=list[ScenarioOut], summary="List scenarios")
def get_scenarios(workspace: str, db: Db) -> list[ScenarioOut]:
    """The workspace's scenarios (not archived), highest priority first."""
    with workspace_scope(db, workspace) as scope:
        return [_out(s) for s in list_scenarios(scope)]


@router.post("", response_model=ScenarioOut, summary="Save a scenario draft")
def post_scenario(workspace: str, db: Db, caller: Writer, spec: SpecBody) -> ScenarioOut:
    """Save the definition as the draft of the scenario with its key (checked first).

    A live scenario keeps running its published version until the draft is published.
    """
    parsed = parse_scenario(spec)
    with workspace_scope(db, workspace, write=True) as scope:
        return _out(save_scenario(scope, parsed, caller.name))


@router.get("/schema", dependencies=_READ, summary="JSON Schema of a scenario definition")
def get_schema(workspace: str, db: Db) -> dict[str, Any]:
    """The JSON Schema of a scenario definition (for editors)."""
    with workspace_scope(db, workspace):
        return scenario_schema()


def _problems(db: Database, workspace: str, spec: dict[str, Any]) -> list[Problem]:
    try:
        parsed = parse_scenario(spec)
        with workspace_scope(db, workspace) as scope:
            check_spec(scope, parsed)
    except InvalidInput as exc:
        return exc.problems
    return []


@router.post(
    "/validate", dependencies=_WRITE, response_model=ValidationOut, summary="Check a definition"
)
def post_validate(workspace: str, db: Db, spec: SpecBody) -> ValidationOut:
    """Every problem the definition has (shape, graph, names, conditions), or ``ok``."""
    problems = _problems(db, workspace, spec)
    return ValidationOut(
        ok=not problems, problems=[ProblemOut.model_validate(asdict(p)) for p in problems]
    )


@router.get("/{key}", dependencies=_READ, response_model=ScenarioOut, summary="Read a scenario")
def get_one(workspace: str, key: str, db: Db) -> ScenarioOut:
    """One scenario with its draft and published versions."""
    with workspace_scope(db, workspace) as scope:
        return _out(get_scenario(scope, key))


@router.get("/{key}/versions/{version}", dependencies=_READ, summary="Read a published version")
def get_published(workspace: str, key: str, version: int, db: Db) -> dict[str, Any]:
    """The definition of one published version, as runs that entered it follow it."""
    with workspace_scope(db, workspace) as scope:
        saved = get_scenario(scope, key)
        spec = get_version(scope.conn, scope.workspace_id, saved.scenario_id, version)
    return spec.model_dump(mode="json", exclude_defaults=True)


@router.post("/{key}/publish", response_model=PublishedOut, summary="Publish the draft")
def post_publish(workspace: str, key: str, db: Db, caller: Publisher) -> PublishedOut:
    """Publish the draft as a new version and make it live; runs under way keep theirs."""
    with workspace_scope(db, workspace, write=True) as scope:
        version = publish_scenario(scope, key, caller.actor())
    return PublishedOut(key=key, version=version, status="live")


@router.post("/{key}/pause", response_model=ScenarioOut, summary="Pause a live scenario")
def post_pause(workspace: str, key: str, db: Db, caller: Publisher) -> ScenarioOut:
    """Stop new entries (409 unless live)."""
    with workspace_scope(db, workspace, write=True) as scope:
        pause_scenario(scope, key, caller.actor())
        return _out(get_scenario(scope, key))


@router.post("/{key}/resume", response_model=ScenarioOut, summary="Resume a paused scenario")
def post_resume(workspace: str, key: str, db: Db, caller: Publisher) -> ScenarioOut:
    """Let customers enter again (409 unless paused)."""
    with workspace_scope(db, workspace, write=True) as scope:
        resume_scenario(scope, key, caller.actor())
        return _out(get_scenario(scope, key))


@router.post("/{key}/archive", status_code=204, summary="Archive a scenario")
def post_archive(workspace: str, key: str, db: Db, caller: Publisher) -> Response:
    """Archive the scenario: no new entries; its key may be used again."""
    with workspace_scope(db, workspace, write=True) as scope:
        archive_scenario(scope, key, caller.actor())
    return Response(status_code=204)
