"""Repeat conversion F(n) and days between purchases: SQL agrees with pandas; edge cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from kizuna.analytics.charts.repeat import plot_gap_histogram, plot_repeat_funnel
from kizuna.analytics.repeat import (
    CONVERSION_COLUMNS,
    GAP_BUCKETS,
    GAP_COLUMNS,
    HISTOGRAM_COLUMNS,
    gap_histogram,
    purchase_gaps,
    repeat_conversion,
    repeat_report,
)
from kizuna.demo import DemoOptions, generate_demo_data
from kizuna.domain.records import OrderRecord
from kizuna.errors import InvalidInput
from kizuna.store.commerce import upsert_orders
from kizuna.store.database import Database
from kizuna.store.frames import read_frame
from kizuna.store.identity import IdentityResolver
from kizuna.store.tables import order_items, orders
from kizuna.store.workspaces import Workspace

AS_OF = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)  # the test clock
DEMO_CUSTOMERS = 800


# --- shared with the cohort, subscription and LTV tests -------------------------------


def demo_shop(db: Database) -> Workspace:
    """A small demo shop (Asia/Tokyo) generated at the test clock."""
    options = DemoOptions(customers=DEMO_CUSTOMERS, workspace="demo", chunk_size=400)
    return generate_demo_data(db, options).workspace


def reference_purchases(db: Database, ws: Workspace, as_of: datetime = AS_OF) -> pd.DataFrame:
    """Net purchases recomputed in pandas from the raw orders, numbered per customer."""
    with db.read() as conn:
        raw = read_frame(conn, sa.select(orders).where(orders.c.workspace_id == ws.workspace_id))
    raw["amount"] = raw["total"] - raw["refunded"]
    keep = (raw["status"] != "cancelled") & (raw["ordered_at"] <= as_of) & (raw["amount"] > 0)
    p = raw[keep].sort_values(["customer_id", "ordered_at", "order_id"]).reset_index(drop=True)
    p["seq"] = p.groupby("customer_id").cumcount() + 1
    local = p["ordered_at"].dt.tz_convert(ws.time_zone).dt.tz_localize(None)
    p["day"] = local.dt.normalize()
    p["month"] = local.dt.strftime("%Y-%m")
    p["first_at"] = p.groupby("customer_id")["ordered_at"].transform("min")
    p["cohort"] = p.groupby("customer_id")["month"].transform("first")
    return p


def place(scope_factory: Any, records: list[dict[str, Any]]) -> dict[str, str]:
    """Store hand-built orders; returns the customer id of each shop customer id."""
    with scope_factory() as scope:
        built = [OrderRecord.model_validate(r) for r in records]
        owners = upsert_orders(scope, IdentityResolver(scope), built)
    return {r["customer"]["user_id"]: str(c) for r, c in zip(records, owners, strict=True)}


def order(
    order_id: str, user: str, at: str, amount: float = 1000.0, **extra: Any
) -> dict[str, Any]:
    """A one-line order record worth ``amount``."""
    item = {"sku": extra.pop("sku", "SKU-1"), "unit_price": amount}
    if "category" in extra:
        item["category"] = extra.pop("category")
    return {
        "order_id": order_id,
        "customer": {"user_id": user},
        "ordered_at": at,
        "items": extra.pop("items", [item]),
        **extra,
    }


# --- demo shop: SQL vs pandas ---------------------------------------------------------


def _first_category(db: Database, ws: Workspace, p: pd.DataFrame) -> pd.Series:
    with db.read() as conn:
        items = read_frame(
            conn, sa.select(order_items).where(order_items.c.workspace_id == ws.workspace_id)
        )
    firsts = p[p["seq"] == 1][["customer_id", "order_id"]]
    lines = items.merge(firsts[["order_id"]], on="order_id")
    lines["value"] = lines["unit_price"] * lines["quantity"] - lines["discount"]
    lines = lines.sort_values(["order_id", "value", "line_no"], ascending=[True, False, True])
    top = lines.drop_duplicates("order_id").set_index("order_id")["category"]
    category = firsts.set_index("customer_id")["order_id"].map(top)
    return category.fillna("(none)")


def _segments(db: Database, ws: Workspace, p: pd.DataFrame, by: str | None) -> pd.Series:
    firsts = p[p["seq"] == 1].set_index("customer_id")
    if by is None:
        return pd.Series("all", index=firsts.index)
    if by == "acquisition_month":
        return firsts["month"]
    if by == "first_channel":
        return firsts["channel"]
    return _first_category(db, ws, p)


@pytest.mark.parametrize("by", [None, "acquisition_month", "first_category", "first_channel"])
def test_conversion_agrees_with_pandas(db, by):
    ws = demo_shop(db)
    p = reference_purchases(db, ws)
    counts = p.groupby("customer_id").size()
    segment = _segments(db, ws, p, by)
    with db.read() as conn:
        got = repeat_conversion(conn, ws, as_of=AS_OF, by=by, max_n=6)
    assert list(got.columns) == list(CONVERSION_COLUMNS)
    assert set(got["segment"]) == set(segment)
    for name, members in segment.groupby(segment):
        rows = got[got["segment"] == name].set_index("purchase")
        reached = [int((counts[members.index] >= k).sum()) for k in range(1, 7)]
        assert rows["customers"].tolist() == reached
        assert rows.loc[1, "rate"] is None
        for k in range(2, 7):
            expected = reached[k - 1] / reached[k - 2] if reached[k - 2] else None
            assert rows.loc[k, "rate"] == pytest.approx(expected)
            assert rows.loc[k, "step"] == f"F{k}"
    assert got["share"].notna().all()
    assert all(r is None or r == r for r in got["rate"])  # None, never NaN


def _reference_gaps(p: pd.DataFrame) -> pd.DataFrame:
    p = p.copy()
    p["prev_day"] = p.groupby("customer_id")["day"].shift(1)
    gaps = p[p["seq"] >= 2].copy()
    gaps["days"] = (gaps["day"] - gaps["prev_day"]).dt.days
    gaps["n"] = gaps["seq"] - 1
    return gaps


def test_gap_statistics_agree_with_pandas(db):
    ws = demo_shop(db)
    p = reference_purchases(db, ws)
    gaps = _reference_gaps(p)
    gaps = gaps[gaps["n"] <= 4]
    with db.read() as conn:
        got = purchase_gaps(conn, ws, as_of=AS_OF, max_n=5)
    assert list(got.columns) == list(GAP_COLUMNS)
    assert got["n"].tolist() == sorted(gaps["n"].unique().tolist())
    for row in got.itertuples():
        days = gaps.loc[gaps["n"] == row.n, "days"]
        assert row.customers == len(days)
        assert row.step == f"F{row.n + 1}"
        assert row.mean == pytest.approx(days.mean())
        assert (row.min, row.max) == (days.min(), days.max())
        quartiles = days.quantile([0.25, 0.5, 0.75]).tolist()
        assert [row.q1, row.median, row.q3] == pytest.approx(quartiles)


def test_gap_statistics_by_channel_and_histogram_agree_with_pandas(db):
    ws = demo_shop(db)
    p = reference_purchases(db, ws)
    gaps = _reference_gaps(p)
    gaps["segment"] = gaps["customer_id"].map(_segments(db, ws, p, "first_channel"))
    with db.read() as conn:
        stats = purchase_gaps(conn, ws, as_of=AS_OF, by="first_channel", max_n=3)
        hist = gap_histogram(conn, ws, as_of=AS_OF, by="first_channel", max_n=3)
    gaps = gaps[gaps["n"] <= 2]
    medians = gaps.groupby(["segment", "n"])["days"].median()
    assert stats.set_index(["segment", "n"])["median"].to_dict() == pytest.approx(medians.to_dict())
    assert list(hist.columns) == list(HISTOGRAM_COLUMNS)
    edges = [-1] + [high for _, _, high in GAP_BUCKETS if high is not None] + [np.inf]
    labels = [label for label, _, _ in GAP_BUCKETS]
    gaps["bucket"] = pd.cut(gaps["days"], edges, labels=labels).astype(str)
    expected = gaps.groupby(["segment", "n", "bucket"]).size()
    got = hist.set_index(["segment", "n", "bucket"])["customers"]
    assert got[got > 0].to_dict() == expected.to_dict()
    assert len(hist) == len(expected.reset_index()[["segment", "n"]].drop_duplicates()) * 8
    shares = hist.groupby(["segment", "n"])["share"].sum()
    assert shares.to_numpy() == pytest.approx(1.0)
    assert hist.loc[hist["bucket"] == ">365", "upper_days"].tolist() == [None] * (len(hist) // 8)


def test_min_days_keeps_only_customers_old_enough(db):
    ws = demo_shop(db)
    p = reference_purchases(db, ws)
    firsts = p[p["seq"] == 1]
    old = firsts[firsts["first_at"] <= AS_OF - timedelta(days=180)]["customer_id"]
    counts = p[p["customer_id"].isin(old)].groupby("customer_id").size()
    since = datetime(2024, 1, 1, tzinfo=UTC)
    with db.read() as conn:
        censored = repeat_conversion(conn, ws, as_of=AS_OF, min_days=180)
        recent = repeat_conversion(conn, ws, as_of=AS_OF, since=since)
    assert censored["customers"].tolist()[:3] == [int((counts >= k).sum()) for k in (1, 2, 3)]
    acquired = firsts[firsts["first_at"] >= since]["customer_id"]
    all_counts = p.groupby("customer_id").size()[acquired]
    assert recent["customers"].iloc[1] == int((all_counts >= 2).sum())


def test_report_bundles_the_three_tables_and_plots_render(db):
    ws = demo_shop(db)
    with db.read() as conn:
        report = repeat_report(conn, ws, as_of=AS_OF, max_n=5)
        by_month = repeat_conversion(conn, ws, as_of=AS_OF, by="acquisition_month")
    assert report.conversion["customers"].iloc[0] == report.conversion["customers"].max()
    for figure in (
        plot_repeat_funnel(report.conversion),
        plot_repeat_funnel(by_month, segment=by_month["segment"].iloc[0]),
        plot_gap_histogram(report.histogram, n=1),
    ):
        import io

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        assert buffer.getvalue().startswith(b"\x89PNG\r\n\x1a\n")


# --- hand-built edge cases ------------------------------------------------------------


def test_one_order_customer_month_boundary_refunds_and_cancellations(db, workspace, scope_factory):
    ids = place(
        scope_factory,
        [
            order("A1", "solo", "2026-01-10T03:00:00Z"),
            # 2026-03-31 15:30 UTC is 1 April 00:30 in Tokyo: an April customer.
            order("B1", "tokyo", "2026-03-31T15:30:00Z", channel="store"),
            order("B2", "tokyo", "2026-03-31T23:00:00Z"),
            order("C0", "refund", "2026-02-01T00:00:00Z", refunded=1000.0, status="returned"),
            order("C1", "refund", "2026-02-03T00:00:00Z", refunded=400.0),
            order("C2", "refund", "2026-02-05T00:00:00Z", status="cancelled"),
            order("C3", "refund", "2026-02-20T00:00:00Z"),
            order("D1", "future", "2026-05-01T00:00:00Z"),
        ],
    )
    del ids
    with db.read() as conn:
        conv = repeat_conversion(conn, workspace, as_of=AS_OF, by="acquisition_month")
        gaps = purchase_gaps(conn, workspace, as_of=AS_OF, by="acquisition_month")
        channel = repeat_conversion(conn, workspace, as_of=AS_OF, by="first_channel")
    table = conv.set_index(["segment", "purchase"])["customers"]
    # solo: one purchase; refund: C0 fully refunded, C2 cancelled -> C1 and C3 count.
    assert table[("2026-01", 1)] == 1 and table[("2026-01", 2)] == 0
    assert conv.set_index(["segment", "purchase"]).loc[("2026-01", 2), "rate"] == 0.0
    assert table[("2026-02", 1)] == 1 and table[("2026-02", 2)] == 1
    assert table[("2026-04", 1)] == 1 and table[("2026-04", 2)] == 1
    assert "2026-03" not in set(conv["segment"]) and "2026-05" not in set(conv["segment"])
    days = gaps.set_index("segment")["median"]
    assert days["2026-02"] == 17.0  # 3 Feb → 20 Feb (the cancelled 5 Feb order is skipped)
    assert days["2026-04"] == 0.0  # both on 1 April in Tokyo
    assert set(channel["segment"]) == {"online", "store"}


def test_first_category_is_the_first_orders_highest_value_line(db, workspace, scope_factory):
    lines = [
        {"sku": "S-1", "unit_price": 500.0, "category": "food"},
        {"sku": "S-2", "unit_price": 900.0, "quantity": 2, "discount": 100.0, "category": "skin"},
        {"sku": "S-3", "unit_price": 1500.0, "category": "hair"},
    ]
    place(
        scope_factory,
        [
            order("E1", "mix", "2026-01-05T00:00:00Z", items=lines),
            order("E2", "mix", "2026-02-05T00:00:00Z", items=[{"sku": "S-9", "unit_price": 9e4}]),
            order("F1", "bare", "2026-01-05T00:00:00Z", items=[{"sku": "S-8", "unit_price": 10}]),
        ],
    )
    with db.read() as conn:
        got = repeat_conversion(conn, workspace, as_of=AS_OF, by="first_category", max_n=2)
    table = got.set_index(["segment", "purchase"])["customers"].to_dict()
    assert table == {("skin", 1): 1, ("skin", 2): 1, ("(none)", 1): 1, ("(none)", 2): 0}


def test_empty_window_and_bad_input(db, workspace, scope_factory):
    with db.read() as conn:
        for fn, columns in (
            (repeat_conversion, CONVERSION_COLUMNS),
            (purchase_gaps, GAP_COLUMNS),
            (gap_histogram, HISTOGRAM_COLUMNS),
        ):
            empty = fn(conn, workspace, as_of=AS_OF)
            assert empty.empty and list(empty.columns) == list(columns)
    place(
        scope_factory,
        [
            order("G1", "yen", "2026-01-05T00:00:00Z"),
            order("G2", "usd", "2026-01-06T00:00:00Z", currency="USD"),
            order("G3", "usd", "2026-01-16T00:00:00Z", currency="USD"),
        ],
    )
    late = datetime(2026, 3, 1, tzinfo=UTC)
    with db.read() as conn:
        with pytest.raises(InvalidInput, match="several currencies"):
            repeat_conversion(conn, workspace, as_of=AS_OF)
        usd = repeat_conversion(conn, workspace, as_of=AS_OF, currency="usd")
        assert usd["customers"].tolist()[:2] == [1, 1]
        nobody = purchase_gaps(conn, workspace, as_of=AS_OF, since=late, currency="JPY")
        assert nobody.empty and list(nobody.columns) == list(GAP_COLUMNS)
        with pytest.raises(InvalidInput):
            repeat_conversion(conn, workspace, as_of=AS_OF, max_n=1, currency="JPY")
        with pytest.raises(InvalidInput):
            repeat_conversion(conn, workspace, as_of=AS_OF, since=AS_OF + timedelta(1))
        with pytest.raises(InvalidInput):
            repeat_conversion(conn, workspace, as_of=datetime(2026, 4, 1))
