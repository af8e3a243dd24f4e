"""Building blocks the repeat, cohort, LTV and subscription analyses share.

Customers' net purchases numbered in time order (``ROW_NUMBER``, ties by order id)
with each customer's first purchase, channel and category; the acquisition filter
(``since``, ``min_days``); month arithmetic on local ``YYYY-MM`` texts; SQL
quartiles that match pandas; and the typing of result frames (no NaN: missing
values are None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from kizuna.analytics.base import purchases
from kizuna.analytics.sql import as_of_param, days_between, local_day
from kizuna.store.tables import order_items
from kizuna.store.types import UTCDateTime
from kizuna.store.workspaces import Workspace

__all__ = [
    "acquired",
    "materialized",
    "month_number",
    "numbered_purchases",
    "quartiles",
    "shape",
]


def numbered_purchases(
    workspace: Workspace,
    as_of: datetime,
    *,
    currency: str | None,
    dialect: str,
    first_category: bool = False,
) -> sa.CTE:
    """Net purchases numbered per customer in time order, as a CTE.

    Columns: ``customer_id, order_id, ordered_at, channel, amount, seq`` (1 = first),
    ``day`` (local ``YYYY-MM-DD``), ``prev_day`` (the previous purchase's local day,
    NULL for the first), ``first_at``, ``first_day`` and ``first_channel`` (the first
    purchase's), and with ``first_category`` the category of the first order's
    highest-value line. Customer-level values are window functions, so callers
    filter and group one scan of this CTE and never join it back to itself.
    """
    base = purchases(workspace.workspace_id, as_of, currency=currency).subquery("purchase")
    day = local_day(base.c.ordered_at, workspace.time_zone, dialect)
    who, when = base.c.customer_id, (base.c.ordered_at, base.c.order_id)
    columns: list[sa.ColumnElement[Any]] = [
        base.c.customer_id,
        base.c.order_id,
        base.c.ordered_at,
        base.c.channel,
        base.c.amount,
        sa.func.row_number().over(partition_by=who, order_by=when).label("seq"),
        day.label("day"),
        sa.func.lag(day).over(partition_by=who, order_by=when).label("prev_day"),
        sa.func.min(base.c.ordered_at).over(partition_by=who).label("first_at"),
        sa.func.min(day).over(partition_by=who).label("first_day"),
        sa.func.first_value(base.c.channel)
        .over(partition_by=who, order_by=when)
        .label("first_channel"),
    ]
    if not first_category:
        return materialized(sa.select(*columns), "numbered", dialect)
    inner = sa.select(*columns).subquery("ordered")
    # Look the category up for first orders only (CASE skips the lookup otherwise).
    top = sa.case((inner.c.seq == 1, _top_category(inner.c.order_id, workspace)))
    first = sa.func.max(top).over(partition_by=inner.c.customer_id).label("first_category")
    return materialized(sa.select(inner, first), "numbered", dialect)


def _top_category(order_id: Any, workspace: Workspace) -> sa.ScalarSelect[Any]:
    """The category of an order's highest-value line (ties by line number), by index lookup."""
    oi = order_items.c
    value = oi.unit_price * oi.quantity - oi.discount
    return (
        sa.select(oi.category)
        .where(oi.workspace_id == workspace.workspace_id, oi.order_id == order_id)
        .order_by(value.desc(), oi.line_no)
        .limit(1)
        .scalar_subquery()
    )


def materialized(query: sa.Select[Any], name: str, dialect: str) -> sa.CTE:
    """``query`` as a CTE computed once.

    PostgreSQL would otherwise inline a CTE used once; on freshly loaded tables
    (no statistics yet) it then may re-run a window query inside a nested loop.
    """
    cte = query.cte(name)
    return cte.prefix_with("MATERIALIZED") if dialect == "postgresql" else cte


def month_number(month_text: Any) -> sa.ColumnElement[int]:
    """``year × 12 + month`` of a ``YYYY-MM…`` text, for month arithmetic."""
    year = sa.cast(sa.func.substr(month_text, 1, 4), sa.Integer)
    return year * 12 + sa.cast(sa.func.substr(month_text, 6, 2), sa.Integer)


def acquired(
    numbered: sa.CTE, as_of: datetime, since: datetime | None, min_days: int, dialect: str
) -> list[sa.ColumnElement[bool]]:
    """Conditions on a numbered row's customer: acquired since ``since``, ``min_days`` ago."""
    conditions: list[sa.ColumnElement[bool]] = []
    if since is not None:
        conditions.append(numbered.c.first_at >= sa.bindparam("since", since, type_=UTCDateTime))
    if min_days > 0:
        age = days_between(as_of_param(as_of, "as_of_age"), numbered.c.first_at, dialect)
        conditions.append(age >= min_days)
    return conditions


def quartiles(source: sa.Subquery, value: str, groups: Sequence[str]) -> sa.Select[Any]:
    """Per group: ``customers, mean, min, q1, median, q3, max`` of ``source.c[value]``.

    Quartiles interpolate linearly between ranks, as pandas' ``quantile`` does.
    """
    keys = [source.c[g] for g in groups]
    v = sa.cast(source.c[value], sa.Float)
    ranked = sa.select(
        *keys,
        v.label("v"),
        sa.func.row_number().over(partition_by=keys or None, order_by=v).label("rn"),
        sa.func.count().over(partition_by=keys or None).label("cnt"),
    ).subquery("ranked")
    r = ranked.c
    parts: list[sa.ColumnElement[Any]] = []
    for k, name in ((1, "q1"), (2, "median"), (3, "q3")):
        low = (r.cnt - 1) * k // 4  # 0-based rank below the quantile
        parts += [
            sa.func.max(sa.case((r.rn == low + 1, r.v))).label(f"{name}_lo"),
            sa.func.max(sa.case((r.rn == low + 2, r.v))).label(f"{name}_hi"),
            sa.func.max((r.cnt - 1) * k % 4).label(f"{name}_frac"),
        ]
    spread = sa.select(
        *[r[g] for g in groups],
        sa.cast(sa.func.count(), sa.Integer).label("customers"),
        sa.func.avg(r.v).label("mean"),
        sa.func.min(r.v).label("min"),
        sa.func.max(r.v).label("max"),
        *parts,
    )
    q = spread.group_by(*[r[g] for g in groups]).subquery("spread").c
    interpolated = [
        (
            q[f"{n}_lo"]
            + q[f"{n}_frac"] / 4.0 * (sa.func.coalesce(q[f"{n}_hi"], q[f"{n}_lo"]) - q[f"{n}_lo"])
        ).label(n)
        for n in ("q1", "median", "q3")
    ]
    return sa.select(*[q[g] for g in groups], q.customers, q.mean, q.min, *interpolated, q.max)


def shape(frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """Keep ``columns`` in order with their kinds; optional kinds hold None, never NaN."""
    blank = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    out = pd.DataFrame({name: frame.get(name, blank) for name in columns})
    for name, kind in columns.items():
        column = out[name]
        if kind == "int":
            out[name] = pd.to_numeric(column).astype("int64")
        elif kind == "float":
            out[name] = pd.to_numeric(column).astype("float64")
        elif kind == "bool":
            out[name] = column.astype(bool)
        elif kind == "time":
            out[name] = pd.to_datetime(column, utc=True)
        elif kind in ("int?", "float?"):
            numbers = pd.to_numeric(column)
            typed = numbers.astype("Int64" if kind == "int?" else "Float64").astype(object)
            out[name] = typed.where(numbers.notna(), None)
        else:
            out[name] = column.astype(str) if len(column) else column.astype(object)
    return out.reset_index(drop=True)


# --- repeat conversion ----------------------------------------------------------------
