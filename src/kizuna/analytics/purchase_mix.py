"""PB (price behaviour: full price vs sale) and CTB (category, taste, brand) mixes.

Both read the window's net line items (``distribution.net_lines``: lines of net
purchases, revenue net of returned units, positive lines only) and aggregate in
SQL; pandas only derives shares on aggregated rows. A window without purchases
gives an empty frame with the documented columns; amounts are never summed across
currencies (``InvalidInput``, see ``distribution.check_currencies``).

*Taste* is a product attribute (``products.attributes[taste_key]``, default
``"taste"``), looked up by SKU; lines whose product has none count under ``(none)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.engine import Connection

from kizuna.analytics.base import (
    NO_VALUE,
    currency_bounds,
    net_lines,
    purchase_window,
    read_checked,
    rolled_up_bounds,
)
from kizuna.errors import InvalidInput, Problem
from kizuna.store.tables import products
from kizuna.store.workspaces import Workspace

__all__ = [
    "BAND_COLUMNS",
    "CTB_MAIN_COLUMNS",
    "CTB_MIX_COLUMNS",
    "PB_CLASSES",
    "PB_COLUMNS",
    "PB_SUMMARY_COLUMNS",
    "CtbAxis",
    "PbThresholds",
    "ctb_main",
    "ctb_mix",
    "pb_customers",
    "price_behaviour",
    "price_behaviour_summary",
    "sale_share_distribution",
]

CtbAxis = Literal["category", "brand", "taste"]
# PB class key -> (Japanese, English) label, in display order.
PB_CLASSES: dict[str, tuple[str, str]] = {
    "full_price": ("プロパー購入者", "Full-price buyer"),
    "mixed": ("併用購入者", "Mixed buyer"),
    "sale": ("セール購入者", "Sale buyer"),
}


class PbThresholds(BaseModel):
    """PB classes by the sale share of a customer's line revenue.

    ``full_price`` when the share is at most ``full_price_max``, ``sale`` when at
    least ``sale_min``, ``mixed`` in between.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    full_price_max: float = Field(default=0.2, ge=0, lt=1)
    sale_min: float = Field(default=0.8, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> PbThresholds:
        if self.sale_min <= self.full_price_max:
            raise ValueError("sale_min must be greater than full_price_max")
        return self


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    if frame.empty:
        return _empty(columns)
    return frame[list(columns)].astype(columns).reset_index(drop=True)


def pb_customers(
    window: sa.Subquery, workspace: Workspace, thresholds: PbThresholds
) -> sa.Subquery:
    """Per customer of ``window``: units and revenue at full price and on sale, and the PB class."""
    lines = net_lines(window, workspace).subquery("lines")
    sale = lines.c.is_sale
    per = (
        sa.select(
            lines.c.customer_id,
            sa.func.sum(lines.c.units).label("units"),
            sa.func.sum(sa.case((sale, lines.c.units), else_=0)).label("sale_units"),
            sa.func.sum(lines.c.revenue).label("amount"),
            sa.func.sum(sa.case((sale, lines.c.revenue), else_=0.0)).label("sale_amount"),
            *currency_bounds(lines.c.currency),
        )
        .group_by(lines.c.customer_id)
        .subquery("per_customer")
    )
    # amount and units are positive: net_lines keeps positive lines only.
    share = per.c.sale_amount / per.c.amount
    pb_class = sa.case(
        (share <= thresholds.full_price_max, "full_price"),
        (share >= thresholds.sale_min, "sale"),
        else_="mixed",
    )
    return sa.select(
        per,
        (per.c.units - per.c.sale_units).label("full_price_units"),
        (sa.cast(per.c.sale_units, sa.Float) / per.c.units).label("sale_unit_share"),
        (per.c.amount - per.c.sale_amount).label("full_price_amount"),
        share.label("sale_amount_share"),
        pb_class.label("pb_class"),
    ).subquery("pb")


def _pb_labels(frame: pd.DataFrame) -> pd.DataFrame:
    frame["pb_class_ja"] = frame["pb_class"].map({k: v[0] for k, v in PB_CLASSES.items()})
    frame["pb_class_en"] = frame["pb_class"].map({k: v[1] for k, v in PB_CLASSES.items()})
    return frame


PB_COLUMNS = {
    "customer_id": "str", "units": "int64", "sale_units": "int64", "full_price_units": "int64",
    "sale_unit_share": "float64", "amount": "float64", "sale_amount": "float64",
    "full_price_amount": "float64", "sale_amount_share": "float64", "pb_class": "str",
    "pb_class_ja": "str", "pb_class_en": "str",
}  # fmt: skip


def price_behaviour(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    thresholds: PbThresholds | None = None,
) -> pd.DataFrame:
    """PB per customer: units and line revenue bought on sale vs at full price.

    Columns: ``customer_id``, ``units``, ``sale_units``, ``full_price_units``,
    ``sale_unit_share``, ``amount`` (net line revenue), ``sale_amount``,
    ``full_price_amount``, ``sale_amount_share``, ``pb_class`` (full_price, mixed,
    sale; see ``PbThresholds``), ``pb_class_ja``, ``pb_class_en``. A line is a sale
    line when ``order_items.is_sale`` is set. Rows are in no particular order.
    """
    window = purchase_window(workspace, as_of=as_of, since=since, currency=currency)
    pb = pb_customers(window, workspace, thresholds or PbThresholds())
    frame = read_checked(conn, workspace, sa.select(pb), as_of=as_of, currency=currency)
    if frame.empty:
        return _empty(PB_COLUMNS)
    return _typed(_pb_labels(frame), PB_COLUMNS)


PB_SUMMARY_COLUMNS = {
    "pb_class": "str", "pb_class_ja": "str", "pb_class_en": "str", "customers": "int64",
    "customer_share": "float64", "amount": "float64", "amount_share": "float64",
    "sale_amount": "float64", "sale_amount_share": "float64",
}  # fmt: skip


def price_behaviour_summary(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    thresholds: PbThresholds | None = None,
) -> pd.DataFrame:
    """Customers and revenue per PB class (rows full_price, mixed, sale; zero-filled).

    Columns: ``pb_class``, ``pb_class_ja``, ``pb_class_en``, ``customers``,
    ``customer_share``, ``amount``, ``amount_share``, ``sale_amount``,
    ``sale_amount_share`` (of the class's amount; 0 for an empty class).
    """
    window = purchase_window(workspace, as_of=as_of, since=since, currency=currency)
    pb = pb_customers(window, workspace, thresholds or PbThresholds())
    query = sa.select(
        pb.c.pb_class,
        sa.func.count().label("customers"),
        sa.func.sum(pb.c.amount).label("amount"),
        sa.func.sum(pb.c.sale_amount).label("sale_amount"),
        *rolled_up_bounds(pb),
    ).group_by(pb.c.pb_class)
    found = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    if found.empty:
        return _empty(PB_SUMMARY_COLUMNS)
    frame = found.set_index("pb_class").reindex(list(PB_CLASSES), fill_value=0)
    frame = _pb_labels(frame.rename_axis("pb_class").reset_index())
    frame["customer_share"] = frame["customers"] / frame["customers"].sum()
    frame["amount_share"] = frame["amount"] / frame["amount"].sum()
    frame["sale_amount_share"] = (
        frame["sale_amount"] / frame["amount"].where(frame["amount"] > 0)
    ).fillna(0.0)
    return _typed(frame, PB_SUMMARY_COLUMNS)


BAND_COLUMNS = {
    "band": "int64", "lower": "float64", "upper": "float64", "label": "str", "customers": "int64",
    "customer_share": "float64", "amount": "float64", "amount_share": "float64",
}  # fmt: skip


def sale_share_distribution(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    bins: int = 5,
) -> pd.DataFrame:
    """How customers spread over equal bands of sale share of their line revenue (zero-filled).

    Columns: ``band`` (0 … bins − 1), ``lower``, ``upper``, ``label`` (e.g. ``"20–40%"``),
    ``customers``, ``customer_share``, ``amount``, ``amount_share``. Band ``k``
    holds shares in ``[k / bins, (k + 1) / bins)``; the last band includes 100 %.
    """
    if not 1 <= bins <= 100:
        raise InvalidInput(Problem("invalid_bins", "bins must be between 1 and 100", "bins"))
    window = purchase_window(workspace, as_of=as_of, since=since, currency=currency)
    pb = pb_customers(window, workspace, PbThresholds())
    scaled = pb.c.sale_amount_share * bins
    # share * bins is non-negative: CAST truncates to the floor (PostgreSQL's CAST rounds).
    whole = sa.cast(scaled if conn.dialect.name == "sqlite" else sa.func.floor(scaled), sa.Integer)
    band = sa.case((pb.c.sale_amount_share >= 1, bins - 1), else_=whole).label("band")
    query = sa.select(
        band,
        sa.func.count().label("customers"),
        sa.func.sum(pb.c.amount).label("amount"),
        *rolled_up_bounds(pb),
    ).group_by(band)
    found = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    if found.empty:
        return _empty(BAND_COLUMNS)
    frame = found.set_index("band").reindex(range(bins), fill_value=0).rename_axis("band")
    frame = frame.reset_index()
    frame["lower"] = frame["band"] / bins
    frame["upper"] = (frame["band"] + 1) / bins
    frame["label"] = [
        f"{round(lo * 100)}–{round(hi * 100)}%"
        for lo, hi in zip(frame["lower"], frame["upper"], strict=True)
    ]
    frame["customer_share"] = frame["customers"] / frame["customers"].sum()
    frame["amount_share"] = frame["amount"] / frame["amount"].sum()
    return _typed(frame, BAND_COLUMNS)


def _axis_lines(
    window: sa.Subquery, workspace: Workspace, by: CtbAxis, taste_key: str
) -> sa.Subquery:
    lines = net_lines(window, workspace)
    if by != "taste":
        return lines.add_columns(lines.selected_columns[by].label("value")).subquery("lines")
    taste = sa.cast(products.c.attributes[taste_key].as_string(), sa.String)
    joined = sa.and_(
        products.c.workspace_id == workspace.workspace_id,
        products.c.sku == lines.selected_columns.sku,
    )
    valued = lines.add_columns(sa.func.coalesce(taste, NO_VALUE).label("value"))
    return valued.outerjoin(products, joined).subquery("lines")


def _per_customer_value(
    window: sa.Subquery, workspace: Workspace, by: CtbAxis, taste_key: str
) -> sa.Subquery:
    """Revenue per customer and value, with the customer's rank of it (1 = main value)."""
    if not taste_key or len(taste_key) > 64:
        raise InvalidInput(Problem("invalid_taste_key", "give an attribute name", "taste_key"))
    lines = _axis_lines(window, workspace, by, taste_key)
    per = (
        sa.select(
            lines.c.customer_id,
            lines.c.value,
            sa.func.sum(lines.c.revenue).label("revenue"),
            sa.func.sum(lines.c.units).label("units"),
            *currency_bounds(lines.c.currency),
        )
        .group_by(lines.c.customer_id, lines.c.value)
        .subquery("per_value")
    )
    mine = per.c.customer_id
    return sa.select(
        per,
        sa.func.row_number()
        .over(partition_by=mine, order_by=(per.c.revenue.desc(), per.c.value.asc()))
        .label("position"),
        sa.func.sum(per.c.revenue).over(partition_by=mine).label("customer_revenue"),
        sa.func.count().over(partition_by=mine).label("distinct_values"),
    ).subquery("ranked_values")


CTB_MIX_COLUMNS = {
    "value": "str", "customers": "int64", "customer_share": "float64", "revenue": "float64",
    "revenue_share": "float64", "units": "int64", "main_customers": "int64",
    "main_customer_share": "float64",
}  # fmt: skip


def ctb_mix(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    by: CtbAxis = "category",
    taste_key: str = "taste",
) -> pd.DataFrame:
    """CTB: customers, revenue and units per category, brand or taste, by revenue descending.

    Columns: ``value``, ``customers`` (who bought it), ``customer_share`` (of all
    buyers in the window), ``revenue``, ``revenue_share``, ``units``,
    ``main_customers`` (customers whose main value it is: see :func:`ctb_main`),
    ``main_customer_share``.
    """
    window = purchase_window(workspace, as_of=as_of, since=since, currency=currency)
    ranked = _per_customer_value(window, workspace, by, taste_key)
    query = sa.select(
        ranked.c.value,
        sa.func.count().label("customers"),
        sa.func.sum(ranked.c.revenue).label("revenue"),
        sa.func.sum(ranked.c.units).label("units"),
        sa.func.sum(sa.case((ranked.c.position == 1, 1), else_=0)).label("main_customers"),
        *rolled_up_bounds(ranked),
    ).group_by(ranked.c.value)
    frame = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    if frame.empty:
        return _empty(CTB_MIX_COLUMNS)
    buyers = frame["main_customers"].sum()  # every buyer has exactly one main value
    frame["customer_share"] = frame["customers"] / buyers
    frame["main_customer_share"] = frame["main_customers"] / buyers
    frame["revenue_share"] = frame["revenue"] / frame["revenue"].sum()
    frame = frame.sort_values(["revenue", "value"], ascending=[False, True])
    return _typed(frame, CTB_MIX_COLUMNS)


CTB_MAIN_COLUMNS = {
    "customer_id": "str", "main_value": "str", "main_revenue": "float64", "main_share": "float64",
    "revenue": "float64", "distinct_values": "int64",
}  # fmt: skip


def ctb_main(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    by: CtbAxis = "category",
    taste_key: str = "taste",
) -> pd.DataFrame:
    """Each buyer's main category, brand or taste: the one with most line revenue.

    Columns: ``customer_id``, ``main_value`` (ties go to the alphabetically first),
    ``main_revenue``, ``main_share`` (of the customer's line revenue), ``revenue``
    (the customer's line revenue), ``distinct_values``. Rows are in
    no particular order.
    """
    window = purchase_window(workspace, as_of=as_of, since=since, currency=currency)
    r = _per_customer_value(window, workspace, by, taste_key)
    query = sa.select(
        r.c.customer_id,
        r.c.value.label("main_value"),
        r.c.revenue.label("main_revenue"),
        (r.c.revenue / r.c.customer_revenue).label("main_share"),
        r.c.customer_revenue.label("revenue"),
        r.c.distinct_values,
        r.c.currency_min,
        r.c.currency_max,
    ).where(r.c.position == 1)
    frame = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    return _typed(frame, CTB_MAIN_COLUMNS)
