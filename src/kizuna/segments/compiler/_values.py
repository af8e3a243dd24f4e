"""Value comparisons (eq, in, contains, ranges, presence) on columns and JSON paths.

A JSON value is read as the kind the compared value has: text for strings, a number
for numbers, a boolean for booleans. A stored value of another kind does not match
(``"5"`` is not ``5``), on SQLite and PostgreSQL alike, and never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from kizuna.errors import InvalidInput, Problem
from kizuna.segments.compiler._context import at
from kizuna.segments.definition import Scalar

__all__ = ["Kind", "Reader", "compare", "json_reader", "kind_of"]

Kind = Literal["text", "number", "bool"]
Reader = Callable[[Kind], "sa.ColumnElement[Any] | None"]  # None: this kind never matches


def kind_of(value: Scalar) -> Kind:
    """The kind a compared value asks for."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text"


def json_reader(column: Any, path: Sequence[str], dialect: str) -> Reader:
    """Read ``column``'s value at ``path`` as a given kind (NULL when of another kind)."""
    if dialect == "sqlite":
        where = "$" + "".join(f'."{key}"' for key in path)
        kind_sql = sa.func.json_type(column, where)
        raw = sa.func.json_extract(column, where)
        stored: dict[Kind, tuple[str, ...]] = {
            "text": ("text",), "number": ("integer", "real"), "bool": ("true", "false"),
        }  # fmt: skip
    else:
        kind_sql = sa.func.jsonb_typeof(sa.func.jsonb_extract_path(column, *path))
        raw = sa.func.jsonb_extract_path_text(column, *path)
        stored = {"text": ("string",), "number": ("number",), "bool": ("boolean",)}

    def read(kind: Kind) -> sa.ColumnElement[Any]:
        value: sa.ColumnElement[Any] = raw
        if dialect == "postgresql" and kind == "number":
            value = sa.cast(raw, sa.Float)
        elif dialect == "postgresql" and kind == "bool":
            value = raw == "true"
        elif kind == "bool":
            value = raw == 1
        return sa.case((kind_sql.in_(stored[kind]), value), else_=sa.null())

    return read


def compare(read: Reader, op: str, value: object, where: str) -> sa.ColumnElement[bool]:
    """The predicate ``<stored> op value``; ``where`` names the node for errors."""
    if op in ("exists", "not_exists"):
        present = sa.or_(*(c.is_not(None) for c in _all_kinds(read)))
        return present if op == "exists" else sa.not_(present)
    if op in ("in", "not_in"):
        items = _listed(value, where)
        found = _one_of(read, items)
        return found if op == "in" else sa.not_(sa.func.coalesce(found, sa.false()))
    if op == "between":
        low, high = _pair(value, where)
        column = _reader(read, kind_of(low), where)
        return sa.and_(column >= low, column <= high)
    if not isinstance(value, str | int | float | bool):
        raise InvalidInput(Problem("invalid_value", f"{op} needs one value", at(where, "value")))
    if op == "contains":
        column = _reader(read, "text", where)
        return _contains(column, str(value))
    column = _reader(read, kind_of(value), where)
    return _binary(column, op, value, where)


def _binary(
    column: sa.ColumnElement[Any], op: str, value: Scalar, where: str
) -> sa.ColumnElement[bool]:
    if op == "eq":
        return column == value
    if op == "ne":
        return sa.not_(sa.func.coalesce(column == value, sa.false()))
    operators = {"gt": column > value, "gte": column >= value, "lt": column < value}
    if op == "lte":
        return column <= value
    if op in operators:
        return operators[op]
    raise InvalidInput(Problem("unknown_operator", f"unknown operator {op}", at(where, "op")))


def _reader(read: Reader, kind: Kind, where: str) -> sa.ColumnElement[Any]:
    column = read(kind)
    if column is None:
        raise InvalidInput(
            Problem("type_mismatch", f"this field holds no {kind} values", at(where, "value"))
        )
    return column


def _all_kinds(read: Reader) -> list[sa.ColumnElement[Any]]:
    return [c for c in (read("text"), read("number"), read("bool")) if c is not None]


def _one_of(read: Reader, items: list[Scalar]) -> sa.ColumnElement[bool]:
    tests = []
    kinds: tuple[Kind, ...] = ("text", "number", "bool")
    for kind in kinds:
        wanted = [v for v in items if kind_of(v) == kind]
        column = read(kind) if wanted else None
        if column is not None:
            tests.append(column.in_(wanted))
    return sa.or_(*tests) if tests else sa.false()


class _Position(FunctionElement[int]):
    """Where ``needle`` starts in ``haystack`` (1-based, 0 when absent): instr / strpos."""

    type = sa.Integer()
    inherit_cache = True
    name = "kizuna_position"


@compiles(_Position, "sqlite")
def _position_sqlite(element: _Position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_Position, "postgresql")
def _position_postgresql(element: _Position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


def _contains(column: sa.ColumnElement[Any], needle: str) -> sa.ColumnElement[bool]:
    # instr/strpos, not LIKE: case-sensitive on both databases, no wildcard escaping.
    return sa.func.coalesce(_Position(column, needle), 0) > 0


def _listed(value: object, where: str) -> list[Scalar]:
    if not isinstance(value, list) or not value:
        raise InvalidInput(
            Problem("invalid_value", "expected a list of values", at(where, "value"))
        )
    return list(value)


def _pair(value: object, where: str) -> tuple[Any, Any]:
    if not isinstance(value, list) or len(value) != 2 or kind_of(value[0]) != kind_of(value[1]):
        raise InvalidInput(
            Problem("invalid_value", "between needs [low, high] of one kind", at(where, "value"))
        )
    return value[0], value[1]
