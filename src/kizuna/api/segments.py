"""Segments API: save, validate, count while typing, 4R report, preview and export.

Bodies are parsed by the definition language itself (not by FastAPI), so a bad
definition answers 400 with every problem at its node's path
(``condition.conditions[2].within.days``). Reveals and exports are written to the
operation log with the caller and the client's address. Reading needs ``segments.read``,
changing ``segments.write``; reveals and clear exports also ``personal_data.read``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from kizuna.api.deps import get_db, require
from kizuna.errors import InvalidInput, Problem
from kizuna.security.access import Caller
from kizuna.segments.definition import SegmentSpec, parse_condition, parse_spec
from kizuna.segments.export import MAX_PREVIEW, SegmentPreview, open_export, preview_segment
from kizuna.segments.report import (
    FourRReport,
    ReportOptions,
    SegmentCounts,
    count_draft,
    count_segment,
    segment_report,
    workspace_scope,
)
from kizuna.store.database import Database
from kizuna.store.segments import (
    SavedSegment,
    archive_segment,
    check_spec,
    get_segment,
    list_segments,
    save_segment,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/workspaces/{workspace}/segments", tags=["segments"])
Db = Annotated[Database, Depends(get_db)]
_READ = [Depends(require("segments.read"))]
_WRITE = [Depends(require("segments.write"))]
Writer = Annotated[Caller, Depends(require("segments.write"))]
Revealer = Annotated[Caller, Depends(require("segments.read", reveal="query"))]
_SPEC_EXAMPLE = {
    "key": "lapsed-skincare",
    "name": "スキンケア閲覧・90日未購入",
    "rank": 1,
    "condition": {"type": "and", "conditions": [
        {"type": "event", "name": "Product Viewed", "at_least": 3, "within": {"days": 30},
         "where": [{"property": "category", "value": "スキンケア"}]},
        {"type": "not", "condition": {"type": "orders", "within": {"days": 90}}},
        {"type": "channel", "channel": "email"},
    ]},
}  # fmt: skip
SpecBody = Annotated[
    dict[str, Any],
    Body(description="A segment spec: key, name, description, rank, condition (see /schema)",
         openapi_examples={"segment": {"value": _SPEC_EXAMPLE}}),
]  # fmt: skip
ConditionBody = Annotated[
    dict[str, Any],
    Body(description="A condition tree (see /schema)",
         openapi_examples={"condition": {"value": _SPEC_EXAMPLE["condition"]}}),
]  # fmt: skip


class SegmentOut(BaseModel):
    """A saved segment and what can change its membership."""

    key: str
    name: str
    description: str | None
    rank: int | None
    condition: dict[str, Any]
    depends_on: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    refreshed_at: datetime | None


class ProblemOut(BaseModel):
    """One problem of a definition, at its node's path."""

    code: str
    message: str
    field: str | None
    line: int | None


class ValidationOut(BaseModel):
    """Whether a spec could be saved, and if not, why."""

    ok: bool
    problems: list[ProblemOut]


def _out(saved: SavedSegment) -> SegmentOut:
    return SegmentOut(
        key=saved.key, name=saved.name, description=saved.description, rank=saved.rank,
        condition=saved.condition.model_dump(mode="json", exclude_defaults=True),
        depends_on=sorted(saved.depends_on), created_by=saved.created_by,
        created_at=saved.created_at, updated_at=saved.updated_at, refreshed_at=saved.refreshed_at,
    )  # fmt: skip


@router.get("", dependencies=_READ, response_model=list[SegmentOut], summary="List segments")
def get_segments(workspace: str, db: Db) -> list[SegmentOut]:
    """The workspace's segments, by rank then key."""
    with workspace_scope(db, workspace) as scope:
        return [_out(s) for s in list_segments(scope)]


@router.post("", response_model=SegmentOut, summary="Create or replace a segment")
def post_segment(workspace: str, db: Db, caller: Writer, spec: SpecBody) -> SegmentOut:
    """Save the spec under its key (replacing a segment with that key); checked first."""
    parsed = parse_spec(spec)
    with workspace_scope(db, workspace, write=True) as scope:
        return _out(save_segment(scope, parsed, caller.name))


@router.get("/schema", dependencies=_READ, summary="JSON Schema of a segment spec")
def get_schema(workspace: str, db: Db) -> dict[str, Any]:
    """The JSON Schema of a segment spec and its condition tree (for editors)."""
    with workspace_scope(db, workspace):
        return SegmentSpec.model_json_schema()


