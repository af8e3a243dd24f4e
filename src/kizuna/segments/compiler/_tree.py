"""The walk over a condition tree: AND / OR / NOT, inlined segment references, leaves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from kizuna.errors import InvalidInput, Problem
from kizuna.segments.compiler._behaviour import compile_event, compile_event_time
from kizuna.segments.compiler._channels import compile_channel
from kizuna.segments.compiler._context import Builder, at, flag
from kizuna.segments.compiler._profile import (
    compile_birthday,
    compile_bucket,
    compile_location,
    compile_metric,
    compile_trait,
)
from kizuna.segments.compiler._purchases import (
    compile_bought,
    compile_order_date,
    compile_orders,
    compile_price_type,
)
from kizuna.segments.definition import AllOf, AnyOf, Condition, Not, SegmentRef

__all__ = ["compile_node"]

_LEAVES: dict[str, Callable[[Any, Builder, str], sa.ColumnElement[bool]]] = {
    "trait": compile_trait,
    "birthday": compile_birthday,
    "location": compile_location,
    "channel": compile_channel,
    "event": compile_event,
    "event_time": compile_event_time,
    "orders": compile_orders,
    "order_date": compile_order_date,
    "bought": compile_bought,
    "price_type": compile_price_type,
    "metric": compile_metric,
    "bucket": compile_bucket,
}


# Leaves that are set tests (IN / EXISTS over NOT NULL ids): never NULL, so never
# wrapped in COALESCE, which would hide them from the planner's semi- / anti-joins.
_TWO_VALUED = frozenset(
    {"channel", "event", "event_time", "orders", "order_date", "bought", "price_type"}
)

_Compiled = tuple[sa.ColumnElement[bool], bool]  # the predicate, and whether it may be NULL


def compile_node(node: Condition, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """``node`` as a predicate over the customers row, for a WHERE clause.

    It is true exactly where the two-valued condition is; where that is false it may
    be NULL instead (a WHERE drops both): NOT turns a child's NULL into false first,
    so "not in Tokyo" keeps those whose prefecture is unknown.
    """
    return _compile(node, b, where)[0]


def _compile(node: Condition, b: Builder, where: str) -> _Compiled:
    if isinstance(node, AllOf | AnyOf):
        parts = _children(node.conditions, b, where)
        combine = sa.and_ if isinstance(node, AllOf) else sa.or_
        return combine(*(p for p, _ in parts)), any(nullable for _, nullable in parts)
    if isinstance(node, Not):
        child, nullable = _compile(node.condition, b, _child(where, "condition"))
        return (sa.not_(flag(child)) if nullable else b.negate(child)), False
    if isinstance(node, SegmentRef):
        return _segment(node, b, where)
    return _LEAVES[node.type](node, b, where), node.type not in _TWO_VALUED


def _child(where: str, name: str) -> str:
    return at(where, f"{name}") if where else name


def _children(nodes: list[Condition], b: Builder, where: str) -> list[_Compiled]:
    path = _child(where, "conditions")
    return [_compile(n, b, f"{path}[{i}]") for i, n in enumerate(nodes)]


def _segment(node: SegmentRef, b: Builder, where: str) -> _Compiled:
    key = node.segment
    if key in b.expanding:
        chain = " → ".join((*b.expanding, key))
        raise InvalidInput(
            Problem(
                "segment_cycle", f"segments refer to each other: {chain}", _child(where, "segment")
            )
        )
    condition = b.ctx.segments.get(key)
    if condition is None:
        raise InvalidInput(
            Problem("unknown_segment", f"no segment {key}", _child(where, "segment"))
        )
    outer = b.expanding
    b.expanding = (*outer, key)
    try:
        return _compile(condition, b, "")
    finally:
        b.expanding = outer
