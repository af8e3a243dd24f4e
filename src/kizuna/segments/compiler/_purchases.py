"""Leaves on purchases: counts, totals and AOV in a window, first / last order, what was bought, PB.

A purchase is what analytics counts (``analytics.base.purchases``): not cancelled,
placed by ``now``, with a positive amount after refunds. Amounts are summed as
stored, whatever their currency.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.analytics.base import net_lines, purchases
from kizuna.analytics.purchase_mix import PbThresholds, pb_customers
from kizuna.segments.compiler._context import Builder, at
from kizuna.segments.compiler._dates import Range, date_range, in_range, window_range
from kizuna.segments.definition import Bought, OrderDate, Orders, PriceType, Window
from kizuna.store.tables import orders

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


def compile_orders(node: Orders, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """The number, total or average value of purchases in the window, compared with a value."""
    query = _purchases(b, _window(b, node.within, where))
    if node.channel:
        query = query.where(orders.c.channel.in_(node.channel))
    p = query.subquery("p")
    per = sa.select(
        p.c.customer_id, sa.func.count().label("n"), sa.func.sum(p.c.amount).label("total")
    ).group_by(p.c.customer_id)
    sub = b.join(per, "orders")
    count = sa.func.coalesce(sub.c.n, 0)
    measure: Any = {
        "count": count,
        "total": sa.func.coalesce(sub.c.total, 0.0),
        "average_value": sub.c.total / sa.func.nullif(count, 0),
    }[node.measure]
    if node.op == "between":
        low, high = node.value if isinstance(node.value, list) else (node.value, node.value)
        return sa.and_(measure >= low, measure <= high)
    value = node.value[0] if isinstance(node.value, list) else node.value
    ops: dict[str, sa.ColumnElement[bool]] = {
        "eq": measure == value, "ne": sa.not_(sa.func.coalesce(measure == value, sa.false())),
        "gt": measure > value, "gte": measure >= value, "lt": measure < value,
        "lte": measure <= value,
    }  # fmt: skip
    return ops[node.op]


def compile_order_date(node: OrderDate, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """The first or last purchase's date lies in the asked range."""
    p = _purchases(b, _window(b, None, where)).subquery("p")
    pick = sa.func.min if node.which == "first" else sa.func.max
    per = sa.select(p.c.customer_id, pick(p.c.ordered_at).label("at")).group_by(p.c.customer_id)
    moment = b.join(per, "order_date").c.at
    ctx = b.ctx
    bounds = date_range(node.op, node.value, ctx.now, ctx.workspace.time_zone, at(where, "value"))
    return sa.and_(moment.is_not(None), in_range(moment, bounds))


def compile_bought(node: Bought, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """Kept (net of returns) at least one line matching every list given."""
    window = _purchases(b, _window(b, node.within, where)).subquery("p")
    lines = net_lines(window, b.ctx.workspace).subquery("lines")
    tests = [
        column.in_(values)
        for column, values in (
            (lines.c.category, node.categories),
            (lines.c.brand, node.brands),
            (lines.c.sku, node.skus),
        )
        if values
    ]
    query = sa.select(lines.c.customer_id).where(*tests).distinct()
    return b.join(query, "bought").c.customer_id.is_not(None)


def compile_price_type(node: PriceType, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """The customer's PB class over the window (as analytics' ``pb`` computes it)."""
    window = _purchases(b, _window(b, node.within, where)).subquery("p")
    pb = pb_customers(window, b.ctx.workspace, PbThresholds())
    sub = b.join(sa.select(pb.c.customer_id, pb.c.pb_class), "price_type")
    return sub.c.pb_class == node.buyer
