"""Repeat conversion: F2, F3 … F(n) rates and the days between successive purchases.

Every customer's net purchases (``base.purchases``) are numbered in time order in
SQL (``ROW_NUMBER``; ties on the same instant go by order id). A customer *reaches*
purchase ``k`` when they made at least ``k`` purchases up to ``as_of``;
``F(k)`` conversion is ``customers reaching k / customers reaching k-1``.

*Days between* the n-th and (n+1)-th purchase count local calendar days in the
workspace's time zone (an order on Monday and the next on the following Monday
are 7 days apart; two orders on one day are 0 days apart).

Breakdowns (``by``), all fixed by the customer's first purchase:

- ``acquisition_month``: local month of the first purchase, ``YYYY-MM``;
- ``first_category``: category of the first order's highest-value line
  (``unit_price × quantity − discount``, ties by line number); ``(none)`` when
  the order has no lines or the line has no category;
- ``first_channel``: ``online``, ``store`` or ``marketplace``.

Without a breakdown the ``segment`` column holds ``all``.

``since`` selects customers *acquired* on or after it (first purchase ≥ since);
their later purchases all count. **Right-censoring**: a customer acquired last
week has had no time to come back, so recent cohorts drag F2 down. Pass
``min_days`` to keep only customers whose first purchase is at least that many
days before ``as_of`` (e.g. 90 or 180); F3 and later are still censored for
customers whose second purchase is recent, so read them with that in mind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.analytics.base import NO_VALUE, check_window, resolve_currency
from kizuna.analytics.purchase_sequence import (
    acquired,
    numbered_purchases,
    quartiles,
    shape,
)
from kizuna.analytics.sql import local_days_between
from kizuna.errors import InvalidInput, Problem
from kizuna.store.frames import read_frame
from kizuna.store.workspaces import Workspace

__all__ = [
    "CONVERSION_COLUMNS",
    "GAP_BUCKETS",
    "GAP_COLUMNS",
    "HISTOGRAM_COLUMNS",
    "Breakdown",
    "RepeatReport",
    "gap_histogram",
    "purchase_gaps",
    "repeat_conversion",
    "repeat_report",
]

Breakdown = Literal["acquisition_month", "first_category", "first_channel"]
ALL = "all"
# (label, lowest day, highest day or None for open-ended), inclusive bounds.
GAP_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7", 0, 7),
    ("8-14", 8, 14),
    ("15-30", 15, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    ("181-365", 181, 365),
    (">365", 366, None),
)

# Column → kind; kinds ending in "?" hold None where the value is undefined.
CONVERSION_COLUMNS = {
    "segment": "str",
    "purchase": "int",
    "step": "str",
    "customers": "int",
    "rate": "float?",
    "share": "float",
}
GAP_COLUMNS = {
    "segment": "str",
    "n": "int",
    "step": "str",
    "customers": "int",
    "mean": "float",
    "min": "float",
    "q1": "float",
    "median": "float",
    "q3": "float",
    "max": "float",
}
HISTOGRAM_COLUMNS = {
    "segment": "str",
    "n": "int",
    "bucket": "str",
    "lower_days": "int",
    "upper_days": "int?",
    "customers": "int",
    "share": "float",
}


@dataclass(frozen=True, slots=True)
class RepeatReport:
    """The three repeat-conversion tables for one selection of customers."""

    conversion: pd.DataFrame
    gaps: pd.DataFrame
    histogram: pd.DataFrame


# --- shared building blocks (cohorts and ltv use them too) ---------------------------


def _segment(numbered: sa.CTE, by: Breakdown | None) -> sa.ColumnElement[str]:
    if by == "acquisition_month":
        return sa.func.substr(numbered.c.first_day, 1, 7)
    if by == "first_channel":
        return numbered.c.first_channel
    if by == "first_category":
        return sa.func.coalesce(numbered.c.first_category, NO_VALUE)
    return sa.literal(ALL, sa.String)


@dataclass(frozen=True, slots=True)
class _Selection:
    """The numbered purchases, each row's customer segment and the customer filter."""

    numbered: sa.CTE
    segment: sa.ColumnElement[str]
    conditions: list[sa.ColumnElement[bool]]


