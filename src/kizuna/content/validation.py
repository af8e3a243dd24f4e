"""Checking a template before it is saved: syntax, unknown names, values that can be missing.

Three renders, each with a :class:`~kizuna.content.missing.Recorder` watching:

1. **full** — a real customer of the workspace (the latest buyer, else the latest
   seen) laid over the documented sample, so every known name has a value: any
   missing value met here is a name templates do not have (``first_nam``,
   ``last_order.numbr``, an attribute key the workspace never stored), reported
   unless guarded by ``default`` or ``is defined``. The real values also make the
   template render as it will (a filter given text instead of a number fails here).
2. **minimal** — every optional object present but with only its required fields,
   and **absent** — optional objects left out: printing a value some customer
   lacks, without ``default`` or an ``if``, is reported with its line, because at
   send time it would fail that customer's message.

Problems name the part (``subject``, ``html``, ``messages[0].text``; a saved
block as ``block:<key>``) and the line within it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import UndefinedError

from kizuna.content import _queries as q
from kizuna.content.context import (
    MINIMAL_CONTEXT,
    OPTIONAL_OBJECTS,
    SAMPLE_CONTEXT,
    build_contexts,
    sample_links,
    sender_context,
)
from kizuna.content.environment import BLOCK_PREFIX, ContentEnvironment, RenderError
from kizuna.content.missing import Recorder, Traced, recording
from kizuna.content.render import CompiledTemplate, locate
from kizuna.content.spec import TemplateSpec, template_parts
from kizuna.delivery.settings import DeliverySettings
from kizuna.errors import Problem
from kizuna.store.scope import Scope
from kizuna.store.segments import load_vocabulary

__all__ = [
    "SampleContexts",
    "block_problems",
    "sample_contexts",
    "syntax_problems",
    "template_problems",
]

_Where = tuple[str | None, int | None]


@dataclass(frozen=True, slots=True)
class SampleContexts:
    """The contexts a template is tried on (see the module docstring)."""

    full: dict[str, Any]
    minimal: dict[str, Any]
    absent: dict[str, Any]
    customer_id: str | None  # the real customer behind ``full``, when the workspace has one


def _overlay(sample: Any, real: Any) -> Any:
    if isinstance(sample, dict) and isinstance(real, dict):
        keys = dict.fromkeys([*sample, *real])
        return {k: _overlay(sample.get(k), real[k]) if k in real else sample[k] for k in keys}
    if isinstance(real, list) and not real:
        return sample
    return real


def _trace(value: Any, path: str) -> Any:
    if isinstance(value, dict):
        return Traced(path, {k: _trace(v, f"{path}.{k}") for k, v in value.items()})
    if isinstance(value, list):
        return [_trace(v, f"{path}[]") for v in value]
    return value


def _traced(context: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _trace(value, key) for key, value in context.items()}


def sample_contexts(
    scope: Scope, settings: DeliverySettings, params: Mapping[str, Any]
) -> SampleContexts:
    """The three validation contexts for this workspace, with a template's sample params."""
    customer = q.sample_customer_id(scope)
    real = (
        build_contexts(scope, [customer], settings=settings).get(customer, {}) if customer else {}
    )
    attributes = {key: "…" for key in load_vocabulary(scope).attributes}
    attributes.update(real.get("attributes", {}))
    common = {"sender": sender_context(settings), **params}
    # The mailto link exists only when the sender has one: known, but possibly missing.
    links = sample_links(settings.public_url, mailto="unsubscribe@example.jp")
    full = {**_overlay(SAMPLE_CONTEXT, real), "attributes": attributes, "links": links, **common}
    minimal = {**MINIMAL_CONTEXT, "links": sample_links(settings.public_url), **common}
    absent = {k: v for k, v in minimal.items() if k not in OPTIONAL_OBJECTS}
    absent.update(recently_viewed=[], recommended=[])
    return SampleContexts(_traced(full), _traced(minimal), _traced(absent),
                          str(customer) if customer else None)  # fmt: skip


def _place(where: _Where, fallback: str | None = None) -> tuple[str | None, int | None]:
    name, line = where
    if name is None:
        return fallback, None
    return name.removeprefix("part:"), line


def syntax_problems(env: ContentEnvironment, spec: TemplateSpec) -> list[Problem]:
    """One problem per part that does not parse, at its line."""
    problems = []
    for path, source in template_parts(spec).items():
        try:
            env.compile(source, path, html=path == "html")
        except TemplateSyntaxError as exc:
            problems.append(Problem("template_syntax", exc.message or "syntax error", path,
                                    exc.lineno))  # fmt: skip
    return problems


def _render(compiled: CompiledTemplate, context: dict[str, Any]) -> tuple[Recorder, Problem | None]:
    with recording() as recorder:
        try:
            compiled.render(context)
        except RenderError as exc:
            cause = exc.__cause__ or exc
            code = "missing_fallback" if isinstance(cause, UndefinedError) else "render_failed"
            field, line = _place(locate(cause), exc.part)
            return recorder, Problem(code, str(cause), field, line)
    return recorder, None


def _unknown(recorder: Recorder) -> list[Problem]:
    return [
        Problem("unknown_variable", f"{path} is not a value templates have "
                "(check the spelling; see the context reference)", *_place(where))
        for path, where in recorder.unguarded(recorder.seen).items()
    ]  # fmt: skip


def _missing(recorder: Recorder, unknown: set[str]) -> list[Problem]:
    return [
        Problem("missing_fallback", f"{path} can be missing for a customer: give it a fallback "
                "with | default(…) or put it inside {% if … %}", *_place(where))
        for path, where in recorder.unguarded(recorder.printed).items()
        if path not in unknown
    ]  # fmt: skip


def template_problems(
    env: ContentEnvironment, spec: TemplateSpec, contexts: SampleContexts
) -> list[Problem]:
    """Every problem of ``spec`` in ``env`` tried on ``contexts``; empty when it can be saved."""
    problems = syntax_problems(env, spec)
    if problems:
        return problems
    compiled = CompiledTemplate(env, spec)
    recorder, failed = _render(compiled, contexts.full)
    problems = _unknown(recorder)
    unknown = set(recorder.unguarded(recorder.seen))
    found = [failed] if failed else []
    for context in (contexts.minimal, contexts.absent):
        recorder, failed = _render(compiled, context)
        found += _missing(recorder, unknown) + ([failed] if failed else [])
    seen = {(p.field, p.line) for p in problems}
    for problem in found:
        if (problem.field, problem.line) not in seen:
            seen.add((problem.field, problem.line))
            problems.append(problem)
    return problems


def block_problems(env: ContentEnvironment, key: str, body: str) -> list[Problem]:
    """Syntax problems of a block's body (its names are checked in the templates using it)."""
    try:
        env.compile(body, BLOCK_PREFIX + key)
    except TemplateSyntaxError as exc:
        return [Problem("template_syntax", exc.message or "syntax error", "body", exc.lineno)]
    return []
