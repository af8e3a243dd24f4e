"""Templates API: save (checked), validate, read, archive, preview for a customer; blocks.

Bodies are parsed by the template model itself, so a bad template answers 400 with
every problem at its part and line (``{"field": "html", "line": 12}``). A preview
masks personal data unless ``reveal``; a revealed preview is written to the
operation log with the caller and the client's address. Reading and previewing need
``templates.read`` (in clear also ``personal_data.read``), changing ``templates.write``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, Field

from kizuna.api.deps import get_db, require
from kizuna.content.context import SAMPLE_CONTEXT
from kizuna.content.library import (
    TemplatePreview,
    preview_template,
    save_block,
    save_template,
    validate_template,
)
from kizuna.content.spec import TemplateSpec, parse_template_spec
from kizuna.errors import InvalidInput, Problem
from kizuna.security.access import Caller
from kizuna.segments.report import workspace_scope
from kizuna.store.database import Database
from kizuna.store.profiles import find_customer_id
from kizuna.store.templates import (
    BlockRecord,
    TemplateRecord,
    archive_template,
    get_block,
    get_template,
    list_blocks,
    list_templates,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/workspaces/{workspace}/templates", tags=["templates"])
Db = Annotated[Database, Depends(get_db)]
_READ = [Depends(require("templates.read"))]
_WRITE = [Depends(require("templates.write"))]
Writer = Annotated[Caller, Depends(require("templates.write"))]
QueryRevealer = Annotated[Caller, Depends(require("templates.read", reveal="query"))]
BodyRevealer = Annotated[Caller, Depends(require("templates.read", reveal="body"))]
_EXAMPLE = {
    "key": "browse-reminder",
    "channel": "email",
    "name": "閲覧商品リマインド",
    "subject": "{{ first_name | default('お客様') }}様、気になる商品はまだございます",
    "body": "{{ last_name | default('お客様') }}様\n{% for p in recently_viewed %}"
    "- {{ p.name }} {{ p.price | default(0) | yen }}\n{% endfor %}",
}
SpecBody = Annotated[
    dict[str, Any],
    Body(description="A template: key, channel, name and the channel's parts (see /schema)",
         openapi_examples={"email": {"value": _EXAMPLE}}),
]  # fmt: skip
Purpose = Literal["marketing", "transactional"]


class TemplateOut(BaseModel):
    """A saved template's current version."""

    key: str
    channel: str
    name: str
    subject: str | None
    body: str
    html: str | None
    messages: list[dict[str, Any]] | None
    data: dict[str, str] | None
    payload: dict[str, Any] | list[Any] | None
    url: str | None
    params: dict[str, Any]
    version: int
    created_by: str
    updated_at: datetime


class ProblemOut(BaseModel):
    """One problem of a template: where (part and line) and what."""

    code: str
    message: str
    field: str | None
    line: int | None


class ValidationOut(BaseModel):
    """Whether a template could be saved, and if not, why."""

    ok: bool
    problems: list[ProblemOut]


class BlockOut(BaseModel):
    """A reusable block (``{% include "block:<key>" %}``)."""

    key: str
    body: str
    updated_by: str
    updated_at: datetime


class BlockIn(BaseModel):
    """A block's new body."""

    body: str = Field(max_length=200_000)


class PreviewIn(BaseModel):
    """An unsaved template to render for a customer."""

    template: dict[str, Any]
    customer: str = Field(description="Kizuna id, shop customer id, email or phone")
    purpose: Purpose | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    reveal: bool = False


class PreviewOut(BaseModel):
    """A template rendered for one customer (personal data masked unless revealed)."""

    key: str
    version: int | None
    channel: str
    customer_id: str
    purpose: str
    revealed: bool
    subject: str | None
    text: str
    html: str | None
    payload: Any
    warnings: list[str]


def _out(record: TemplateRecord) -> TemplateOut:
    spec = record.spec()
    return TemplateOut(
        **spec.model_dump(exclude={"key"}), key=record.key, version=record.version,
        created_by=record.created_by, updated_at=record.updated_at,
    )  # fmt: skip


def _block(record: BlockRecord) -> BlockOut:
    return BlockOut(key=record.key, body=record.body, updated_by=record.updated_by,
                    updated_at=record.updated_at)  # fmt: skip


def _preview(preview: TemplatePreview) -> PreviewOut:
    c = preview.content
    return PreviewOut(
        key=preview.key, version=preview.version, channel=preview.channel,
        customer_id=str(preview.customer_id), purpose=preview.purpose, revealed=preview.revealed,
        subject=c.subject, text=c.text, html=c.html, payload=dict(c.payload) or None,
        warnings=preview.warnings,
    )  # fmt: skip


@router.get("", dependencies=_READ, response_model=list[TemplateOut], summary="List templates")
def get_templates(
    workspace: str, db: Db, channel: Annotated[str | None, Query(description="Only one")] = None
) -> list[TemplateOut]:
    """The workspace's templates by key."""
    with workspace_scope(db, workspace) as scope:
        return [_out(t) for t in list_templates(scope, channel=channel)]