def _select(
    conn: Connection,
    workspace: Workspace,
    as_of: datetime,
    options: tuple[datetime | None, str | None, Breakdown | None, int],
) -> _Selection | None:
    since, currency, by, min_days = options
    check_window(as_of, since)
    code = resolve_currency(conn, workspace.workspace_id, as_of, currency)
    if code is None:
        return None
    dialect = conn.dialect.name
    numbered = numbered_purchases(
        workspace, as_of, currency=code, dialect=dialect, first_category=by == "first_category"
    )
    conditions = acquired(numbered, as_of, since, min_days, dialect)
    return _Selection(numbered, _segment(numbered, by).label("segment"), conditions)


def _check(max_n: int, min_days: int) -> None:
    problems = []
    if max_n < 2:
        problems.append(Problem("invalid_max_n", "max_n must be 2 or more", "max_n"))
    if min_days < 0:
        problems.append(Problem("invalid_min_days", "min_days must not be negative", "min_days"))
    if problems:
        raise InvalidInput(problems)


def repeat_conversion(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    by: Breakdown | None = None,
    max_n: int = 5,
    min_days: int = 0,
) -> pd.DataFrame:
    """F1 … F(max_n): customers reaching each purchase number, and the step's conversion.

    Columns: ``segment``; ``purchase`` (k = 1 … max_n); ``step`` (``"F{k}"``);
    ``customers`` (customers with ≥ k purchases); ``rate`` (customers(k) /
    customers(k−1), None for k = 1); ``share`` (customers(k) / customers(1)).
    Empty (same columns) when no customer is selected. Raises ``InvalidInput``
    for ``max_n`` < 2, a negative ``min_days`` or mixed currencies.
    """
    _check(max_n, min_days)
    chosen = _select(conn, workspace, as_of, (since, currency, by, min_days))
    if chosen is None:
        return shape(pd.DataFrame(), CONVERSION_COLUMNS)
    seq = chosen.numbered.c.seq
    query = (
        sa.select(chosen.segment, seq.label("purchase"), sa.func.count().label("customers"))
        .where(seq <= max_n, *chosen.conditions)
        .group_by(chosen.segment, seq)
    )
    counts = read_frame(conn, query)
    if counts.empty:
        return shape(counts, CONVERSION_COLUMNS)
    # Every segment gets every step, with 0 where nobody got that far.
    grid = pd.MultiIndex.from_product(
        [sorted(counts["segment"].astype(str).unique()), range(1, max_n + 1)],
        names=["segment", "purchase"],
    )
    counts["segment"] = counts["segment"].astype(str)
    frame = counts.set_index(["segment", "purchase"]).reindex(grid, fill_value=0).reset_index()
    customers = frame["customers"].astype("int64")
    previous = customers.groupby(frame["segment"]).shift(1)
    first = customers.groupby(frame["segment"]).transform("first")
    frame["customers"] = customers
    frame["rate"] = (customers / previous.where(previous > 0)).where(frame["purchase"] > 1)
    frame["share"] = customers / first
    frame["step"] = "F" + frame["purchase"].astype(str)
    return shape(frame, CONVERSION_COLUMNS)


def _gap_rows(chosen: _Selection, max_n: int, dialect: str) -> sa.Subquery:
    n = chosen.numbered.c
    days = local_days_between(n.day, n.prev_day, dialect)
    return (
        sa.select(chosen.segment, (n.seq - 1).label("n"), days.label("days"))
        .where(n.seq >= 2, n.seq <= max_n, *chosen.conditions)
        .subquery("gaps")
    )


