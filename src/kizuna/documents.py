"""Definition files a marketer writes (YAML or JSON): parse them, and find a field's line.

A problem found in a definition names the field's path (``start``,
``condition.conditions[2].within``, ``nodes.remind.template``); :func:`line_of` turns
that path back into the line of the file where the field is written, so a message
can say "line 12". In a path, ``[3]`` is a list index, and a name applied to a list
picks the item whose ``id`` is that name (``nodes.remind`` is the node with
``id: remind``; ids may hold dots, the longest id that matches wins).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml

from kizuna.errors import InvalidInput, Problem

__all__ = ["line_of", "load_mapping", "locate", "read_text"]

_PARTS = re.compile(r"[^.\[\]]+|\[\d+\]")
_YAML_1_1_ONLY = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_TRUE_FALSE = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})


class _Loader(yaml.SafeLoader):
    """Safe YAML read as YAML 1.2 reads plain scalars: ``yes`` and ``10:00`` stay text.

    YAML 1.1 would make a branch's ``yes:`` and ``no:`` the keys True and False, and
    ``at: 10:00`` the number 600 (base 60), which a time field takes as 00:10.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """The tag of a node; YAML 1.1's extra booleans and base-60 numbers are text."""
        tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        plain = kind is yaml.ScalarNode and implicit[0] and tag in _YAML_1_1_ONLY
        if plain and ((tag.endswith("bool") and value not in _TRUE_FALSE) or ":" in value):
            return "tag:yaml.org,2002:str"
        return tag


def read_text(path: Path) -> str:
    """A UTF-8 file's text (a BOM is dropped); ``InvalidInput`` when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(Problem("unreadable_file", exc.strerror or "cannot read")) from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(Problem("unreadable_file", f"not UTF-8 text: {exc.reason}")) from None


def load_mapping(text: str, fmt: Literal["yaml", "json"], expected: str) -> dict[str, Any]:
    """Parse YAML or JSON text holding one mapping; syntax errors name their line.

    Plain YAML scalars read as in YAML 1.2: ``yes:`` is a key, ``10:00`` a text.

    ``expected`` completes the message given when the text is not a mapping
    ("expected a mapping with …").
    """
    try:
        data = json.loads(text) if fmt == "json" else yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)
    except json.JSONDecodeError as exc:
        raise InvalidInput(Problem("invalid_json", exc.msg, line=exc.lineno)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InvalidInput(Problem("invalid_yaml", str(exc).splitlines()[0], line=line)) from None
    if not isinstance(data, dict):
        raise InvalidInput(Problem("invalid_spec", f"expected a mapping with {expected}"))
    return data


def _item_by_id(node: yaml.SequenceNode, parts: list[str]) -> tuple[Any, int]:
    """The item whose ``id`` is the longest dotted run of ``parts``, and how many it used."""
    ids: dict[str, Any] = {}
    for item in node.value:
        if isinstance(item, yaml.MappingNode):
            for key, value in item.value:
                if getattr(key, "value", None) == "id" and isinstance(value, yaml.ScalarNode):
                    ids.setdefault(str(value.value), item)
    for used in range(len(parts), 0, -1):
        found = ids.get(".".join(parts[:used]))
        if found is not None:
            return found, used
    return None, 0


def _child(node: Any, parts: list[str]) -> tuple[Any, int]:
    """The node one step down ``parts`` (and how many parts the step used), or ``None``."""
    part = parts[0]
    if isinstance(node, yaml.SequenceNode):
        if part.startswith("["):
            index = int(part[1:-1])
            return (node.value[index], 1) if index < len(node.value) else (None, 0)
        return _item_by_id(node, parts)
    if isinstance(node, yaml.MappingNode) and not part.startswith("["):
        for key, value in node.value:
            if getattr(key, "value", None) == part:
                return value, 1
    return None, 0


def line_of(text: str, field: str | None) -> int | None:
    """The 1-based line of the field at ``field`` in a YAML (or JSON) text.

    A path that stops at a missing field gives the line of the deepest part found
    (the mapping lacking it); one that matches nothing, or text that does not
    parse, gives ``None``.
    """
    if not field:
        return None
    try:
        node: Any = yaml.compose(text)
    except yaml.YAMLError:
        return None
    parts, found = _PARTS.findall(field), False
    while parts and node is not None:
        child, used = _child(node, parts)
        if child is None:
            break
        node, parts, found = child, parts[used:], True
    return int(node.start_mark.line) + 1 if found else None


def locate(problems: Iterable[Problem], text: str) -> list[Problem]:
    """The problems with the line of their field in ``text`` filled in where it was missing."""
    return [
        p if p.line is not None else Problem(p.code, p.message, p.field, line_of(text, p.field))
        for p in problems
    ]
