"""Decile, ABC and Pareto analyses of revenue over customers or over products.

*Members* are what revenue is split over (``of``):

* ``customer`` — revenue is the customer's net purchases (``base.purchases``:
  order total minus refunds, shipping and tax included);
* ``sku``, ``category``, ``brand`` — revenue is the net line amount of the
  window's purchases (:func:`net_lines`: ``quantity × unit_price − discount``,
  scaled to the quantity not returned; order-level coupons, shipping and tax are
  not spread over lines). Lines without a category or brand count under ``(none)``.

Members are ranked by revenue, largest first, ties by member id (so ranks, deciles
and classes are deterministic). Rankings, running sums and class or decile
membership are computed in SQL with window functions; pandas only derives shares
on the few aggregated rows. A window without purchases gives an empty frame with
the documented columns. Amounts are never summed across currencies: the queries
carry the smallest and largest currency code they met, and :func:`check_currencies`
answers ``InvalidInput`` (``resolve_currency``'s message) when purchases in the
window mix currencies and none was named, so the orders are read only once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.engine import Connection

from kizuna.analytics.base import (
    CURRENCY_BOUNDS,
    currency_bounds,
    net_lines,
    purchase_window,
    read_checked,
    rolled_up_bounds,
)
from kizuna.errors import InvalidInput, Problem
from kizuna.store.workspaces import Workspace

__all__ = [
    "ABC_COLUMNS",
    "ABC_SUMMARY_COLUMNS",
    "DECILE_COLUMNS",
    "PARETO_COLUMNS",
    "PARETO_SUMMARY_COLUMNS",
    "AbcThresholds",
    "Grain",
    "abc_classes",
    "abc_summary",
    "deciles",
    "pareto_curve",
    "pareto_summary",
]

Grain = Literal["customer", "sku", "category", "brand"]


class AbcThresholds(BaseModel):
    """Cumulative revenue shares closing classes A and B (C takes the rest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    a: float = Field(default=0.7, gt=0, lt=1)
    b: float = Field(default=0.9, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> AbcThresholds:
        if self.b <= self.a:
            raise ValueError("b must be greater than a")
        return self


def _member_revenue(window: sa.Subquery, workspace: Workspace, of: Grain) -> sa.Subquery:
    if of == "customer":
        member: sa.ColumnElement[object] = window.c.customer_id
        revenue, currencies = window.c.amount, window.c.currency
    else:
        lines = net_lines(window, workspace).subquery("lines")
        member, revenue, currencies = lines.c[of], lines.c.revenue, lines.c.currency
    query = sa.select(
        member.label("member"), sa.func.sum(revenue).label("revenue"), *currency_bounds(currencies)
    )
    return query.group_by(member).subquery("members")


def _ranked(window: sa.Subquery, workspace: Workspace, of: Grain) -> sa.Subquery:
    """Members with ``rank`` (1 = largest), ``n``, ``total``, running ``cumulative``, bounds."""
    m = _member_revenue(window, workspace, of)
    order = (m.c.revenue.desc(), m.c.member.asc())
    return sa.select(
        m.c.member,
        m.c.revenue,
        sa.func.row_number().over(order_by=order).label("rank"),
        sa.func.count().over().label("n"),
        sa.func.sum(m.c.revenue).over().label("total"),
        sa.func.sum(m.c.revenue).over(order_by=order, rows=(None, 0)).label("cumulative"),
        # Over all members, so any row (a Pareto point, a decile) shows every currency.
        sa.func.min(m.c.currency_min).over().label(CURRENCY_BOUNDS[0]),
        sa.func.max(m.c.currency_max).over().label(CURRENCY_BOUNDS[1]),
    ).subquery("ranked")


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    if frame.empty:
        return _empty(columns)
    return frame[list(columns)].fillna(0).astype(columns).reset_index(drop=True)


DECILE_COLUMNS = {
    "decile": "int64", "members": "int64", "member_share": "float64", "revenue": "float64",
    "revenue_share": "float64", "cumulative_member_share": "float64",
    "cumulative_revenue_share": "float64", "avg_revenue": "float64", "min_revenue": "float64",
    "max_revenue": "float64",
}  # fmt: skip


def deciles(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    of: Grain = "customer",
) -> pd.DataFrame:
    """Decile table: members split into ten near-equal groups by revenue, decile 1 the top.

    Columns: ``decile`` (1–10), ``members``, ``member_share``, ``revenue``,
    ``revenue_share``, ``cumulative_member_share``, ``cumulative_revenue_share``,
    ``avg_revenue``, ``min_revenue``, ``max_revenue``. Member of rank ``k`` of ``n``
    falls in decile ``1 + floor(10 (k − 1) / n)``; with fewer than ten members some
    deciles are absent.
    """
    window = purchase_window(workspace, as_of=as_of, since=since, currency=currency)
    r = _ranked(window, workspace, of)
    decile = (1 + (10 * (r.c.rank - 1)) // r.c.n).label("decile")
    query = (
        sa.select(
            decile,
            sa.func.count().label("members"),
            sa.func.sum(r.c.revenue).label("revenue"),
            sa.func.min(r.c.revenue).label("min_revenue"),
            sa.func.max(r.c.revenue).label("max_revenue"),
            *rolled_up_bounds(r),
        )
        .group_by(decile)
        .order_by(decile)
    )
    frame = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    if frame.empty:
        return _empty(DECILE_COLUMNS)
    frame["member_share"] = frame["members"] / frame["members"].sum()
    frame["revenue_share"] = frame["revenue"] / frame["revenue"].sum()
    frame["cumulative_member_share"] = frame["member_share"].cumsum()
    frame["cumulative_revenue_share"] = frame["revenue_share"].cumsum()
    frame["avg_revenue"] = frame["revenue"] / frame["members"]
    return _typed(frame, DECILE_COLUMNS)


ABC_COLUMNS = {
    "member": "str", "revenue": "float64", "rank": "int64", "revenue_share": "float64",
    "cumulative_revenue_share": "float64", "abc_class": "str",
}  # fmt: skip


def _classified(r: sa.Subquery, thresholds: AbcThresholds) -> sa.Select[tuple[object, ...]]:
    # The member whose revenue crosses a threshold still belongs to the upper class,
    # so a single member holding 80 % of revenue is A, not B.
    before = r.c.cumulative - r.c.revenue
    abc = sa.case(
        (before < thresholds.a * r.c.total, "A"),
        (before < thresholds.b * r.c.total, "B"),
        else_="C",
    )
    return sa.select(
        r.c.member,
        r.c.revenue,
        r.c.rank,
        (r.c.revenue / r.c.total).label("revenue_share"),
        (r.c.cumulative / r.c.total).label("cumulative_revenue_share"),
        abc.label("abc_class"),
        r.c.currency_min,
        r.c.currency_max,
    )


def abc_classes(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    of: Grain = "customer",
    thresholds: AbcThresholds | None = None,
) -> pd.DataFrame:
    """Each member's ABC class, largest first.

    Columns: ``member`` (customer id, sku, category or brand), ``revenue``, ``rank``,
    ``revenue_share``, ``cumulative_revenue_share`` (including the member),
    ``abc_class``. A member is A when the revenue of the members ranked above it is
    below ``a`` (70 %) of the total, B when below ``b`` (90 %), else C.
    """
    window = purchase_window(workspace, as_of=as_of, since=since, currency=currency)
    r = _ranked(window, workspace, of)
    query = _classified(r, thresholds or AbcThresholds()).order_by(r.c.rank)
    return _typed(read_checked(conn, workspace, query, as_of=as_of, currency=currency), ABC_COLUMNS)


ABC_SUMMARY_COLUMNS = {
    "abc_class": "str", "members": "int64", "member_share": "float64", "revenue": "float64",
    "revenue_share": "float64",
}  # fmt: skip


def abc_summary(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    of: Grain = "customer",
    thresholds: AbcThresholds | None = None,
) -> pd.DataFrame:
    """Members and revenue per ABC class (rows A, B, C, zero-filled).

    Columns: ``abc_class``, ``members``, ``member_share``, ``revenue``, ``revenue_share``.
    """
    window = purchase_window(workspace, as_of=as_of, since=since, currency=currency)
    c = _classified(_ranked(window, workspace, of), thresholds or AbcThresholds()).subquery()
    query = sa.select(
        c.c.abc_class,
        sa.func.count().label("members"),
        sa.func.sum(c.c.revenue).label("revenue"),
        *rolled_up_bounds(c),
    ).group_by(c.c.abc_class)
    frame = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    if frame.empty:
        return _empty(ABC_SUMMARY_COLUMNS)
    frame = frame.set_index("abc_class").reindex(["A", "B", "C"], fill_value=0)
    frame = frame.rename_axis("abc_class").reset_index()
    frame["member_share"] = frame["members"] / frame["members"].sum()
    frame["revenue_share"] = frame["revenue"] / frame["revenue"].sum()
    return _typed(frame, ABC_SUMMARY_COLUMNS)


PARETO_COLUMNS = {"member_share": "float64", "revenue_share": "float64"}


def pareto_curve(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    of: Grain = "customer",
    points: int = 100,
) -> pd.DataFrame:
    """The Pareto (cumulative revenue) curve, starting at (0, 0), about ``points`` steps.

    Columns: ``member_share`` (cumulative share of members, largest first) and
    ``revenue_share`` (their cumulative share of revenue). The database returns only
    the first member of each ``1 / points`` step and the last member, so the curve
    stays small for a million customers.
    """
    if points < 1:
        raise InvalidInput(Problem("invalid_points", "points must be at least 1", "points"))
    window = purchase_window(workspace, as_of=as_of, since=since, currency=currency)
    r = _ranked(window, workspace, of)
    step = sa.literal(points, sa.Integer)
    query = (
        sa.select(
            (sa.cast(r.c.rank, sa.Float) / r.c.n).label("member_share"),
            (r.c.cumulative / r.c.total).label("revenue_share"),
            r.c.currency_min,
            r.c.currency_max,
        )
        .where(
            sa.or_(r.c.rank == r.c.n, (step * r.c.rank) // r.c.n > (step * (r.c.rank - 1)) // r.c.n)
        )
        .order_by(r.c.rank)
    )
    frame = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    if frame.empty:
        return _empty(PARETO_COLUMNS)
    origin = pd.DataFrame({"member_share": [0.0], "revenue_share": [0.0]})
    return _typed(pd.concat([origin, frame], ignore_index=True), PARETO_COLUMNS)


PARETO_SUMMARY_COLUMNS = {
    "members": "int64", "revenue": "float64", "top_fraction": "float64", "top_members": "int64",
    "top_revenue": "float64", "top_revenue_share": "float64", "target_revenue_share": "float64",
    "members_to_target": "int64", "members_to_target_share": "float64",
}  # fmt: skip


def pareto_summary(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    of: Grain = "customer",
    top: float = 0.2,
    target: float = 0.8,
) -> pd.DataFrame:
    """One row: the revenue share of the top ``top`` of members, and how many make ``target``.

    Columns: ``members``, ``revenue``, ``top_fraction``, ``top_members`` (the first
    ``ceil(top × members)``), ``top_revenue``, ``top_revenue_share``,
    ``target_revenue_share``, ``members_to_target`` (fewest top members whose revenue
    reaches ``target`` of the total) and ``members_to_target_share``.
    """
    if not (0 < top <= 1 and 0 < target <= 1):
        raise InvalidInput(Problem("invalid_fraction", "top and target are in (0, 1]", "top"))
    window = purchase_window(workspace, as_of=as_of, since=since, currency=currency)
    r = _ranked(window, workspace, of)
    in_top = r.c.rank - 1 < top * r.c.n  # rank <= ceil(top * n), without SQL ceil()
    # The last member always reaches the target, whatever the rounding of the running sum.
    hit = sa.or_(r.c.cumulative >= target * r.c.total, r.c.rank == r.c.n)
    reached = sa.case((hit, r.c.rank))
    query = sa.select(
        sa.func.count().label("members"),
        sa.func.sum(r.c.revenue).label("revenue"),
        sa.func.sum(sa.case((in_top, 1), else_=0)).label("top_members"),
        sa.func.sum(sa.case((in_top, r.c.revenue), else_=0.0)).label("top_revenue"),
        sa.func.min(reached).label("members_to_target"),
        *rolled_up_bounds(r),
    )
    frame = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    if frame.empty:
        return _empty(PARETO_SUMMARY_COLUMNS)
    frame["top_fraction"] = top
    frame["top_revenue_share"] = frame["top_revenue"] / frame["revenue"]
    frame["target_revenue_share"] = target
    frame["members_to_target_share"] = frame["members_to_target"] / frame["members"]
    return _typed(frame, PARETO_SUMMARY_COLUMNS)
