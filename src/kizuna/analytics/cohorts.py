"""Monthly acquisition cohorts × months since the first purchase: retention and revenue.

A customer's *cohort* is the local calendar month (workspace time zone) of their
first net purchase (``base.purchases``). *Month index* ``m`` counts local calendar
months from it: a customer first buying on 31 March and again on 1 April is
active in months 0 and 1 of the March cohort. ``since`` keeps customers acquired
on or after it; all their purchases up to ``as_of`` count.

The month that contains ``as_of`` is still running: its row is flagged
``complete = False`` and reads lower than it will end up.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.analytics.base import check_window, resolve_currency
from kizuna.analytics.purchase_sequence import (
    acquired,
    month_number,
    numbered_purchases,
    shape,
)
from kizuna.errors import InvalidInput, Problem
from kizuna.store.frames import read_frame
from kizuna.store.workspaces import Workspace

__all__ = ["COHORT_COLUMNS", "cohort_retention", "retention_matrix"]

COHORT_COLUMNS = {
    "cohort": "str",
    "month_index": "int",
    "month": "str",
    "complete": "bool",
    "cohort_customers": "int",
    "active_customers": "int",
    "retention": "float",
    "orders": "int",
    "revenue": "float",
    "cumulative_revenue_per_customer": "float",
}


def _month_text(number: pd.Series[int]) -> pd.Series[str]:
    year, month = (number - 1) // 12, (number - 1) % 12 + 1
    return year.astype(str).str.zfill(4) + "-" + month.astype(str).str.zfill(2)


def cohort_retention(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    max_months: int | None = None,
) -> pd.DataFrame:
    """Cohort × month index table, one row per observed cell (long form).

    Columns: ``cohort`` (``YYYY-MM``); ``month_index`` (0 = acquisition month);
    ``month`` (the calendar month of the cell); ``complete`` (False for the month of
    ``as_of``); ``cohort_customers`` (customers acquired in the cohort);
    ``active_customers`` (of them, customers with a purchase in that month);
    ``retention`` (active / cohort customers); ``orders`` and ``revenue`` (net
    purchases in that month); ``cumulative_revenue_per_customer`` (revenue of months
    0 … m over cohort customers). Every month from 0 to ``as_of``'s month appears,
    with 0 where nobody bought (up to ``max_months`` when given). Empty (same
    columns) when no customer was acquired in the window.
    """
    if max_months is not None and max_months < 0:
        raise InvalidInput(Problem("invalid_max_months", "must not be negative", "max_months"))
    check_window(as_of, since)
    code = resolve_currency(conn, workspace.workspace_id, as_of, currency)
    if code is None:
        return shape(pd.DataFrame(), COHORT_COLUMNS)
    dialect = conn.dialect.name
    numbered = numbered_purchases(workspace, as_of, currency=code, dialect=dialect)
    cohort = sa.func.substr(numbered.c.first_day, 1, 7)
    index = (month_number(numbered.c.day) - month_number(numbered.c.first_day)).label("month_index")
    conditions = acquired(numbered, as_of, since, 0, dialect)
    if max_months is not None:
        conditions.append(index <= max_months)
    query = (
        sa.select(
            cohort.label("cohort"),
            index,
            sa.func.count(sa.distinct(numbered.c.customer_id)).label("active_customers"),
            sa.func.count().label("orders"),
            sa.cast(sa.func.sum(numbered.c.amount), sa.Float).label("revenue"),
        )
        .where(*conditions)
        .group_by(cohort, index)
    )
    cells = read_frame(conn, query)
    if cells.empty:
        return shape(cells, COHORT_COLUMNS)
    return shape(_fill(cells, _month_of(as_of, workspace), max_months), COHORT_COLUMNS)


def _month_of(moment: datetime, workspace: Workspace) -> int:
    local = moment.astimezone(ZoneInfo(workspace.time_zone))
    return local.year * 12 + local.month


def _fill(cells: pd.DataFrame, as_of_month: int, max_months: int | None) -> pd.DataFrame:
    """Add the months nobody bought in, then the per-cohort ratios (vectorized)."""
    cells["cohort"] = cells["cohort"].astype(str)
    year = cells["cohort"].str.slice(0, 4).astype("int64")
    cells["start"] = year * 12 + cells["cohort"].str.slice(5, 7).astype("int64")
    cohorts = cells.loc[cells["month_index"] == 0, ["cohort", "start", "active_customers"]]
    cohorts = cohorts.rename(columns={"active_customers": "cohort_customers"})
    span = as_of_month - cohorts["start"]
    if max_months is not None:
        span = span.clip(upper=max_months)
    grid = cohorts.loc[cohorts.index.repeat(span + 1)].copy()
    grid["month_index"] = grid.groupby("cohort").cumcount()
    frame = grid.merge(cells.drop(columns="start"), on=["cohort", "month_index"], how="left")
    for name in ("active_customers", "orders", "revenue"):
        frame[name] = frame[name].fillna(0)
    number = frame["start"] + frame["month_index"]
    frame["month"] = _month_text(number)
    frame["complete"] = number < as_of_month
    frame["retention"] = frame["active_customers"] / frame["cohort_customers"]
    cumulative = frame.groupby("cohort")["revenue"].cumsum()
    frame["cumulative_revenue_per_customer"] = cumulative / frame["cohort_customers"]
    return frame.sort_values(["cohort", "month_index"], ignore_index=True)


def retention_matrix(cohorts: pd.DataFrame, value: str = "retention") -> pd.DataFrame:
    """Pivot ``cohort_retention`` output to cohorts × month index; unobserved cells are None."""
    if cohorts.empty:
        return pd.DataFrame(dtype=object)
    wide = cohorts.pivot(index="cohort", columns="month_index", values=value)
    wide = wide.astype(object).where(wide.notna(), None)
    wide.columns.name = "month_index"
    return wide
