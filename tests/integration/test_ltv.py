"""Historical LTV: revenue and gross profit windows per customer and by cohort."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from kizuna.analytics.ltv import (
    CUSTOMER_LTV_COLUMNS,
    LTV_SUMMARY_COLUMNS,
    customer_ltv,
    ltv_summary,
)
from kizuna.domain.records import ProductRecord
from kizuna.errors import InvalidInput
from kizuna.store.commerce import upsert_products
from kizuna.store.frames import read_frame
from kizuna.store.tables import order_items, products
from tests.integration.test_repeat import AS_OF, demo_shop, order, place, reference_purchases

YEAR, THREE_YEARS = pd.Timedelta(days=365), pd.Timedelta(days=3 * 365)


def _reference(db, ws) -> pd.DataFrame:
    """Per-customer LTV recomputed in pandas from raw orders, lines and products."""
    p = reference_purchases(db, ws)
    with db.read() as conn:
        items = read_frame(
            conn, sa.select(order_items).where(order_items.c.workspace_id == ws.workspace_id)
        )
        costs = read_frame(
            conn,
            sa.select(products.c.sku, products.c.cost).where(
                products.c.workspace_id == ws.workspace_id
            ),
        )
    age = p["ordered_at"] - p["first_at"]
    by = p["customer_id"]
    frame = pd.DataFrame(
        {
            "cohort": p.groupby(by)["cohort"].first(),
            "orders": p.groupby(by).size(),
            "revenue_365d": p["amount"].where(age < YEAR, 0).groupby(by).sum(),
            "revenue_3y": p["amount"].where(age < THREE_YEARS, 0).groupby(by).sum(),
            "revenue_lifetime": p["amount"].groupby(by).sum(),
            "first_at": p.groupby(by)["first_at"].first(),
        }
    )
    lines = items.drop(columns="customer_id").merge(
        p[["order_id", "customer_id", "ordered_at", "first_at"]], on="order_id"
    )
    lines = lines.merge(costs, on="sku", how="left")
    kept = lines["quantity"] - lines["returned_quantity"]
    per_unit = kept / lines["quantity"]
    revenue = (lines["quantity"] * lines["unit_price"] - lines["discount"]) * per_unit
    profit = (lines["unit_price"] - lines["cost"]) * kept - lines["discount"] * per_unit
    line_age = lines["ordered_at"] - lines["first_at"]
    who = lines["customer_id"]
    frame["profit_365d"] = profit.where(line_age < YEAR).groupby(who).sum(min_count=1)
    frame["profit_3y"] = profit.where(line_age < THREE_YEARS).groupby(who).sum(min_count=1)
    frame["profit_lifetime"] = profit.groupby(who).sum(min_count=1)
    frame["known"] = revenue.where(lines["cost"].notna(), 0).groupby(who).sum()
    frame["line_revenue"] = revenue.groupby(who).sum()
    frame["cost_coverage"] = frame["known"] / frame["line_revenue"]
    frame["complete_365d"] = AS_OF - frame["first_at"] >= YEAR
    frame["complete_3y"] = AS_OF - frame["first_at"] >= THREE_YEARS
    return frame


def _none_as_nan(column: pd.Series) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in column], dtype=float)


def _forget_some_costs(db, ws) -> None:
    with db.write() as conn:
        skus = conn.execute(
            sa.select(products.c.sku)
            .where(products.c.workspace_id == ws.workspace_id)
            .order_by(products.c.sku)
            .limit(12)
        ).scalars()
        conn.execute(
            products.update()
            .where(products.c.workspace_id == ws.workspace_id, products.c.sku.in_(list(skus)))
            .values(cost=None)
        )


def test_customer_ltv_agrees_with_pandas(db):
    ws = demo_shop(db)
    _forget_some_costs(db, ws)
    expected = _reference(db, ws)
    with db.read() as conn:
        got = customer_ltv(conn, ws, as_of=AS_OF)
    assert list(got.columns) == list(CUSTOMER_LTV_COLUMNS)
    got = got.set_index("customer_id")
    assert sorted(got.index) == sorted(expected.index)
    expected = expected.loc[got.index]
    for name in ("revenue_365d", "revenue_3y", "revenue_lifetime"):
        assert got[name].to_numpy() == pytest.approx(expected[name].to_numpy()), name
    for name in ("profit_365d", "profit_3y", "profit_lifetime", "cost_coverage"):
        assert _none_as_nan(got[name]) == pytest.approx(expected[name].to_numpy(), nan_ok=True)
    assert (got["orders"] == expected["orders"]).all()
    assert (got["cohort"] == expected["cohort"]).all()
    assert (got["complete_365d"] == expected["complete_365d"]).all()
    assert (got["complete_3y"] == expected["complete_3y"]).all()
    coverage = _none_as_nan(got["cost_coverage"])
    assert ((coverage > 0) & (coverage < 1)).any()  # some lines lost their cost
    assert not any(isinstance(v, float) and v != v for v in got.to_numpy().ravel())


def test_ltv_summary_agrees_with_pandas(db):
    ws = demo_shop(db)
    _forget_some_costs(db, ws)
    per = _reference(db, ws)
    with db.read() as conn:
        got = ltv_summary(conn, ws, as_of=AS_OF)
    assert list(got.columns) == list(LTV_SUMMARY_COLUMNS)
    assert got["cohort"].tolist() == [*sorted(per["cohort"].unique()), "all"]
    everyone = per.assign(cohort="all")
    for cohort, rows in pd.concat([per, everyone]).groupby("cohort"):
        row = got.set_index("cohort").loc[cohort]
        done = rows[rows["complete_365d"]]
        assert row["customers"] == len(rows)
        assert row["customers_365d"] == len(done)
        assert row["customers_3y"] == int(rows["complete_3y"].sum())
        for stat in ("mean", "median"):
            want = getattr(done["revenue_365d"], stat)() if len(done) else None
            assert row[f"revenue_365d_{stat}"] == pytest.approx(want)
            want = getattr(rows["revenue_lifetime"], stat)()
            assert row[f"revenue_lifetime_{stat}"] == pytest.approx(want)
            profits = rows["profit_lifetime"].dropna()
            want = getattr(profits, stat)() if len(profits) else None
            assert row[f"profit_lifetime_{stat}"] == pytest.approx(want)
        assert row["revenue_3y_mean"] is None  # the demo shop is three years old at most
        coverage = rows["known"].sum() / rows["line_revenue"].sum()
        assert row["cost_coverage"] == pytest.approx(coverage)


def test_windows_returns_missing_costs_and_censoring(db, workspace, scope_factory):
    with scope_factory() as scope:
        upsert_products(
            scope,
            [
                ProductRecord(sku="COST", name="原価あり", cost=300.0),
                ProductRecord(sku="NOCOST", name="原価なし"),
            ],
        )
    first = datetime(2025, 1, 10, tzinfo=UTC)
    returned = {"sku": "COST", "unit_price": 1000.0, "quantity": 2, "discount": 200.0}
    place(
        scope_factory,
        [
            order("A1", "a", first.isoformat(), sku="COST"),
            # 364 days later: in the first year; kept 1 of 2 units, refund of 900.
            order("A2", "a", (first + timedelta(days=364)).isoformat(), refunded=900.0,
                  items=[{**returned, "returned_quantity": 1}]),
            order("A3", "a", (first + timedelta(days=366)).isoformat(), 500.0, sku="NOCOST"),
            order("A4", "a", "2025-03-01T00:00:00Z", status="cancelled", sku="COST"),
            order("A5", "a", "2025-04-01T00:00:00Z", refunded=1000.0, status="returned"),
            order("B1", "b", "2026-03-01T00:00:00Z", 2000.0, sku="NOCOST"),
        ],
    )  # fmt: skip
    with db.read() as conn:
        per = customer_ltv(conn, workspace, as_of=AS_OF).set_index("cohort")
        summary = ltv_summary(conn, workspace, as_of=AS_OF).set_index("cohort")
    a, b = per.loc["2025-01"], per.loc["2026-03"]
    assert a["orders"] == 3
    assert a["revenue_365d"] == pytest.approx(1000 + 900)
    assert a["revenue_3y"] == a["revenue_lifetime"] == pytest.approx(1000 + 900 + 500)
    # (1000 − 300) × 1 and (1000 − 300) × 1 − 200 × ½; the no-cost line adds nothing.
    assert a["profit_365d"] == pytest.approx(700 + 600)
    assert a["profit_lifetime"] == pytest.approx(1300)
    assert a["cost_coverage"] == pytest.approx((1000 + 900) / (1000 + 900 + 500))
    assert (bool(a["complete_365d"]), bool(a["complete_3y"])) == (True, False)
    assert b["profit_365d"] is None and b["profit_lifetime"] is None
    assert b["cost_coverage"] == 0.0 and not b["complete_365d"]
    everyone = summary.loc["all"]
    assert (everyone["customers"], everyone["customers_365d"]) == (2, 1)
    assert everyone["revenue_365d_mean"] == pytest.approx(1900)  # b's first year is not over
    assert everyone["revenue_lifetime_mean"] == pytest.approx((2400 + 2000) / 2)
    assert everyone["profit_lifetime_mean"] == pytest.approx(1300)  # b has no known profit
    assert summary.loc["2026-03", "revenue_365d_median"] is None
    assert summary.loc["2026-03", "profit_lifetime_mean"] is None


def test_empty_window_and_bad_input(db, workspace, scope_factory):
    with db.read() as conn:
        for fn, columns in (
            (customer_ltv, CUSTOMER_LTV_COLUMNS),
            (ltv_summary, LTV_SUMMARY_COLUMNS),
        ):
            empty = fn(conn, workspace, as_of=AS_OF)
            assert empty.empty and list(empty.columns) == list(columns)
    place(scope_factory, [order("Z1", "z", "2026-01-05T00:00:00Z")])
    with db.read() as conn:
        late = ltv_summary(conn, workspace, as_of=AS_OF, since=datetime(2026, 2, 1, tzinfo=UTC))
        assert late.empty and list(late.columns) == list(LTV_SUMMARY_COLUMNS)
        with pytest.raises(InvalidInput):
            customer_ltv(conn, workspace, as_of=AS_OF, currency="USD")
