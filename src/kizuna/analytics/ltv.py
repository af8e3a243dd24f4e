"""Historical lifetime value: revenue and gross profit after the first purchase.

**Revenue** is net purchases (``base.purchases``: order total − refunds, shipping and
tax included) in one currency. Windows start at the customer's first purchase:
``365d`` is the 365 × 24 h after it, ``3y`` the 1,095 × 24 h after it, ``lifetime``
everything up to ``as_of``.

**Gross profit** comes from the lines of those purchases whose SKU has a cost in
``products`` (joined on workspace and SKU)::

    kept = quantity − returned_quantity
    profit = (unit_price − cost) × kept − discount × kept / quantity

(the line discount is prorated to the units kept, so a returned unit gives back its
share of the discount). Order-level coupons, shipping and tax are not in gross
profit. Lines without a known cost are left out, never guessed: a customer's
profit sums the lines with a cost and is None when no line has one;
``cost_coverage`` is the share of line revenue (``(quantity × unit_price −
discount) × kept / quantity``) whose cost is known — read profit with it.

**Censoring**: a customer acquired 200 days ago has not completed the 365-day
window. Per customer, ``complete_365d`` / ``complete_3y`` say whether the window has
closed (``as_of − first purchase ≥ window``); the window's partial revenue is still
reported. ``ltv_summary`` averages a window over complete customers only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.analytics.base import check_window, resolve_currency
from kizuna.analytics.purchase_sequence import (
    acquired,
    materialized,
    numbered_purchases,
    quartiles,
    shape,
)
from kizuna.analytics.sql import as_of_param, days_between
from kizuna.store.frames import read_frame
from kizuna.store.tables import order_items, products
from kizuna.store.workspaces import Workspace

__all__ = ["CUSTOMER_LTV_COLUMNS", "LTV_SUMMARY_COLUMNS", "WINDOWS", "customer_ltv", "ltv_summary"]

WINDOWS = {"365d": 365, "3y": 3 * 365}
CUSTOMER_LTV_COLUMNS = {
    "customer_id": "str",
    "cohort": "str",
    "first_purchase_at": "time",
    "orders": "int",
    "revenue_365d": "float",
    "revenue_3y": "float",
    "revenue_lifetime": "float",
    "profit_365d": "float?",
    "profit_3y": "float?",
    "profit_lifetime": "float?",
    "cost_coverage": "float?",
    "complete_365d": "bool",
    "complete_3y": "bool",
}
_METRICS = (
    "revenue_365d",
    "revenue_3y",
    "revenue_lifetime",
    "profit_365d",
    "profit_3y",
    "profit_lifetime",
)
LTV_SUMMARY_COLUMNS = {
    "cohort": "str",
    "customers": "int",
    "customers_365d": "int",
    "customers_3y": "int",
    **{f"{m}_{stat}": "float?" for m in _METRICS for stat in ("mean", "median")},
    "cost_coverage": "float?",
}


def _facts(chosen: sa.CTE, workspace: Workspace, dialect: str) -> sa.Subquery:
    """One row per purchase and one per purchase line, in the same columns.

    Summing these per customer joins orders to lines without a join on customer
    (which neither engine plans well over CTEs): order rows carry the amount, line
    rows the profit, known-cost revenue and line revenue.
    """
    c, oi, p = chosen.c, order_items.c, products.c
    age = days_between(c.ordered_at, c.first_at, dialect).label("age")
    nothing = sa.literal(0.0, sa.Float)
    per_order = sa.select(
        c.customer_id,
        c.first_at,
        c.first_day,
        sa.literal(1, sa.Integer).label("orders"),
        sa.cast(c.amount, sa.Float).label("amount"),
        age,
        sa.cast(sa.null(), sa.Float).label("profit"),
        nothing.label("known"),
        nothing.label("line_revenue"),
    )
    kept = oi.quantity - oi.returned_quantity
    per_unit = kept / sa.func.nullif(sa.cast(oi.quantity, sa.Float), 0)
    revenue = (oi.quantity * oi.unit_price - oi.discount) * per_unit
    profit = (oi.unit_price - p.cost) * kept - oi.discount * per_unit  # NULL without a cost
    joined = chosen.join(order_items, oi.order_id == c.order_id).outerjoin(
        products, sa.and_(p.workspace_id == oi.workspace_id, p.sku == oi.sku)
    )
    per_line = (
        sa.select(
            c.customer_id,
            c.first_at,
            c.first_day,
            sa.literal(0, sa.Integer).label("orders"),
            nothing.label("amount"),
            age,
            sa.cast(profit, sa.Float).label("profit"),
            sa.cast(sa.case((p.cost.is_not(None), revenue), else_=0.0), sa.Float).label("known"),
            sa.cast(revenue, sa.Float).label("line_revenue"),
        )
        .select_from(joined)
        .where(oi.workspace_id == workspace.workspace_id)
    )
    return sa.union_all(per_order, per_line).subquery("facts")


def _customer_query(
    conn: Connection, workspace: Workspace, as_of: datetime, since: datetime | None, code: str
) -> sa.Select[Any]:
    dialect = conn.dialect.name
    numbered = numbered_purchases(workspace, as_of, currency=code, dialect=dialect)
    chosen = materialized(
        sa.select(numbered).where(*acquired(numbered, as_of, since, 0, dialect)), "chosen", dialect
    )
    f = _facts(chosen, workspace, dialect).c
    first = sa.func.min(f.first_at)
    tenure = days_between(as_of_param(as_of, "as_of_tenure"), first, dialect)
    windows = [(name, f.age < days) for name, days in WINDOWS.items()]
    known, line_revenue = sa.func.sum(f.known), sa.func.sum(f.line_revenue)
    return sa.select(
        f.customer_id,
        first.label("first_purchase_at"),
        sa.func.min(sa.func.substr(f.first_day, 1, 7)).label("cohort"),
        sa.cast(sa.func.sum(f.orders), sa.Integer).label("orders"),
        *[
            sa.cast(sa.func.sum(sa.case((inside, f.amount), else_=0.0)), sa.Float).label(
                f"revenue_{name}"
            )
            for name, inside in windows
        ],
        sa.cast(sa.func.sum(f.amount), sa.Float).label("revenue_lifetime"),
        # SUM over no known cost is NULL: profit stays unknown rather than 0.
        *[
            sa.cast(sa.func.sum(sa.case((inside, f.profit))), sa.Float).label(f"profit_{name}")
            for name, inside in windows
        ],
        sa.cast(sa.func.sum(f.profit), sa.Float).label("profit_lifetime"),
        sa.cast(known / sa.func.nullif(line_revenue, 0), sa.Float).label("cost_coverage"),
        sa.cast(known, sa.Float).label("known"),
        sa.cast(line_revenue, sa.Float).label("line_revenue"),
        *[(tenure >= days).label(f"complete_{name}") for name, days in WINDOWS.items()],
    ).group_by(f.customer_id)


def customer_ltv(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
) -> pd.DataFrame:
    """Historical LTV per customer acquired in ``[since, as_of]``.

    Columns: ``customer_id``; ``cohort`` (local ``YYYY-MM`` of the first purchase);
    ``first_purchase_at`` (UTC); ``orders`` (lifetime purchases); ``revenue_365d,
    revenue_3y, revenue_lifetime``; ``profit_365d, profit_3y, profit_lifetime``
    (None when no line in the window has a known cost); ``cost_coverage`` (None
    without line revenue); ``complete_365d, complete_3y``. Empty (same columns)
    when no customer was acquired in the window.
    """
    check_window(as_of, since)
    code = resolve_currency(conn, workspace.workspace_id, as_of, currency)
    if code is None:
        return shape(pd.DataFrame(), CUSTOMER_LTV_COLUMNS)
    query = _customer_query(conn, workspace, as_of, since, code)
    frame = read_frame(conn, query.order_by(query.selected_columns.customer_id))
    return shape(frame, CUSTOMER_LTV_COLUMNS)


def _spread_source(per_customer: sa.CTE) -> sa.Subquery:
    """Long form ``(cohort, metric, value)`` of the values each summary statistic uses.

    Each window's metrics keep only customers whose window has closed; ``known`` and
    ``line_revenue`` (every customer) give the cost coverage as a ratio of means.
    """
    c = per_customer.c
    complete = {"365d": c.complete_365d, "3y": c.complete_3y, "lifetime": sa.true()}
    metrics = [(m, complete[m.rsplit("_", 1)[1]]) for m in _METRICS]
    metrics += [("known", sa.true()), ("line_revenue", sa.true())]
    parts = []
    for cohort in (c.cohort, sa.literal("all", sa.String)):
        for metric, condition in metrics:
            part = sa.select(
                cohort.label("cohort"),
                sa.literal(metric, sa.String).label("metric"),
                c[metric].label("value"),
            )
            parts.append(part.where(condition, c[metric].is_not(None)))
    return sa.union_all(*parts).subquery("spread_source")


def ltv_summary(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
) -> pd.DataFrame:
    """Historical LTV by acquisition cohort, then one ``all`` row.

    Columns: ``cohort``; ``customers``; ``customers_365d`` and ``customers_3y``
    (customers whose window has closed — the only ones the window's statistics
    use); ``{revenue,profit}_{365d,3y,lifetime}_{mean,median}`` (profit over
    customers with a known profit; None when no customer qualifies);
    ``cost_coverage`` (share of line revenue with a known cost; None without lines).
    Empty (same columns) when no customer was acquired in the window.
    """
    check_window(as_of, since)
    code = resolve_currency(conn, workspace.workspace_id, as_of, currency)
    if code is None:
        return shape(pd.DataFrame(), LTV_SUMMARY_COLUMNS)
    query = _customer_query(conn, workspace, as_of, since, code)
    per_customer = materialized(query, "per_customer", conn.dialect.name)
    spread = read_frame(
        conn, quartiles(_spread_source(per_customer), "value", ["cohort", "metric"])
    )
    if spread.empty:
        return shape(spread, LTV_SUMMARY_COLUMNS)
    return shape(_widen(spread), LTV_SUMMARY_COLUMNS)


def _widen(spread: pd.DataFrame) -> pd.DataFrame:
    """One row per cohort (``all`` last) from the long ``(cohort, metric)`` statistics."""
    wide = spread.pivot(index="cohort", columns="metric", values=["customers", "mean", "median"])
    frame = pd.DataFrame(index=wide.index)
    counts = pd.DataFrame(wide["customers"]).reindex(
        columns=[f"revenue_{w}" for w in (*WINDOWS, "lifetime")]
    )
    frame["customers"] = counts["revenue_lifetime"]
    for window in WINDOWS:
        frame[f"customers_{window}"] = counts[f"revenue_{window}"].fillna(0)
    for stat in ("mean", "median"):
        values = pd.DataFrame(wide[stat]).reindex(columns=list(_METRICS))
        for metric in _METRICS:
            frame[f"{metric}_{stat}"] = values[metric]
    means = wide["mean"]
    frame["cost_coverage"] = means["known"] / means["line_revenue"].where(means["line_revenue"] > 0)
    frame = frame.reset_index()
    last = frame["cohort"].eq("all").astype(int)  # cohorts in time order, "all" last
    return frame.assign(_last=last).sort_values(["_last", "cohort"], ignore_index=True)
