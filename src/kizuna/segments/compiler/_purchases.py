"""Leaves on purchases: counts, totals and AOV in a window, first / last order, what was bought, PB.

A purchase is what analytics counts (``analytics.base.purchases``): not cancelled,
placed by ``now``, with a positive amount after refunds. Amounts are summed as
stored, whatever their currency.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.analytics.base import NO_VALUE, net_lines, purchases
from kizuna.analytics.purchase_mix import PbThresholds, pb_customers
from kizuna.segments.compiler._aggregates import (
    compare_measure,
    count_test,
    grouped_test,
    holds_at_zero,
)
from kizuna.segments.compiler._context import Builder, at
from kizuna.segments.compiler._dates import Range, date_range, in_range, window_range
from kizuna.segments.definition import Bought, OrderDate, Orders, PriceType, Window
from kizuna.store.tables import order_items, orders

__all__ = ["compile_bought", "compile_order_date", "compile_orders", "compile_price_type"]

_TICK = timedelta(microseconds=1)


def _purchases(b: Builder, window: Range) -> sa.Select[Any]:
    assert window.end is not None  # windows never reach past now
    query = purchases(b.ctx.workspace.workspace_id, window.end - _TICK, since=window.start)
    if b.ctx.customer_ids is not None:
        query = query.where(orders.c.customer_id.in_(list(b.ctx.customer_ids)))
    return query


def _window(b: Builder, window: Window | None, where: str) -> Range:
    return window_range(window, b.ctx.now, b.ctx.workspace.time_zone, at(where, "within"))


_AT_ZERO: dict[str, float | None] = {"count": 0, "total": 0.0, "average_value": None}


def compile_orders(node: Orders, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """The number, total or average value of purchases in the window, compared with a value."""
    query = _purchases(b, _window(b, node.within, where))
    if node.channel:
        query = query.where(orders.c.channel.in_(node.channel))
    p = query.subquery("p")
    rows = sa.select(p.c.customer_id)
    if node.measure == "count":
        bounds = node.value if isinstance(node.value, list) else [node.value]
        return count_test(b, rows, lambda n: compare_measure(node.op, node.value, n), bounds)
    total = sa.func.sum(p.c.amount)
    measure = total if node.measure == "total" else total / sa.func.nullif(sa.func.count(), 0)
    having = compare_measure(node.op, node.value, measure)
    return grouped_test(b, rows, having, holds_at_zero(node.op, node.value, _AT_ZERO[node.measure]))


def compile_order_date(node: OrderDate, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """The first or last purchase's date lies in the asked range."""
    p = _purchases(b, _window(b, None, where)).subquery("p")
    pick = sa.func.min if node.which == "first" else sa.func.max
    ctx = b.ctx
    bounds = date_range(node.op, node.value, ctx.now, ctx.workspace.time_zone, at(where, "value"))
    return grouped_test(
        b, sa.select(p.c.customer_id), in_range(pick(p.c.ordered_at), bounds), False
    )


def compile_bought(node: Bought, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """Kept (net of returns) at least one line matching every list given."""
    window = _purchases(b, _window(b, node.within, where)).subquery("p")
    lines = net_lines(window, b.ctx.workspace)
    i = order_items.c
    for column, values in ((i.category, node.categories), (i.brand, node.brands)):
        if values:
            lines = lines.where(_one_of(column, values))
    if node.skus:
        lines = lines.where(i.sku.in_(node.skus))
    line = lines.subquery("lines")
    return b.present(sa.select(line.c.customer_id))


def _one_of(column: Any, values: list[str]) -> sa.ColumnElement[bool]:
    """``coalesce(column, NO_VALUE) IN values`` (as analytics names a missing value), on the
    stored column: the planner has statistics for it, none for the expression."""
    test = column.in_(values)
    return sa.or_(test, column.is_(None)) if NO_VALUE in values else test


def compile_price_type(node: PriceType, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """The customer's PB class over the window (as analytics' ``pb`` computes it)."""
    window = _purchases(b, _window(b, node.within, where)).subquery("p")
    pb = pb_customers(window, b.ctx.workspace, PbThresholds())
    return b.present(sa.select(pb.c.customer_id).where(pb.c.pb_class == node.buyer))