def _spec_problems(db: Database, workspace: str, spec: dict[str, Any]) -> list[Problem]:
    try:
        parsed = parse_spec(spec)
    except InvalidInput as exc:
        return exc.problems
    try:
        with workspace_scope(db, workspace) as scope:
            check_spec(scope, parsed)
    except InvalidInput as exc:
        return exc.problems
    return []


@router.post(
    "/validate",
    dependencies=_WRITE,
    response_model=ValidationOut,
    summary="Check a spec without saving",
)
def post_validate(workspace: str, db: Db, spec: SpecBody) -> ValidationOut:
    """Every problem the spec has (shape, names, types, cycles), or ``ok``; saves nothing."""
    problems = _spec_problems(db, workspace, spec)
    return ValidationOut(
        ok=not problems, problems=[ProblemOut.model_validate(asdict(p)) for p in problems]
    )


@router.post(
    "/count", dependencies=_READ, response_model=SegmentCounts, summary="Count an unsaved condition"
)
def post_count(workspace: str, db: Db, condition: ConditionBody) -> SegmentCounts:
    """Customers matching a condition tree now, and how many each channel reaches."""
    return count_draft(db, workspace, parse_condition(condition))


@router.get("/{key}", dependencies=_READ, response_model=SegmentOut, summary="Read a segment")
def get_one(workspace: str, key: str, db: Db) -> SegmentOut:
    """One segment with its definition."""
    with workspace_scope(db, workspace) as scope:
        return _out(get_segment(scope, key))


@router.delete("/{key}", dependencies=_WRITE, status_code=204, summary="Archive a segment")
def delete_segment(workspace: str, key: str, db: Db) -> Response:
    """Archive the segment (refused while another segment refers to it)."""
    with workspace_scope(db, workspace, write=True) as scope:
        archive_segment(scope, key)
    return Response(status_code=204)


@router.get(
    "/{key}/count", dependencies=_READ, response_model=SegmentCounts, summary="Count a segment"
)
def get_count(workspace: str, key: str, db: Db) -> SegmentCounts:
    """Members now, and how many each channel reaches."""
    return count_segment(db, workspace, key)


@router.get("/{key}/report", dependencies=_READ, response_model=FourRReport, summary="4R report")
def get_report(
    workspace: str, key: str, db: Db,
    baseline: Annotated[float, Query(description="Expected conversion rate")] = 0.02,
    control_share: Annotated[float, Query(description="Share held out as control")] = 0.1,
    lift: Annotated[float, Query(description="Relative lift hoped for (0.2: +20%)")] = 0.2,
    revenue_days: Annotated[int, Query(description="Revenue window in days")] = 365,
    currency: Annotated[str | None, Query(description="When orders use several")] = None,
) -> FourRReport:  # fmt: skip
    """Realistic (size, shares), Reach (per channel), Response (detectable lift), Rank."""
    options = ReportOptions(baseline, control_share, lift, revenue_days, currency)
    return segment_report(db, workspace, key, options)


@router.get("/{key}/preview", response_model=SegmentPreview, summary="Preview members")
def get_preview(
    workspace: str, key: str, db: Db, caller: Revealer,
    limit: Annotated[int, Query(ge=1, le=MAX_PREVIEW)] = 20,
    reveal: Annotated[bool, Query(description="Personal data in clear (logged)")] = False,
) -> SegmentPreview:  # fmt: skip
    """A random sample of members, personal data masked unless ``reveal``."""
    return preview_segment(db, workspace, key, limit=limit, reveal=reveal, actor=caller.actor())


@router.get(
    "/{key}/export",
    summary="Export members",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}},
)
def get_export(
    workspace: str, key: str, db: Db, caller: Revealer,
    format: Annotated[Literal["csv", "parquet"], Query(description="File format")] = "csv",
    reveal: Annotated[bool, Query(description="Personal data in clear")] = False,
) -> StreamingResponse:  # fmt: skip
    """Every member as CSV (UTF-8 with BOM) or Parquet, streamed; logged before it starts."""
    export = open_export(db, workspace, key, format=format, reveal=reveal, actor=caller.actor())
    headers = {"Content-Disposition": f'attachment; filename="{export.filename}"',
               "X-Kizuna-Rows": str(export.rows)}  # fmt: skip
    return StreamingResponse(export.stream(), media_type=export.media_type, headers=headers,
                             background=BackgroundTask(export.close))  # fmt: skip
