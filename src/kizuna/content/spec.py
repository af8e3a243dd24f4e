"""A template as a marketer writes it: one model for every channel, checked per channel.

============  ==========================================================================
channel       parts (each string is a template)
============  ==========================================================================
email         ``subject`` and ``body`` (the text part) required, ``html`` optional
sms           ``body``
line          ``body`` (one text message) and/or ``messages`` (1–5 LINE message
              objects; every string inside is a template)
push          ``subject`` (the title) and ``body``, optional ``data`` (string values)
webhook       ``payload`` (JSON; strings are templates, and a string that is one
              ``{{ expression }}`` keeps the expression's type), optional ``url``
============  ==========================================================================

``params`` declares the extra values a sender passes with each message (an order
confirmation's ``order``) with sample values: validation and previews use them,
and they are always present at send time.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kizuna.errors import InvalidInput, Problem

__all__ = [
    "CHANNELS",
    "RESERVED_KEYS",
    "TemplateSpec",
    "load_template_text",
    "parse_template_spec",
    "template_parts",
]

Channel = Literal["email", "sms", "line", "push", "webhook"]
CHANNELS: tuple[str, ...] = ("email", "sms", "line", "push", "webhook")
RESERVED_KEYS = frozenset({"blocks", "context", "preview", "schema", "validate"})  # API paths
_EXTRA_FIELDS = ("messages", "data", "payload", "url", "params")
_ALLOWED: dict[str, frozenset[str]] = {
    "email": frozenset({"subject", "body", "html", "params"}),
    "sms": frozenset({"body", "params"}),
    "line": frozenset({"body", "messages", "params"}),
    "push": frozenset({"subject", "body", "data", "params"}),
    "webhook": frozenset({"payload", "url", "params"}),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "email": ("subject", "body"),
    "sms": ("body",),
    "push": ("subject", "body"),
    "webhook": ("payload",),
}


class TemplateSpec(BaseModel):
    """A message template for one channel (see the module docstring for each channel's parts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    channel: Channel
    name: str = Field(min_length=1, max_length=200)
    subject: str | None = Field(default=None, max_length=2_000)
    body: str = Field(default="", max_length=100_000)
    html: str | None = Field(default=None, max_length=1_000_000)
    messages: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=5)
    data: dict[str, str] | None = None
    payload: dict[str, Any] | list[Any] | None = None
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2_000)
    params: dict[str, Any] = Field(default_factory=dict)

    def extra(self) -> dict[str, Any]:
        """The channel-specific parts as stored in ``templates.extra``."""
        return {name: getattr(self, name) for name in _EXTRA_FIELDS if getattr(self, name)}


def template_parts(spec: TemplateSpec) -> dict[str, Any]:
    """Every templated part by its field path: ``subject``, ``html``, ``messages[0].text``."""
    parts: dict[str, Any] = {}
    for name in ("subject", "body", "html"):
        value = getattr(spec, name)
        if value:
            parts[name] = value
    for name in ("messages", "data", "payload"):
        _strings(getattr(spec, name), name, parts)
    return parts


def _strings(value: Any, path: str, into: dict[str, Any]) -> None:
    if isinstance(value, str):
        into[path] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            _strings(item, f"{path}.{key}", into)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _strings(item, f"{path}[{index}]", into)


def _channel_problems(spec: TemplateSpec) -> list[Problem]:
    problems = []
    for name in ("subject", "html", *_EXTRA_FIELDS):
        if getattr(spec, name) and name not in _ALLOWED[spec.channel]:
            problems.append(Problem("not_for_channel", f"{spec.channel} has no {name}", name))
    if spec.body and "body" not in _ALLOWED[spec.channel]:
        problems.append(Problem("not_for_channel", f"{spec.channel} has no body", "body"))
    for name in _REQUIRED.get(spec.channel, ()):
        if not getattr(spec, name):
            problems.append(Problem("required", f"{spec.channel} needs a {name}", name))
    if spec.channel == "line" and not (spec.body or spec.messages):
        problems.append(Problem("required", "line needs a body or messages", "body"))
    for index, message in enumerate(spec.messages or ()):
        if not isinstance(message.get("type"), str):
            field = f"messages[{index}].type"
            problems.append(Problem("required", "a LINE message object needs a type", field))
    return problems


def parse_template_spec(data: object) -> TemplateSpec:
    """Parse a template (a mapping); ``InvalidInput`` names each bad field."""
    try:
        spec = TemplateSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            [
                Problem(
                    f"invalid_{e['type']}",
                    e["msg"].removeprefix("Value error, "),
                    _path(e["loc"]) or None,
                )
                for e in exc.errors(include_url=False)
            ]
        ) from None
    problems = _channel_problems(spec)
    if spec.key in RESERVED_KEYS:
        problems.append(Problem("reserved_key", f"{spec.key!r} is reserved", "key"))
    if problems:
        raise InvalidInput(problems)
    return spec


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def load_template_text(text: str, fmt: Literal["yaml", "json"] = "yaml") -> TemplateSpec:
    """Read a template from YAML or JSON text; syntax errors name their line."""
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(Problem("invalid_json", exc.msg, line=exc.lineno)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InvalidInput(Problem("invalid_yaml", str(exc).splitlines()[0], line=line)) from None
    if not isinstance(data, dict):
        raise InvalidInput(Problem("invalid_template", "expected a mapping with key, channel, …"))
    return parse_template_spec(data)
