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


def compile_node(node: Condition, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """``node`` as a two-valued boolean over the customers row (joins go into ``b``)."""
    if isinstance(node, AllOf):
        return sa.and_(*_children(node.conditions, b, where))
    if isinstance(node, AnyOf):
        return sa.or_(*_children(node.conditions, b, where))
    if isinstance(node, Not):
        return sa.not_(compile_node(node.condition, b, _child(where, "condition")))
    if isinstance(node, SegmentRef):
        return _segment(node, b, where)
    return flag(_LEAVES[node.type](node, b, where))


def _child(where: str, name: str) -> str:
    return at(where, f"{name}") if where else name


def _children(nodes: list[Condition], b: Builder, where: str) -> list[sa.ColumnElement[bool]]:
    path = _child(where, "conditions")
    return [compile_node(n, b, f"{path}[{i}]") for i, n in enumerate(nodes)]


def _segment(node: SegmentRef, b: Builder, where: str) -> sa.ColumnElement[bool]:
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
        return compile_node(condition, b, "")
    finally:
        b.expanding = outer
