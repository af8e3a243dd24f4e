"""PB (full price vs sale) and CTB (category, taste, brand): SQL agrees with pandas; edge cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from kizuna.analytics.purchase_mix import (
    BAND_COLUMNS,
    CTB_MAIN_COLUMNS,
    CTB_MIX_COLUMNS,
    PB_COLUMNS,
    PB_SUMMARY_COLUMNS,
    PbThresholds,
    ctb_main,
    ctb_mix,
    price_behaviour,
    price_behaviour_summary,
    sale_share_distribution,
)
from kizuna.errors import InvalidInput
from kizuna.store.frames import read_frame
from kizuna.store.tables import products
from kizuna.store.workspaces import Workspace
from tests.integration.test_rfm import (
    AS_OF,
    add_orders,
    assert_clean,
    cid,
    demo_shop,
    line,
    reference_lines,
)

TASTES = ("sweet", "savoury", "bitter", "fresh")


def _reference_pb(lines: pd.DataFrame, thresholds: PbThresholds) -> pd.DataFrame:
    lines = lines.assign(
        sale_units=lines["units"].where(lines["is_sale"], 0),
        sale_amount=lines["revenue"].where(lines["is_sale"], 0.0),
    )
    ref = lines.groupby("customer_id")[["units", "sale_units", "revenue", "sale_amount"]].sum()
    ref["share"] = ref["sale_amount"] / ref["revenue"]
    ref["pb_class"] = np.select(
        [ref["share"] <= thresholds.full_price_max, ref["share"] >= thresholds.sale_min],
        ["full_price", "sale"],
        "mixed",
    )
    return ref


def test_price_behaviour_agrees_with_pandas(db):
    ws = demo_shop(db)
    thresholds = PbThresholds(full_price_max=0.1, sale_min=0.6)
    ref = _reference_pb(reference_lines(db, ws), thresholds)
    with db.read() as conn:
        got = price_behaviour(conn, ws, as_of=AS_OF, thresholds=thresholds)
        summary = price_behaviour_summary(conn, ws, as_of=AS_OF, thresholds=thresholds)
        bands = sale_share_distribution(conn, ws, as_of=AS_OF, bins=4)
    assert_clean(got, PB_COLUMNS)
    got = got.set_index("customer_id").sort_index()
    assert got.index.tolist() == ref.index.tolist()
    assert got["units"].tolist() == ref["units"].tolist()
    assert got["sale_units"].tolist() == ref["sale_units"].tolist()
    assert (got["full_price_units"] == got["units"] - got["sale_units"]).all()
    assert np.allclose(got["amount"], ref["revenue"])
    assert np.allclose(got["sale_amount_share"], ref["share"])
    assert np.allclose(got["sale_unit_share"], ref["sale_units"] / ref["units"])
    assert got["pb_class"].tolist() == ref["pb_class"].tolist()
    assert set(got["pb_class_ja"]) <= {"プロパー購入者", "併用購入者", "セール購入者"}

    assert_clean(summary, PB_SUMMARY_COLUMNS)
    assert summary["pb_class"].tolist() == ["full_price", "mixed", "sale"]
    counts = ref["pb_class"].value_counts()
    assert summary["customers"].tolist() == [int(counts.get(c, 0)) for c in summary["pb_class"]]
    assert summary["amount_share"].sum() == pytest.approx(1.0)

    assert_clean(bands, BAND_COLUMNS)
    band = np.minimum(np.floor(ref["share"] * 4), 3).astype(int)
    assert bands["customers"].tolist() == [int((band == k).sum()) for k in range(4)]
    assert bands["label"].tolist() == ["0–25%", "25–50%", "50–75%", "75–100%"]
    assert np.allclose(bands["amount"], [ref["revenue"][band == k].sum() for k in range(4)])


def _set_tastes(db: Any, ws: Workspace) -> dict[str, str]:
    """Give three SKUs in four a taste attribute; returns sku -> taste."""
    with db.write() as conn:
        rows = read_frame(conn, sa.select(products.c.sku, products.c.attributes).where(
            products.c.workspace_id == ws.workspace_id))  # fmt: skip
        tastes = {}
        for k, (sku, attributes) in enumerate(zip(rows["sku"], rows["attributes"], strict=True)):
            if k % 4:
                tastes[sku] = TASTES[(k // 4) % len(TASTES)]
                conn.execute(
                    products.update()
                    .where(products.c.workspace_id == ws.workspace_id, products.c.sku == sku)
                    .values(attributes={**attributes, "taste": tastes[sku]})
                )
    return tastes


def _reference_ctb(lines: pd.DataFrame, by: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    per = lines.groupby(["customer_id", by], as_index=False)[["revenue", "units"]].sum()
    per = per.sort_values(["customer_id", "revenue", by], ascending=[True, False, True])
    main = per.drop_duplicates("customer_id").set_index("customer_id")
    mix = per.groupby(by).agg(
        customers=("customer_id", "size"), revenue=("revenue", "sum"), units=("units", "sum")
    )
    mix["main_customers"] = main[by].value_counts().reindex(mix.index, fill_value=0)
    return mix, main


@pytest.mark.parametrize("by", ["category", "brand", "taste"])
def test_ctb_agrees_with_pandas(db, by):
    ws = demo_shop(db)
    lines = reference_lines(db, ws)
    if by == "taste":
        tastes = _set_tastes(db, ws)
        lines["taste"] = lines["sku"].map(tastes).fillna("(none)")
    mix, main = _reference_ctb(lines, by)
    with db.read() as conn:
        got = ctb_mix(conn, ws, as_of=AS_OF, by=by)
        mains = ctb_main(conn, ws, as_of=AS_OF, by=by)
    assert_clean(got, CTB_MIX_COLUMNS)
    assert got["revenue"].is_monotonic_decreasing
    got = got.set_index("value").sort_index()
    assert got.index.tolist() == mix.index.tolist()
    assert got["customers"].tolist() == mix["customers"].tolist()
    assert got["units"].tolist() == mix["units"].tolist()
    assert got["main_customers"].tolist() == mix["main_customers"].tolist()
    assert np.allclose(got["revenue"], mix["revenue"])
    assert np.allclose(got["customer_share"], mix["customers"] / lines["customer_id"].nunique())
    assert_clean(mains, CTB_MAIN_COLUMNS)
    mains = mains.set_index("customer_id").sort_index()
    assert mains.index.tolist() == main.index.tolist()
    assert mains["main_value"].tolist() == main[by].tolist()
    assert np.allclose(mains["main_revenue"], main["revenue"])
    totals = lines.groupby("customer_id")["revenue"].sum()
    assert np.allclose(mains["main_share"], main["revenue"] / totals)
    assert mains["distinct_values"].tolist() == lines.groupby("customer_id")[by].nunique().tolist()
    if by == "taste":
        assert {"(none)", *TASTES} == set(got.index)


def test_sale_lines_returns_and_main_value_ties(db, workspace):
    add_orders(
        db, workspace,
        [("o1", "a", 3, 4000.0), ("o2", "a", 2, 1000.0), ("o3", "b", 1, 2000.0)],
        lines={
            "o1": [line("S1", 1000.0, 2, category="food", brand="Y", is_sale=True),
                   line("S2", 1000.0, 2, category="home", brand="X", returned=2)],
            "o2": [line("S3", 1000.0, 1, category="home", brand="X")],
            "o3": [line("S4", 1000.0, 2, discount=400.0, category="food", is_sale=True)],
        },
    )  # fmt: skip
    with db.read() as conn:
        pb = price_behaviour(conn, workspace, as_of=AS_OF).set_index("customer_id")
        mains = ctb_main(conn, workspace, as_of=AS_OF).set_index("customer_id")
        brands = ctb_mix(conn, workspace, as_of=AS_OF, by="brand")
    a, b = str(cid("a")), str(cid("b"))
    # a: S1 on sale (2000), S2 fully returned, S3 at full price (1000).
    assert pb.loc[a, ["units", "sale_units", "amount", "sale_amount"]].tolist() == [
        3,
        2,
        3000,
        2000,
    ]
    assert pb.loc[a, "pb_class"] == "mixed"
    assert pb.loc[b, ["amount", "sale_amount_share", "pb_class"]].tolist() == [1600.0, 1.0, "sale"]
    assert mains.loc[a, ["main_value", "main_share", "distinct_values"]].tolist() == [
        "food", pytest.approx(2 / 3), 2
    ]  # fmt: skip
    assert brands[["value", "customers", "main_customers"]].values.tolist() == [
        ["Y", 1, 1], ["(none)", 1, 1], ["X", 1, 0]
    ]  # fmt: skip


def test_empty_windows_and_bad_arguments(db, workspace):
    functions = [(price_behaviour, PB_COLUMNS), (price_behaviour_summary, PB_SUMMARY_COLUMNS),
                 (sale_share_distribution, BAND_COLUMNS), (ctb_mix, CTB_MIX_COLUMNS),
                 (ctb_main, CTB_MAIN_COLUMNS)]  # fmt: skip
    with db.read() as conn:
        for function, columns in functions:
            got = function(conn, workspace, as_of=AS_OF)
            assert got.empty and list(got.columns) == list(columns)
    add_orders(db, workspace, [("o1", "a", 3, 1000.0), ("u", "b", 4, 10.0)], u={"currency": "USD"})
    with db.read() as conn:
        for function, _ in functions:
            with pytest.raises(InvalidInput) as mixed:
                function(conn, workspace, as_of=AS_OF)
            assert mixed.value.code == "mixed_currencies"
        with pytest.raises(InvalidInput):
            sale_share_distribution(conn, workspace, as_of=AS_OF, currency="JPY", bins=0)
        with pytest.raises(InvalidInput):
            ctb_main(conn, workspace, as_of=AS_OF, currency="JPY", by="taste", taste_key="")
        summary = price_behaviour_summary(conn, workspace, as_of=AS_OF, currency="USD")
    assert summary["customers"].tolist() == [1, 0, 0]
    assert_clean(summary, PB_SUMMARY_COLUMNS)
    with pytest.raises(ValueError):
        PbThresholds(full_price_max=0.5, sale_min=0.4)
