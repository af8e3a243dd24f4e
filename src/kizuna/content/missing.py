"""What a template sees for a value a customer does not have, and how validation watches it.

At send time a missing value is falsy and iterates as empty (so ``{% if cart %}``
and ``{% for p in recommended %}`` just skip), chains (``last_order.total`` of a
customer without orders is missing too), and gives way to ``default``
(``{{ first_name | default("お客様") }}``) and ``is defined``. *Printing* it, or
computing with it, fails the render: a message reading "None様" or "様" is worse
than a message not sent, and the failure names the value.

While a template is validated a :class:`Recorder` is active (a context variable,
so concurrent renders are unaffected): every missing value is noted with its path
(``last_order.items[].price``) and template line, printing one yields "" and is
noted as unguarded, and ``default`` / ``is defined`` note the path as guarded.
Sandbox violations (``''.__class__``) raise in both modes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NoReturn

from jinja2.exceptions import TemplateRuntimeError, UndefinedError
from jinja2.runtime import Undefined
from jinja2.utils import missing

__all__ = ["MissingValue", "Recorder", "Traced", "guard", "path_of", "recording"]

_RECORDER: ContextVar[Recorder | None] = ContextVar("kizuna_template_recorder", default=None)


class Traced(dict[str, Any]):
    """A context mapping that knows its path, so a missing key inside it is named in full."""

    # Underscored, so the sandbox hides it: ``{{ cart.path }}`` must not read it.
    __slots__ = ("_path",)

    def __init__(self, path: str, values: dict[str, Any]) -> None:
        super().__init__(values)
        self._path = path


@dataclass(slots=True)
class Recorder:
    """Missing values met while rendering for validation: path -> (template, line)."""

    seen: dict[str, tuple[str | None, int | None]] = field(default_factory=dict)
    printed: dict[str, tuple[str | None, int | None]] = field(default_factory=dict)
    guarded: set[str] = field(default_factory=set)

    def unguarded(self, names: dict[str, tuple[str | None, int | None]]) -> dict[str, Any]:
        """The entries of ``names`` that no ``default`` or ``is defined`` protected."""
        return {path: where for path, where in names.items() if path not in self.guarded}


@contextmanager
def recording() -> Iterator[Recorder]:
    """Activate a fresh Recorder for the renders inside the block; yields it."""
    recorder = Recorder()
    token = _RECORDER.set(recorder)
    try:
        yield recorder
    finally:
        _RECORDER.reset(token)


def _where() -> tuple[str | None, int | None]:
    """The template and line being rendered, read from the compiled template's frame."""
    frame = sys._getframe(2)
    while frame is not None:
        template = frame.f_globals.get("__jinja_template__")
        if template is not None:
            return template.name, template.get_corresponding_lineno(frame.f_lineno)
        frame = frame.f_back  # type: ignore[assignment]
    return None, None


def path_of(obj: Any, name: Any) -> str:
    """The dotted path of ``obj[name]`` for messages (``last_order.number``)."""
    if obj is missing:
        return str(name)
    if isinstance(obj, Traced | MissingValue):
        return f"{obj._path}.{name}"
    if type(obj).__name__ == "LoopContext":
        return f"loop.{name}"
    return f"({type(obj).__name__} value).{name}"


class MissingValue(Undefined):
    """The undefined type of every Kizuna template (see the module docstring)."""

    __slots__ = ("_path",)

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
        path: str | None = None,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        self._path = path or path_of(obj, name)
        recorder = _RECORDER.get()
        if recorder is not None and exc is UndefinedError:
            recorder.seen.setdefault(self._path, _where())

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        return f"{self._path} is missing for this customer (add | default(...) or an if)"

    def _child(self, name: Any) -> MissingValue:
        if self._undefined_exception is not UndefinedError:
            return self  # a sandbox violation stays one however far it is chained
        return MissingValue(path=f"{self._path}.{name}")

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self._child(name)

    def __getitem__(self, key: Any) -> Any:
        return self._child(key)

    def __str__(self) -> str:
        recorder = _RECORDER.get()
        if recorder is not None and self._undefined_exception is UndefinedError:
            recorder.printed.setdefault(self._path, _where())
            return ""
        self._fail()

    def __html__(self) -> str:
        return str(self)

    def _fail(self) -> NoReturn:
        self._fail_with_undefined_error()
        raise AssertionError("unreachable")  # pragma: no cover


def guard(value: Any) -> None:
    """Note that a missing value was handled by the template (``default``, ``is defined``)."""
    recorder = _RECORDER.get()
    if recorder is not None and isinstance(value, MissingValue):
        recorder.guarded.add(value._path)
