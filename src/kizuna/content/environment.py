"""The Jinja2 sandbox templates run in: two environments, the filters and the block loader.

Templates come from marketers, so they run in Jinja's ``ImmutableSandboxedEnvironment``:
no attribute starting with ``_`` (``''.__class__`` fails), no calls that change
lists or dicts (contexts are shared between a batch's messages), ``range`` capped,
and here also no giant ``'x' * 10**9`` or ``9 ** 9999``. HTML parts render with
autoescape on, text parts (email text, SMS, LINE, push, webhook) with it off.
``trim_blocks`` and ``lstrip_blocks`` keep ``{% for %}`` lines from leaving blank
lines in text messages.

``{% include "block:footer" %}`` loads the workspace's saved block ``footer``. An
environment is built per (workspace, time zone, blocks) and kept, so compiled
templates are reused across batches until a block changes.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import BaseLoader, Environment, Template, TemplateNotFound
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from kizuna.content.filters import is_defined, make_filters
from kizuna.content.missing import MissingValue
from kizuna.errors import KizunaError

__all__ = [
    "BLOCK_PREFIX",
    "ContentEnvironment",
    "RenderError",
    "block_name",
    "environment_for",
]

BLOCK_PREFIX = "block:"
_MAX_REPEAT = 100_000  # longest string or list a template may build with *
_MAX_EXPONENT = 100
_CACHE_SIZE = 32


class RenderError(KizunaError):
    """A template could not be rendered for one customer; the message says where and why."""

    code = "render_failed"

    def __init__(self, message: str, *, part: str | None = None, line: int | None = None) -> None:
        self.part = part
        self.line = line
        super().__init__(message)


def block_name(key: str) -> str:
    """The name a template includes a saved block by: ``block:<key>``."""
    return BLOCK_PREFIX + key


class _BlockLoader(BaseLoader):
    """Serves ``block:<key>`` from one snapshot of the workspace's saved blocks."""

    def __init__(self, blocks: Mapping[str, str]) -> None:
        self._blocks = dict(blocks)

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        """The block's source; ``TemplateNotFound`` for anything else."""
        key = template.removeprefix(BLOCK_PREFIX)
        if not template.startswith(BLOCK_PREFIX) or key not in self._blocks:
            raise TemplateNotFound(template)
        return self._blocks[key], template, lambda: True


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox with caps on ``*`` and ``**``, so a template cannot exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse repetitions and powers beyond the caps; otherwise the usual operator."""
        if operator == "**" and isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"exponents above {_MAX_EXPONENT} are not allowed")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > _MAX_REPEAT:
                    raise SecurityError(f"results longer than {_MAX_REPEAT} are not allowed")
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """A mapping's key before its method: ``cart.items`` is the cart's items, not dict.items."""
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def _finalize(value: Any) -> Any:
    # Contexts leave None out (it would print "None"); a None from elsewhere must not either.
    if value is None:
        raise UndefinedError("an empty (None) value was printed; give it a fallback: | default(…)")
    return value


def _sandbox(*, html: bool, zone: ZoneInfo, blocks: Mapping[str, str]) -> _Sandbox:
    env = _Sandbox(
        autoescape=html,
        undefined=MissingValue,
        loader=_BlockLoader(blocks),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        finalize=_finalize,
    )
    env.filters.update(make_filters(zone))
    env.tests["defined"] = is_defined
    env.tests["undefined"] = lambda value: not is_defined(value)
    env.globals.pop("lipsum", None)
    return env


class ContentEnvironment:
    """The two sandboxes of one workspace (HTML and text), sharing its zone and blocks."""

    def __init__(self, zone: str, blocks: Mapping[str, str]) -> None:
        self.zone = ZoneInfo(zone)
        self.blocks = dict(blocks)
        self._html = _sandbox(html=True, zone=self.zone, blocks=self.blocks)
        self._text = _sandbox(html=False, zone=self.zone, blocks=self.blocks)
        self._compiled: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def compile(self, source: str, part: str, *, html: bool = False) -> Template:
        """Compile one part; raises Jinja's TemplateSyntaxError (with ``lineno``)."""
        env = self._html if html else self._text
        name = f"part:{part}"
        code = env.compile(source, name=name, filename=name)
        return env.template_class.from_code(env, code, env.make_globals(None), None)

    def compile_expression(self, source: str) -> Callable[..., Any]:
        """Compile a bare expression (``last_order.total``) that yields a native value."""
        return self._text.compile_expression(source, undefined_to_none=False)

    def cached(self, key: tuple[str, int], build: Callable[[], Any]) -> Any:
        """A compiled template by (template key, version), built once per environment."""
        with self._lock:
            found = self._compiled.get(key)
            if found is not None:
                self._compiled.move_to_end(key)
                return found
        built = build()
        with self._lock:
            self._compiled[key] = built
            while len(self._compiled) > 256:
                self._compiled.popitem(last=False)
        return built


_environments: OrderedDict[tuple[uuid.UUID, str, str], ContentEnvironment] = OrderedDict()
_environments_lock = threading.Lock()


def _digest(blocks: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for key in sorted(blocks):
        h.update(key.encode() + b"\x00" + blocks[key].encode() + b"\x00")
    return h.hexdigest()


def environment_for(
    workspace_id: uuid.UUID, zone: str, blocks: Mapping[str, str]
) -> ContentEnvironment:
    """The (cached) environment of a workspace with these blocks (a block change: a new one)."""
    key = (workspace_id, zone, _digest(blocks))
    with _environments_lock:
        env = _environments.get(key)
        if env is not None:
            _environments.move_to_end(key)
            return env
    env = ContentEnvironment(zone, blocks)
    with _environments_lock:
        env = _environments.setdefault(key, env)
        while len(_environments) > _CACHE_SIZE:
            _environments.popitem(last=False)
    return env
