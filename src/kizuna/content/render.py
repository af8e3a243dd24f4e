"""Compiled templates and rendering a message for one customer.

A :class:`CompiledTemplate` holds every part of a template compiled once; its
``render(context)`` returns the channel's :class:`~kizuna.channels.base.Content`
or raises :class:`~kizuna.content.environment.RenderError` naming the part and
line, so the pipeline fails that one message and carries on. A :class:`Renderer`
serves one batch: blocks and the zone loaded once, templates loaded by key and
compiled once per version (kept across batches by the workspace's environment).

Content per channel: email ``subject``/``text``/``html``; SMS and LINE ``text``
(LINE also ``payload["messages"]`` when the template has message objects); push
``subject`` (title), ``text`` and ``payload["data"]``; webhook ``payload`` (the
rendered JSON; its target URL is the template's ``url``, see
:meth:`CompiledTemplate.url`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

from jinja2 import Template, TemplateNotFound, TemplateSyntaxError
from jinja2.runtime import Undefined

from kizuna.channels.base import Content
from kizuna.content.environment import (
    BLOCK_PREFIX,
    ContentEnvironment,
    RenderError,
    environment_for,
)
from kizuna.content.spec import TemplateSpec
from kizuna.store.scope import Scope
from kizuna.store.templates import TemplateRecord, get_templates, load_blocks
from kizuna.store.workspaces import get_workspace

__all__ = [
    "CompiledTemplate",
    "RenderError",
    "Renderer",
    "compile_template",
    "locate",
    "open_renderer",
    "render",
    "render_error",
]

_WHOLE_EXPRESSION = re.compile(r"^\{\{(?P<expr>(?:(?!\}\}|\{\{|\{%).)*)\}\}$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class _Part:
    path: str
    template: Template | None = None
    expression: Callable[..., Any] | None = None  # webhook: one {{ expr }} keeps its type


def locate(exc: BaseException) -> tuple[str | None, int | None]:
    """Where a template error happened: (``part:<path>`` or ``block:<key>``, line)."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.filename or exc.name, exc.lineno
    where: tuple[str | None, int | None] = (None, None)
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.startswith(("part:", BLOCK_PREFIX)):
            where = (name, tb.tb_lineno)
        tb = tb.tb_next
    return where


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TemplateNotFound):
        return f"unknown block {str(exc.name).removeprefix(BLOCK_PREFIX)!r}"
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    return str(exc) or type(exc).__name__


def render_error(path: str, exc: BaseException) -> RenderError:
    """A RenderError for ``exc`` raised while rendering the part at ``path``."""
    name, line = locate(exc)
    where = path
    if name and name.startswith(BLOCK_PREFIX):
        where = f"{path}, block {name.removeprefix(BLOCK_PREFIX)!r}"
    if line is not None:
        where += f" line {line}"
    return RenderError(f"{where}: {_describe(exc)}", part=path, line=line)


def _jsonable(value: Any, path: str) -> Any:
    if isinstance(value, Undefined):
        str(value)  # fails like printing would (or is recorded while validating)
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, path) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, path) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{type(value).__name__} cannot go into JSON")