@router.post("", response_model=TemplateOut, summary="Create or replace a template")
def post_template(workspace: str, db: Db, caller: Writer, spec: SpecBody) -> TemplateOut:
    """Save the template under its key (a changed template gets a new version); checked first."""
    parsed = parse_template_spec(spec)
    with workspace_scope(db, workspace, write=True) as scope:
        return _out(save_template(scope, parsed, caller.name))


@router.get("/schema", dependencies=_READ, summary="JSON Schema of a template")
def get_schema(workspace: str, db: Db) -> dict[str, Any]:
    """The JSON Schema of a template (for editors)."""
    with workspace_scope(db, workspace):
        return TemplateSpec.model_json_schema()


@router.get("/context", dependencies=_READ, summary="The personalization context, as a sample")
def get_context(workspace: str, db: Db) -> dict[str, Any]:
    """A sample of what templates can use (see kizuna.content.context for the rules)."""
    with workspace_scope(db, workspace):
        return SAMPLE_CONTEXT


def _problems(db: Database, workspace: str, spec: dict[str, Any]) -> list[Problem]:
    try:
        parsed = parse_template_spec(spec)
    except InvalidInput as exc:
        return exc.problems
    with workspace_scope(db, workspace) as scope:
        return validate_template(scope, parsed)


@router.post(
    "/validate", dependencies=_WRITE, response_model=ValidationOut, summary="Check a template"
)
def post_validate(workspace: str, db: Db, spec: SpecBody) -> ValidationOut:
    """Every problem the template has (syntax, unknown names, missing fallbacks); saves nothing."""
    problems = _problems(db, workspace, spec)
    return ValidationOut(
        ok=not problems, problems=[ProblemOut.model_validate(asdict(p)) for p in problems]
    )


@router.post("/preview", response_model=PreviewOut, summary="Preview an unsaved template")
def post_preview(workspace: str, db: Db, caller: BodyRevealer, body: PreviewIn) -> PreviewOut:
    """Render a template that is not saved yet for a customer."""
    caller.check_reveal(body.reveal)
    spec = parse_template_spec(body.template)
    with workspace_scope(db, workspace, write=body.reveal) as scope:
        customer_id = find_customer_id(scope.conn, scope.cipher, scope.workspace_id, body.customer)
        return _preview(preview_template(scope, spec, customer_id, actor=caller.actor(),
                                         reveal=body.reveal, purpose=body.purpose,
                                         params=body.params))  # fmt: skip


@router.get("/blocks", dependencies=_READ, response_model=list[BlockOut], summary="List blocks")
def get_blocks(workspace: str, db: Db) -> list[BlockOut]:
    """The workspace's reusable blocks by key."""
    with workspace_scope(db, workspace) as scope:
        return [_block(b) for b in list_blocks(scope)]


@router.get("/blocks/{key}", dependencies=_READ, response_model=BlockOut, summary="Read a block")
def get_one_block(workspace: str, key: str, db: Db) -> BlockOut:
    """One block."""
    with workspace_scope(db, workspace) as scope:
        return _block(get_block(scope, key))


@router.put("/blocks/{key}", response_model=BlockOut, summary="Create or replace a block")
def put_one_block(workspace: str, key: str, db: Db, caller: Writer, block: BlockIn) -> BlockOut:
    """Save a block; refused when it breaks a template that includes blocks."""
    with workspace_scope(db, workspace, write=True) as scope:
        return _block(save_block(scope, key, block.body, caller.name))


@router.get("/{key}", dependencies=_READ, response_model=TemplateOut, summary="Read a template")
def get_one(workspace: str, key: str, db: Db) -> TemplateOut:
    """One template's current version."""
    with workspace_scope(db, workspace) as scope:
        return _out(get_template(scope, key))


@router.delete("/{key}", dependencies=_WRITE, status_code=204, summary="Archive a template")
def delete_template(workspace: str, key: str, db: Db) -> Response:
    """Archive the template; queued messages using it fail with that reason."""
    with workspace_scope(db, workspace, write=True) as scope:
        archive_template(scope, key)
    return Response(status_code=204)


@router.get("/{key}/preview", response_model=PreviewOut, summary="Preview for a customer")
def get_preview(
    workspace: str, key: str, db: Db, caller: QueryRevealer,
    customer: Annotated[str, Query(description="Kizuna id, shop customer id, email or phone")],
    purpose: Annotated[Purpose | None, Query(description="Default: marketing for email")] = None,
    reveal: Annotated[bool, Query(description="Personal data in clear (logged)")] = False,
) -> PreviewOut:  # fmt: skip
    """The saved template rendered for a real customer, masked unless ``reveal``."""
    with workspace_scope(db, workspace, write=reveal) as scope:
        customer_id = find_customer_id(scope.conn, scope.cipher, scope.workspace_id, customer)
        return _preview(preview_template(scope, key, customer_id, actor=caller.actor(),
                                         reveal=reveal, purpose=purpose))  # fmt: skip
