"""Acquisition cohorts × months since first purchase: SQL agrees with pandas; edge cases."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pandas as pd
import pytest

from kizuna.analytics.charts.cohorts import plot_cohort_heatmap
from kizuna.analytics.cohorts import COHORT_COLUMNS, cohort_retention, retention_matrix
from tests.integration.test_repeat import AS_OF, demo_shop, order, place, reference_purchases


def _month_number(text: pd.Series) -> pd.Series:
    return text.str.slice(0, 4).astype(int) * 12 + text.str.slice(5, 7).astype(int)


def _reference_cells(p: pd.DataFrame) -> pd.DataFrame:
    p = p.assign(month_index=_month_number(p["month"]) - _month_number(p["cohort"]))
    cells = p.groupby(["cohort", "month_index"]).agg(
        active_customers=("customer_id", "nunique"),
        orders=("order_id", "size"),
        revenue=("amount", "sum"),
    )
    return cells.reset_index()


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def test_cohort_table_agrees_with_pandas(db):
    ws = demo_shop(db)
    p = reference_purchases(db, ws)
    with db.read() as conn:
        got = cohort_retention(conn, ws, as_of=AS_OF)
    assert list(got.columns) == list(COHORT_COLUMNS)
    expected = _reference_cells(p)
    observed = got[got["active_customers"] > 0]
    merged = observed.merge(expected, on=["cohort", "month_index"], suffixes=("", "_ref"))
    assert len(merged) == len(observed) == len(expected)
    for name in ("active_customers", "orders"):
        assert (merged[name] == merged[f"{name}_ref"]).all()
    assert merged["revenue"].to_numpy() == pytest.approx(merged["revenue_ref"].to_numpy())
    sizes = p[p["seq"] == 1].groupby("cohort").size()
    assert (got["cohort_customers"] == got["cohort"].map(sizes)).all()
    assert got["retention"].to_numpy() == pytest.approx(
        (got["active_customers"] / got["cohort_customers"]).to_numpy()
    )
    # Every cohort runs from month 0 to the month of as_of (April 2026 in Tokyo).
    spans = got.groupby("cohort")["month_index"].agg(["min", "max", "size"])
    last = 2026 * 12 + 4 - _month_number(pd.Series(spans.index, index=spans.index))
    assert (spans["min"] == 0).all() and (spans["max"] == last).all()
    assert (spans["size"] == last + 1).all()
    assert set(got.loc[~got["complete"], "month"]) == {"2026-04"}
    revenue = got.groupby("cohort")["revenue"].cumsum() / got["cohort_customers"]
    assert got["cumulative_revenue_per_customer"].to_numpy() == pytest.approx(revenue.to_numpy())
    assert not got.isna().any().any()


def test_since_and_max_months_and_heat_map(db):
    ws = demo_shop(db)
    since = datetime(2025, 6, 1, tzinfo=UTC)
    with db.read() as conn:
        got = cohort_retention(conn, ws, as_of=AS_OF, since=since, max_months=6)
    assert got["cohort"].min() >= "2025-06"
    assert got["month_index"].max() == 6
    wide = retention_matrix(got)
    assert list(wide.columns) == list(range(7))
    assert (
        wide.loc["2026-03", 1]
        == got.set_index(["cohort", "month_index"]).loc[("2026-03", 1), "retention"]
    )
    assert wide.loc["2026-03", 2] is None  # not observed yet, never NaN
    for value in ("retention", "cumulative_revenue_per_customer"):
        assert _png(plot_cohort_heatmap(got, value=value)).startswith(b"\x89PNG\r\n\x1a\n")


def test_tokyo_month_boundaries_refunds_and_cancellations(db, workspace, scope_factory):
    place(
        scope_factory,
        [
            # 31 Jan 23:59 and 1 Feb 00:00 in Tokyo: months 0 and 1 of the January cohort.
            order("A1", "edge", "2026-01-31T14:59:00Z", 1000.0),
            order("A2", "edge", "2026-01-31T15:00:00Z", 2000.0),
            # 2026-03-31 15:30 UTC is April in Tokyo.
            order("B1", "april", "2026-03-31T15:30:00Z", 500.0),
            order("C1", "gone", "2026-01-10T00:00:00Z", status="cancelled"),
            order("C2", "gone", "2026-02-10T00:00:00Z", refunded=1000.0, status="returned"),
            order("C3", "gone", "2026-03-10T00:00:00Z", 800.0, refunded=300.0),
        ],
    )
    with db.read() as conn:
        got = cohort_retention(conn, workspace, as_of=AS_OF)
    cells = got.set_index(["cohort", "month_index"])
    assert sorted(got["cohort"].unique()) == ["2026-01", "2026-03", "2026-04"]
    assert cells.loc[("2026-01", 0), "revenue"] == 1000.0
    assert cells.loc[("2026-01", 1), "revenue"] == 2000.0
    assert cells.loc[("2026-01", 1), "month"] == "2026-02"
    assert cells.loc[("2026-01", 1), "retention"] == 1.0
    assert cells.loc[("2026-01", 2), "active_customers"] == 0
    assert cells.loc[("2026-01", 3), "complete"] == False  # noqa: E712 (numpy bool)
    assert cells.loc[("2026-03", 0), "revenue"] == 500.0  # the partial refund counts net
    assert cells.loc[("2026-04", 0), "cohort_customers"] == 1
    assert cells.loc[("2026-01", 3), "cumulative_revenue_per_customer"] == 3000.0


def test_empty_window(db, workspace, scope_factory):
    with db.read() as conn:
        empty = cohort_retention(conn, workspace, as_of=AS_OF)
    assert empty.empty and list(empty.columns) == list(COHORT_COLUMNS)
    assert retention_matrix(empty).empty
    assert _png(plot_cohort_heatmap(empty)).startswith(b"\x89PNG")
    place(scope_factory, [order("Z1", "z", "2026-01-05T00:00:00Z")])
    with db.read() as conn:
        late = cohort_retention(
            conn, workspace, as_of=AS_OF, since=datetime(2026, 2, 1, tzinfo=UTC)
        )
    assert late.empty and list(late.columns) == list(COHORT_COLUMNS)