class CompiledTemplate:
    """Every part of one template version, compiled; ``render`` makes one message's Content."""

    def __init__(self, env: ContentEnvironment, spec: TemplateSpec, version: int = 0) -> None:
        self.spec = spec
        self.version = version
        self._env = env
        self._simple = {
            name: self._compile(getattr(spec, name), name, html=name == "html")
            for name in ("subject", "body", "html")
            if getattr(spec, name)
        }
        native = spec.channel == "webhook"
        self._trees = {
            name: self._tree(getattr(spec, name), name, native)
            for name in ("messages", "data", "payload")
            if getattr(spec, name)
        }

    @property
    def url(self) -> str | None:
        """A webhook template's target URL (else the provider's configured one)."""
        return self.spec.url

    def _compile(
        self, source: str, path: str, *, html: bool = False, native: bool = False
    ) -> _Part:
        try:
            whole = _WHOLE_EXPRESSION.match(source) if native else None
            if whole is not None:
                return _Part(path, expression=self._env.compile_expression(whole["expr"]))
            return _Part(path, template=self._env.compile(source, path, html=html))
        except TemplateSyntaxError as exc:
            raise render_error(path, exc) from exc

    def _tree(self, value: Any, path: str, native: bool) -> Any:
        if isinstance(value, str):
            return self._compile(value, path, native=native)
        if isinstance(value, dict):
            return {k: self._tree(v, f"{path}.{k}", native) for k, v in value.items()}
        if isinstance(value, list):
            return [self._tree(v, f"{path}[{i}]", native) for i, v in enumerate(value)]
        return value

    def _part(self, part: _Part, context: Mapping[str, Any]) -> Any:
        try:
            if part.expression is not None:
                return _jsonable(part.expression(context), part.path)
            assert part.template is not None
            return part.template.render(context)
        except RenderError:
            raise
        except Exception as exc:  # a template's failure is its message's, never the batch's
            raise render_error(part.path, exc) from exc

    def _render_tree(self, tree: Any, context: Mapping[str, Any]) -> Any:
        if isinstance(tree, _Part):
            return self._part(tree, context)
        if isinstance(tree, dict):
            return {k: self._render_tree(v, context) for k, v in tree.items()}
        if isinstance(tree, list):
            return [self._render_tree(v, context) for v in tree]
        return tree

    def render(self, context: Mapping[str, Any]) -> Content:
        """The message for one customer's context; ``RenderError`` says where it failed."""
        parts = {name: self._part(part, context) for name, part in self._simple.items()}
        trees = {name: self._render_tree(tree, context) for name, tree in self._trees.items()}
        payload: Any = trees.get("payload", {})
        if "messages" in trees:
            payload = {"messages": trees["messages"]}
        elif "data" in trees:
            payload = {"data": trees["data"]}
        return Content(
            text=parts.get("body", ""),
            subject=parts.get("subject"),
            html=parts.get("html"),
            payload=payload,
        )


def render(template: CompiledTemplate, context: Mapping[str, Any]) -> Content:
    """One message's Content from a compiled template; ``RenderError`` names part and line."""
    return template.render(context)


def compile_template(env: ContentEnvironment, template: TemplateRecord) -> CompiledTemplate:
    """The compiled form of a stored template version (cached in ``env``)."""
    return env.cached(  # type: ignore[no-any-return]
        (template.key, template.version),
        lambda: CompiledTemplate(env, template.spec(), template.version),
    )


class Renderer:
    """Renders one batch's messages for a workspace (use inside the scope's transaction)."""

    def __init__(self, scope: Scope, env: ContentEnvironment) -> None:
        self.scope = scope
        self.env = env
        self._templates: dict[str, CompiledTemplate | RenderError] = {}

    def load(self, keys: Iterable[str]) -> None:
        """Read and compile the templates among ``keys`` not loaded yet, in one query."""
        wanted = {key for key in keys if key not in self._templates}
        records = get_templates(self.scope, wanted)
        for key in wanted:
            self._templates[key] = self._compiled(records.get(key), key)

    def _compiled(self, record: TemplateRecord | None, key: str) -> CompiledTemplate | RenderError:
        if record is None:
            return RenderError(f"template {key!r} does not exist or is archived")
        try:
            return compile_template(self.env, record)
        except RenderError as exc:  # saved before a block it includes broke
            return exc

    def template(self, key: str) -> CompiledTemplate:
        """The compiled current version of a template; ``RenderError`` if absent or broken."""
        if key not in self._templates:
            self.load([key])
        found = self._templates[key]
        if isinstance(found, RenderError):
            raise found
        return found

    def render(self, key: str, context: Mapping[str, Any]) -> Content:
        """Render template ``key`` for one message's context (see ``message_context``)."""
        return self.template(key).render(context)


def open_renderer(scope: Scope, keys: Iterable[str] = ()) -> Renderer:
    """A renderer for the scope's workspace: zone and blocks read once, ``keys`` preloaded."""
    zone = get_workspace(scope.conn, scope.workspace_id).time_zone
    renderer = Renderer(scope, environment_for(scope.workspace_id, zone, load_blocks(scope)))
    renderer.load(keys)
    return renderer
