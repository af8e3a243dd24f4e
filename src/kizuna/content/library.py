"""The template library: save templates and blocks (checked first), validate, preview.

A template is checked against the workspace before it is stored (see
:mod:`kizuna.content.validation`), so a stored template renders for every
customer unless their data is of an unexpected kind. A block is checked for
syntax, and every template including blocks is re-checked with the new block, so
a block change cannot break a saved template.

A preview renders a template for a real customer. Their context is personal
data: it is masked (``山田 *``, ``h***@example.jp``) unless the caller asks to
reveal it, and a revealed preview is written to the operation log first.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kizuna.channels.base import Content
from kizuna.content.context import build_contexts, message_context, sample_links
from kizuna.content.environment import BLOCK_PREFIX, ContentEnvironment, RenderError
from kizuna.content.footer import add_legal_footer, footer_problems, needs_legal_footer
from kizuna.content.render import CompiledTemplate
from kizuna.content.spec import TemplateSpec, template_parts
from kizuna.content.validation import (
    block_problems,
    sample_contexts,
    syntax_problems,
    template_problems,
)
from kizuna.delivery.settings import Sender, load_delivery_settings
from kizuna.errors import InvalidInput, NotFound, Problem
from kizuna.security.masking import mask_trait
from kizuna.store.operation_log import Actor, log_operation
from kizuna.store.scope import Scope
from kizuna.store.templates import (
    BlockRecord,
    TemplateRecord,
    get_template,
    list_templates,
    load_blocks,
    put_block,
    put_template,
)
from kizuna.store.workspaces import get_workspace

__all__ = [
    "TemplatePreview",
    "check_template",
    "preview_template",
    "save_block",
    "save_template",
    "validate_template",
]

# Context key -> the trait whose masking rule it follows.
_PERSONAL = {"first_name": "first_name", "last_name": "last_name", "full_name": "last_name",
             "first_name_kana": "first_name_kana", "last_name_kana": "last_name_kana",
             "full_name_kana": "last_name_kana", "email": "email"}  # fmt: skip


def _environment(scope: Scope, blocks: Mapping[str, str] | None = None) -> ContentEnvironment:
    # Uncached: a check may try blocks that are not saved yet.
    zone = get_workspace(scope.conn, scope.workspace_id).time_zone
    return ContentEnvironment(zone, load_blocks(scope) if blocks is None else blocks)


def validate_template(
    scope: Scope, spec: TemplateSpec, *, blocks: Mapping[str, str] | None = None
) -> list[Problem]:
    """Every problem ``spec`` has in this workspace (with ``blocks`` instead of the saved ones)."""
    env = _environment(scope, blocks)
    problems = syntax_problems(env, spec)
    if problems:
        return problems
    settings = load_delivery_settings(scope.conn, scope.workspace_id)
    return template_problems(env, spec, sample_contexts(scope, settings, spec.params))


def check_template(scope: Scope, spec: TemplateSpec) -> None:
    """Raise ``InvalidInput`` with every problem unless ``spec`` can be saved."""
    problems = validate_template(scope, spec)
    if problems:
        raise InvalidInput(problems)


def save_template(scope: Scope, spec: TemplateSpec, actor: str) -> TemplateRecord:
    """Check ``spec``, then store it as the template's next version."""
    check_template(scope, spec)
    return put_template(scope, spec, actor)


def _uses_blocks(template: TemplateRecord) -> bool:
    return any(BLOCK_PREFIX in str(source) for source in template_parts(template.spec()).values())


def save_block(scope: Scope, key: str, body: str, actor: str) -> BlockRecord:
    """Check a block and every template including blocks with it, then store it.

    ``InvalidInput`` names the block's own problems under ``body`` and a template's
    under ``templates.<key>.<part>``.
    """
    blocks = {**load_blocks(scope), key: body}
    problems = block_problems(_environment(scope, blocks), key, body)
    if not problems:
        for template in filter(_uses_blocks, list_templates(scope)):
            problems += [
                Problem(p.code, p.message, f"templates.{template.key}.{p.field}", p.line)
                for p in validate_template(scope, template.spec(), blocks=blocks)
            ]
    if problems:
        raise InvalidInput(problems)
    return put_block(scope, key, body, actor)


@dataclass(frozen=True, slots=True)
class TemplatePreview:
    """A template rendered for one customer."""

    key: str
    version: int | None  # None for an unsaved template
    channel: str
    customer_id: uuid.UUID
    purpose: str
    revealed: bool
    content: Content
    warnings: list[str] = field(default_factory=list)


def _masked(context: dict[str, Any]) -> dict[str, Any]:
    masked = dict(context)
    for key, trait in _PERSONAL.items():
        if key in masked:
            # IMPORTANT: personal values leave in clear only when explicitly revealed.
            masked[key] = mask_trait(trait, str(masked[key]))
    return masked


def _log_reveal(scope: Scope, actor: Actor, key: str, customer_id: uuid.UUID) -> None:
    log_operation(scope.conn, workspace_id=scope.workspace_id, at=scope.now, actor=actor.name,
                  origin=actor.origin, action="template.preview", target=key,
                  details={"customer_id": str(customer_id), "revealed": True})  # fmt: skip


def _render(env: ContentEnvironment, spec: TemplateSpec, version: int | None, context: Any) -> Any:
    try:
        return CompiledTemplate(env, spec, version or 0).render(context)
    except RenderError as exc:
        raise InvalidInput(Problem("render_failed", str(exc), exc.part, exc.line)) from None


def preview_template(
    scope: Scope,
    template: str | TemplateSpec,
    customer_id: uuid.UUID,
    *,
    actor: Actor,
    reveal: bool = False,
    purpose: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> TemplatePreview:
    """Render a saved (by key) or unsaved template for a customer, masked unless ``reveal``.

    ``purpose`` (default: marketing for email, else transactional) decides the legal
    footer. A revealed preview is logged, so call it with a write scope. Raises
    ``NotFound`` (template, customer) or ``InvalidInput`` when it does not render.
    """
    saved = get_template(scope, template) if isinstance(template, str) else None
    spec = saved.spec() if saved else template
    assert isinstance(spec, TemplateSpec)
    settings = load_delivery_settings(scope.conn, scope.workspace_id)
    contexts = build_contexts(scope, [customer_id], settings=settings)
    if customer_id not in contexts:
        raise NotFound(f"no customer {customer_id}")
    purpose = purpose or ("marketing" if spec.channel == "email" else "transactional")
    links = sample_links(settings.public_url, mailto=settings.sender.unsubscribe_mailto)
    context = message_context(contexts[customer_id], params={**spec.params, **(params or {})},
                              links=links)  # fmt: skip
    if reveal:
        _log_reveal(scope, actor, spec.key, customer_id)
    else:
        context = _masked(context)
    version = saved.version if saved else None
    content = _render(_environment(scope), spec, version, context)
    warnings: list[str] = []
    if needs_legal_footer(spec.channel, purpose):
        content, warnings = _with_footer(content, settings.sender, links)
    return TemplatePreview(spec.key, version, spec.channel, customer_id, purpose, reveal, content,
                           warnings)  # fmt: skip


def _with_footer(
    content: Content, sender: Sender, links: Mapping[str, str]
) -> tuple[Content, list[str]]:
    """The content with the legal footer, or unchanged with what the sender lacks."""
    problems = footer_problems(sender)
    if problems:
        return content, [p.describe() for p in problems]
    return add_legal_footer(content, sender, links), []
