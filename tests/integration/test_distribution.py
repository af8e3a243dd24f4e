"""Decile, ABC and Pareto over customers and products: SQL agrees with pandas; edge cases."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kizuna.analytics.charts.distribution import plot_deciles, plot_pareto
from kizuna.analytics.distribution import (
    ABC_COLUMNS,
    ABC_SUMMARY_COLUMNS,
    DECILE_COLUMNS,
    PARETO_COLUMNS,
    PARETO_SUMMARY_COLUMNS,
    AbcThresholds,
    abc_classes,
    abc_summary,
    deciles,
    pareto_curve,
    pareto_summary,
)
from kizuna.errors import InvalidInput
from tests.integration.test_rfm import (
    AS_OF,
    PNG,
    add_orders,
    assert_clean,
    cid,
    demo_shop,
    line,
    reference_lines,
    reference_purchases,
)

GRAINS = ["customer", "sku", "category", "brand"]


def reference_members(db: Any, ws: Any, of: str) -> pd.DataFrame:
    """Members ranked by revenue (largest first, ties by id) with running sums, in pandas."""
    if of == "customer":
        revenue = reference_purchases(db, ws).groupby("customer_id")["amount"].sum()
    else:
        revenue = reference_lines(db, ws).groupby(of)["revenue"].sum()
    frame = revenue.rename("revenue").rename_axis("member").reset_index()
    frame = frame.sort_values(["revenue", "member"], ascending=[False, True], ignore_index=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    frame["cumulative"] = frame["revenue"].cumsum()
    return frame


@pytest.mark.parametrize("of", GRAINS)
def test_deciles_agree_with_pandas(db, of):
    ws = demo_shop(db)
    ref = reference_members(db, ws, of)
    with db.read() as conn:
        got = deciles(conn, ws, as_of=AS_OF, of=of)
    assert_clean(got, DECILE_COLUMNS)
    n = len(ref)
    ref["decile"] = 1 + (10 * (ref["rank"] - 1)) // n
    expected = ref.groupby("decile")["revenue"].agg(["size", "sum", "min", "max"])
    assert got["decile"].tolist() == expected.index.tolist()
    assert got["members"].tolist() == expected["size"].tolist()
    assert np.allclose(got["revenue"], expected["sum"])
    assert np.allclose(got["min_revenue"], expected["min"])
    assert np.allclose(got["max_revenue"], expected["max"])
    assert np.allclose(got["revenue_share"], expected["sum"] / ref["revenue"].sum())
    assert got["cumulative_revenue_share"].iloc[-1] == pytest.approx(1.0)
    assert got["cumulative_member_share"].iloc[-1] == pytest.approx(1.0)
    assert np.allclose(got["avg_revenue"], expected["sum"] / expected["size"])


@pytest.mark.parametrize("of", ["customer", "sku"])
def test_abc_classes_and_summary_agree_with_pandas(db, of):
    ws = demo_shop(db)
    ref = reference_members(db, ws, of)
    total = ref["revenue"].sum()
    before = (ref["cumulative"] - ref["revenue"]) / total
    ref["abc_class"] = np.select([before < 0.6, before < 0.85], ["A", "B"], "C")
    thresholds = AbcThresholds(a=0.6, b=0.85)
    with db.read() as conn:
        got = abc_classes(conn, ws, as_of=AS_OF, of=of, thresholds=thresholds)
        summary = abc_summary(conn, ws, as_of=AS_OF, of=of, thresholds=thresholds)
        default = abc_summary(conn, ws, as_of=AS_OF, of=of)
    assert_clean(got, ABC_COLUMNS)
    assert got["member"].tolist() == ref["member"].tolist()
    assert got["rank"].tolist() == ref["rank"].tolist()
    assert got["abc_class"].tolist() == ref["abc_class"].tolist()
    assert np.allclose(got["cumulative_revenue_share"], ref["cumulative"] / total)
    assert_clean(summary, ABC_SUMMARY_COLUMNS)
    assert summary["abc_class"].tolist() == ["A", "B", "C"]
    assert summary["members"].tolist() == [int((ref["abc_class"] == c).sum()) for c in "ABC"]
    share = summary.set_index("abc_class")["revenue_share"]
    assert share["A"] >= 0.6 and share["A"] + share["B"] >= 0.85
    assert default["revenue_share"].iloc[0] >= 0.7


@pytest.mark.parametrize("of", ["customer", "category"])
def test_pareto_curve_and_summary_agree_with_pandas(db, of):
    ws = demo_shop(db)
    ref = reference_members(db, ws, of)
    n, total = len(ref), ref["revenue"].sum()
    with db.read() as conn:
        curve = pareto_curve(conn, ws, as_of=AS_OF, of=of, points=20)
        summary = pareto_summary(conn, ws, as_of=AS_OF, of=of)
    assert_clean(curve, PARETO_COLUMNS)
    assert curve.iloc[0].tolist() == [0.0, 0.0]
    assert curve.iloc[-1].tolist() == pytest.approx([1.0, 1.0])
    assert len(curve) <= 22 and curve["member_share"].is_monotonic_increasing
    # Every point lies on the pandas curve: (k / n, cumulative_k / total).
    k = np.rint(curve["member_share"].iloc[1:] * n).astype(int)
    expected = ref.set_index("rank").loc[k, "cumulative"] / total
    assert np.allclose(curve["revenue_share"].iloc[1:], expected)
    assert_clean(summary, PARETO_SUMMARY_COLUMNS)
    top = int(np.ceil(0.2 * n))
    row = summary.iloc[0]
    assert (row["members"], row["top_members"]) == (n, top)
    assert row["top_revenue_share"] == pytest.approx(ref["revenue"].iloc[:top].sum() / total)
    reach = int(ref.index[ref["cumulative"] >= 0.8 * total][0]) + 1
    assert row["members_to_target"] == reach
    assert row["members_to_target_share"] == pytest.approx(reach / n)


def test_product_revenue_is_net_of_returns_and_ties_break_by_id(db, workspace):
    add_orders(
        db, workspace,
        [("o1", "a", 3, 3000.0), ("o2", "b", 2, 3000.0), ("o3", "c", 1, 500.0)],
        lines={
            "o1": [line("SKU-B", 1000.0, 3, discount=300.0, returned=1, category="food")],
            "o2": [line("SKU-A", 1500.0, 2, category="food"), line("SKU-Z", 0.0, 1)],
            "o3": [line("SKU-C", 500.0, 1, returned=1, category="home")],
        },
        o3={"refunded": 0.0},
    )  # fmt: skip
    with db.read() as conn:
        skus = abc_classes(conn, workspace, as_of=AS_OF, of="sku")
        categories = deciles(conn, workspace, as_of=AS_OF, of="category")
        people = abc_classes(conn, workspace, as_of=AS_OF)
    # SKU-B: (3 × 1000 − 300) × 2/3 kept = 1800; SKU-A: 3000; the free and returned lines drop.
    assert skus[["member", "revenue"]].values.tolist() == [["SKU-A", 3000.0], ["SKU-B", 1800.0]]
    assert categories["members"].tolist() == [1] and categories["revenue"].tolist() == [4800.0]
    # a and b tie on 3000: the smaller customer id ranks first.
    tied = sorted([str(cid("a")), str(cid("b"))])
    assert people["member"].tolist()[:2] == tied
    assert people["abc_class"].tolist() == ["A", "A", "C"]


def test_single_member_and_empty_windows(db, workspace):
    functions = [(deciles, DECILE_COLUMNS), (abc_classes, ABC_COLUMNS),
                 (abc_summary, ABC_SUMMARY_COLUMNS), (pareto_curve, PARETO_COLUMNS),
                 (pareto_summary, PARETO_SUMMARY_COLUMNS)]  # fmt: skip
    with db.read() as conn:
        for function, columns in functions:
            got = function(conn, workspace, as_of=AS_OF, of="sku")
            assert got.empty and list(got.columns) == list(columns)
    add_orders(db, workspace, [("o1", "solo", 10, 2000.0), ("o2", "solo", 400, 1000.0)])
    with db.read() as conn:
        table = deciles(conn, workspace, as_of=AS_OF)
        summary = pareto_summary(conn, workspace, as_of=AS_OF)
        classes = abc_summary(conn, workspace, as_of=AS_OF)
        window = AS_OF - timedelta(days=30)
        recent = deciles(conn, workspace, as_of=AS_OF, since=window)
        nothing = pareto_curve(conn, workspace, as_of=AS_OF - timedelta(days=500))
    assert table["decile"].tolist() == [1] and table["revenue"].tolist() == [3000.0]
    assert summary[["top_members", "top_revenue_share", "members_to_target"]].values.tolist() == [
        [1, 1.0, 1]
    ]
    assert classes["members"].tolist() == [1, 0, 0]
    assert_clean(classes, ABC_SUMMARY_COLUMNS)
    assert recent["revenue"].tolist() == [2000.0]
    assert nothing.empty and list(nothing.columns) == list(PARETO_COLUMNS)


def test_mixed_currencies_and_bad_arguments(db, workspace):
    add_orders(db, workspace, [("j", "a", 3, 1000.0), ("u", "b", 4, 10.0)], u={"currency": "USD"})
    with db.read() as conn:
        for function in (deciles, abc_classes, abc_summary, pareto_curve, pareto_summary):
            for of in ("customer", "sku"):
                with pytest.raises(InvalidInput) as mixed:
                    function(conn, workspace, as_of=AS_OF, of=of)
                assert mixed.value.code == "mixed_currencies"
        with pytest.raises(InvalidInput) as unknown:
            deciles(conn, workspace, as_of=AS_OF, currency="EUR")
        assert unknown.value.code == "unknown_currency"
        assert deciles(conn, workspace, as_of=AS_OF, currency="JPY")["revenue"].tolist() == [1000.0]
        with pytest.raises(InvalidInput):
            pareto_curve(conn, workspace, as_of=AS_OF, currency="JPY", points=0)
        with pytest.raises(InvalidInput):
            pareto_summary(conn, workspace, as_of=AS_OF, currency="JPY", top=1.5)
    with pytest.raises(ValueError):
        AbcThresholds(a=0.9, b=0.8)


def test_plots_render(db):
    ws = demo_shop(db, 200)
    with db.read() as conn:
        curve = pareto_curve(conn, ws, as_of=AS_OF)
        summary = pareto_summary(conn, ws, as_of=AS_OF)
        table = deciles(conn, ws, as_of=AS_OF)
    figures = [plot_pareto(curve, summary=summary), plot_pareto(curve), plot_deciles(table),
               plot_pareto(curve.iloc[0:0]), plot_deciles(table.iloc[0:0])]  # fmt: skip
    for figure in figures:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        assert buffer.getvalue().startswith(PNG)