def purchase_gaps(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    by: Breakdown | None = None,
    max_n: int = 5,
    min_days: int = 0,
) -> pd.DataFrame:
    """Days between the n-th and (n+1)-th purchase (n = 1 … max_n − 1): count and spread.

    Columns: ``segment``; ``n``; ``step`` (``"F{n+1}"``); ``customers`` (customers who
    made purchase n+1); ``mean, min, q1, median, q3, max`` in local calendar days
    (quartiles interpolated as pandas does). A (segment, n) with no such customer
    has no row; no customers at all gives an empty frame with these columns.
    """
    _check(max_n, min_days)
    chosen = _select(conn, workspace, as_of, (since, currency, by, min_days))
    if chosen is None:
        return shape(pd.DataFrame(), GAP_COLUMNS)
    gaps = _gap_rows(chosen, max_n, conn.dialect.name)
    frame = read_frame(conn, quartiles(gaps, "days", ["segment", "n"]))
    frame["step"] = "F" + (frame["n"].astype("int64") + 1).astype(str)
    return shape(frame, GAP_COLUMNS).sort_values(["segment", "n"], ignore_index=True)


def _bucket(days: Any) -> sa.ColumnElement[str]:
    whens = [(days <= high, label) for label, _, high in GAP_BUCKETS if high is not None]
    return sa.case(*whens, else_=GAP_BUCKETS[-1][0])


def gap_histogram(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    by: Breakdown | None = None,
    max_n: int = 5,
    min_days: int = 0,
) -> pd.DataFrame:
    """Days between the n-th and (n+1)-th purchase counted in ``GAP_BUCKETS``.

    Columns: ``segment, n``; ``bucket`` (label such as ``"8-14"``); ``lower_days`` and
    ``upper_days`` (inclusive bounds; None for the open ``">365"``); ``customers``;
    ``share`` (of the (segment, n) total). Every bucket appears, 0 when empty, for
    each (segment, n) with at least one customer; otherwise no rows.
    """
    _check(max_n, min_days)
    chosen = _select(conn, workspace, as_of, (since, currency, by, min_days))
    if chosen is None:
        return shape(pd.DataFrame(), HISTOGRAM_COLUMNS)
    gaps = _gap_rows(chosen, max_n, conn.dialect.name)
    bucket = _bucket(gaps.c.days).label("bucket")
    query = sa.select(gaps.c.segment, gaps.c.n, bucket, sa.func.count().label("customers"))
    counts = read_frame(conn, query.group_by(gaps.c.segment, gaps.c.n, bucket))
    if counts.empty:
        return shape(counts, HISTOGRAM_COLUMNS)
    counts["segment"] = counts["segment"].astype(str)
    buckets = pd.DataFrame(GAP_BUCKETS, columns=["bucket", "lower_days", "upper_days"])
    keys = counts[["segment", "n"]].drop_duplicates()
    frame = keys.merge(buckets, how="cross").merge(
        counts, on=["segment", "n", "bucket"], how="left"
    )
    frame["customers"] = frame["customers"].fillna(0).astype("int64")
    frame["share"] = frame["customers"] / frame.groupby(["segment", "n"])["customers"].transform(
        "sum"
    )
    frame = frame.sort_values(["segment", "n", "lower_days"], ignore_index=True)
    return shape(frame, HISTOGRAM_COLUMNS)


def repeat_report(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    by: Breakdown | None = None,
    max_n: int = 5,
    min_days: int = 0,
) -> RepeatReport:
    """Conversion, gap statistics and gap histogram for the same customers."""
    options: dict[str, Any] = {
        "as_of": as_of, "since": since, "currency": currency, "by": by,
        "max_n": max_n, "min_days": min_days,
    }  # fmt: skip
    return RepeatReport(
        repeat_conversion(conn, workspace, **options),
        purchase_gaps(conn, workspace, **options),
        gap_histogram(conn, workspace, **options),
    )
