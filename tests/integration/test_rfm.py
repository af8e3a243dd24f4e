"""RFM, its grid and RFMD/RFMC views: SQL agrees with pandas on the demo shop; edge cases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from kizuna.analytics.charts.rfm import plot_rfm_grid
from kizuna.analytics.rfm import (
    AREA_COLUMNS,
    CATEGORY_COLUMNS,
    GRID_COLUMNS,
    RFM_COLUMNS,
    SEGMENT_COLUMNS,
    STATE_COLUMNS,
    rfm,
    rfm_by_area,
    rfm_by_category,
    rfm_by_state,
    rfm_grid,
    rfm_segments,
)
from kizuna.analytics.rfm_rules import (
    DEFAULT_SEGMENT_RULES,
    RfmConfig,
    SegmentRule,
    SegmentRules,
    StateRules,
    ThresholdScoring,
)
from kizuna.demo import DemoOptions, generate_demo_data
from kizuna.domain.regions import find_prefecture
from kizuna.errors import InvalidInput
from kizuna.store.database import Database
from kizuna.store.frames import read_frame
from kizuna.store.tables import customers, order_items, orders
from kizuna.store.workspaces import Workspace

AS_OF = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)  # the test clock
PNG = b"\x89PNG\r\n\x1a\n"

# --- shared with test_distribution and test_purchase_mix ---------------------------------


def demo_shop(db: Database, customers_: int = 500) -> Workspace:
    """A small demo shop generated at the test clock."""
    return generate_demo_data(db, DemoOptions(customers=customers_, chunk_size=250)).workspace


def reference_purchases(db: Database, ws: Workspace, since: datetime | None = None) -> pd.DataFrame:
    """Net purchases recomputed in pandas from the raw ``orders`` rows."""
    with db.read() as conn:
        raw = read_frame(conn, sa.select(orders).where(orders.c.workspace_id == ws.workspace_id))
    raw["amount"] = raw["total"] - raw["refunded"]
    keep = (raw["status"] != "cancelled") & (raw["ordered_at"] <= AS_OF) & (raw["amount"] > 0)
    if since is not None:
        keep &= raw["ordered_at"] >= since
    return raw[keep].reset_index(drop=True)


def reference_lines(db: Database, ws: Workspace, since: datetime | None = None) -> pd.DataFrame:
    """Line items of the net purchases with kept ``units`` and net ``revenue`` (> 0 only)."""
    p = reference_purchases(db, ws, since)
    with db.read() as conn:
        query = sa.select(order_items).where(order_items.c.workspace_id == ws.workspace_id)
        items = read_frame(conn, query)
    lines = items.merge(p[["order_id"]], on="order_id")
    lines["units"] = lines["quantity"] - lines["returned_quantity"]
    gross = lines["quantity"] * lines["unit_price"] - lines["discount"]
    lines["revenue"] = gross * lines["units"] / lines["quantity"]
    lines["category"] = lines["category"].fillna("(none)")
    lines["brand"] = lines["brand"].fillna("(none)")
    return lines[(lines["units"] > 0) & (lines["revenue"] > 0)].reset_index(drop=True)


def cid(name: str) -> uuid.UUID:
    """A stable customer id for a hand-built customer."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"kizuna-test/{name}")


def line(sku: str, price: float, qty: int = 1, **kw: Any) -> dict[str, Any]:
    """One order line: ``discount``, ``is_sale``, ``returned``, ``category``, ``brand``."""
    return {"sku": sku, "unit_price": price, "quantity": qty, **kw}


def add_orders(
    db: Database,
    ws: Workspace,
    specs: list[tuple[str, str, float, float]],
    *,
    lines: dict[str, list[dict[str, Any]]] | None = None,
    **per_order: dict[str, Any],
) -> None:
    """Insert ``(order_id, customer, days before AS_OF, amount)`` orders directly.

    ``per_order[order_id]`` overrides columns (status, refunded, currency);
    ``lines[order_id]`` gives its line items (default: one line worth the amount).
    """
    order_rows, item_rows = [], []
    for order_id, who, days_ago, amount in specs:
        row = {
            "workspace_id": ws.workspace_id, "order_id": order_id, "customer_id": cid(who),
            "ordered_at": AS_OF - timedelta(days=days_ago), "channel": "online",
            "status": "placed", "currency": "JPY", "subtotal": amount, "discount": 0.0,
            "shipping": 0.0, "tax": 0.0, "total": amount, "refunded": 0.0, "coupon": None,
            "store_id": None, "cancelled_at": None, "returned_at": None, "updated_at": AS_OF,
        }  # fmt: skip
        row.update(per_order.get(order_id, {}))
        order_rows.append(row)
        for n, item in enumerate((lines or {}).get(order_id, [line("SKU-1", amount)]), start=1):
            item_rows.append({
                "workspace_id": ws.workspace_id, "order_id": order_id, "line_no": n,
                "customer_id": cid(who), "sku": item["sku"], "product_id": item["sku"],
                "product_name": item["sku"], "category": item.get("category"),
                "brand": item.get("brand"), "quantity": item["quantity"],
                "unit_price": item["unit_price"], "discount": item.get("discount", 0.0),
                "coupon": None, "is_sale": item.get("is_sale", False),
                "returned_quantity": item.get("returned", 0),
            })  # fmt: skip
    with db.write() as conn:
        conn.execute(orders.insert(), order_rows)
        conn.execute(order_items.insert(), item_rows)


def add_customers(db: Database, ws: Workspace, prefectures: dict[str, str | None]) -> None:
    """Insert bare customer rows with a prefecture."""
    rows = [
        {"workspace_id": ws.workspace_id, "customer_id": cid(name), "prefecture": pref,
         "attributes": {}, "first_seen_at": AS_OF, "last_seen_at": AS_OF, "updated_at": AS_OF}
        for name, pref in prefectures.items()
    ]  # fmt: skip
    with db.write() as conn:
        conn.execute(customers.insert(), rows)


def assert_clean(frame: pd.DataFrame, columns: dict[str, str]) -> None:
    """Documented columns in order, no NaN anywhere."""
    assert list(frame.columns) == list(columns)
    assert not frame.isna().any().any()


# --- pandas reference ----------------------------------------------------------------------


def _quintile(values: pd.Series) -> pd.Series:
    """Tie-aware quintile: 1 + floor(5 (min rank − 1) / n), ranking worst first."""
    rank = values.rank(method="min")
    return (1 + (5 * (rank - 1)) // len(values)).astype(int)


def reference_rfm(p: pd.DataFrame, config: RfmConfig | None = None) -> pd.DataFrame:
    """RFM recomputed in pandas from net purchases."""
    config = config or RfmConfig()
    g = p.groupby("customer_id")
    ref = pd.DataFrame({
        "first": g["ordered_at"].min(), "last": g["ordered_at"].max(),
        "frequency": g.size(), "monetary": g["amount"].sum(),
    })  # fmt: skip
    ref["recency_days"] = ((AS_OF - ref["last"]) // pd.Timedelta(days=1)).astype(int)
    scoring = config.scoring
    if isinstance(scoring, ThresholdScoring):
        r_cuts, f_cuts, m_cuts = scoring.recency_days, scoring.frequency, scoring.monetary
        ref["r_score"] = 5 - np.searchsorted(r_cuts, ref["recency_days"], side="left")
        ref["f_score"] = 1 + np.searchsorted(f_cuts, ref["frequency"], side="right")
        ref["m_score"] = 1 + np.searchsorted(m_cuts, ref["monetary"], side="right")
    else:
        ref["r_score"] = _quintile(-ref["recency_days"])
        ref["f_score"] = _quintile(ref["frequency"])
        ref["m_score"] = _quintile(ref["monetary"])
    rules = config.segments
    keys = np.array([rule.key for rule in rules.rules])
    cell = (ref["r_score"] - 1) * 25 + (ref["f_score"] - 1) * 5 + (ref["m_score"] - 1)
    ref["segment"] = keys[rules.lookup()[cell.to_numpy()]]
    ref["state"] = [
        config.states.state_for(r, f)
        for r, f in zip(ref["recency_days"], ref["frequency"], strict=True)
    ]
    return ref


def _compare(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    got = got.set_index("customer_id").sort_index()
    ref = ref.sort_index()
    assert got.index.tolist() == ref.index.tolist()
    for column in ("recency_days", "frequency", "r_score", "f_score", "m_score"):
        assert got[column].tolist() == ref[column].tolist(), column
    assert np.allclose(got["monetary"], ref["monetary"])
    assert (got["first_purchase_at"] == ref["first"]).all()
    assert (got["last_purchase_at"] == ref["last"]).all()
    assert got["segment"].tolist() == ref["segment"].tolist()
    assert got["state"].tolist() == ref["state"].tolist()


# --- demo shop: SQL vs pandas --------------------------------------------------------------


@pytest.mark.parametrize("window_days", [None, 365])
def test_rfm_agrees_with_pandas(db, window_days):
    ws = demo_shop(db)
    since = AS_OF - timedelta(days=window_days) if window_days else None
    with db.read() as conn:
        got = rfm(conn, ws, as_of=AS_OF, since=since)
    assert_clean(got, RFM_COLUMNS)
    assert got.dtypes.astype(str).tolist() == [
        str(pd.Series(dtype=t).dtype) for t in RFM_COLUMNS.values()
    ]
    _compare(got, reference_rfm(reference_purchases(db, ws, since)))
    assert (got["rfm_code"] == got["r_score"].astype(str) + got["f_score"].astype(str)
            + got["m_score"].astype(str)).all()  # fmt: skip
    labels = {r.key: (r.label_ja, r.label_en) for r in DEFAULT_SEGMENT_RULES.rules}
    assert all(labels[s] == (ja, en) for s, ja, en in
               zip(got["segment"], got["segment_ja"], got["segment_en"], strict=True))  # fmt: skip
    # Quintiles: each score holds about a fifth of the customers on M (few ties).
    assert got["m_score"].value_counts(normalize=True).between(0.15, 0.25).all()


def test_threshold_scoring_agrees_with_pandas(db):
    ws = demo_shop(db)
    config = RfmConfig(scoring=ThresholdScoring(monetary=(3_000, 8_000, 20_000, 60_000)))
    with db.read() as conn:
        got = rfm(conn, ws, as_of=AS_OF, config=config)
    ref = reference_rfm(reference_purchases(db, ws), config)
    _compare(got, ref)
    assert set(got["r_score"]) == {1, 2, 3, 4, 5}


def test_grid_segments_and_states_agree_with_the_customer_frame(db):
    ws = demo_shop(db)
    with db.read() as conn:
        per = rfm(conn, ws, as_of=AS_OF)
        grid = rfm_grid(conn, ws, as_of=AS_OF)
        segments = rfm_segments(conn, ws, as_of=AS_OF)
        states = rfm_by_state(conn, ws, as_of=AS_OF)
    assert_clean(grid, GRID_COLUMNS)
    assert len(grid) == 25
    counts = per.groupby(["r_score", "f_score"]).agg(
        n=("monetary", "size"), rev=("monetary", "sum")
    )
    full = counts.reindex(pd.MultiIndex.from_frame(grid[["r_score", "f_score"]]), fill_value=0)
    assert grid["customers"].tolist() == full["n"].tolist()
    assert np.allclose(grid["revenue"], full["rev"])
    assert grid["customer_share"].sum() == pytest.approx(1.0)

    assert_clean(segments, SEGMENT_COLUMNS)
    assert segments["segment"].tolist() == [r.key for r in DEFAULT_SEGMENT_RULES.rules]
    by_segment = per.groupby("segment")
    for row in segments.itertuples():
        if row.customers:
            members = by_segment.get_group(row.segment)
            assert row.customers == len(members)
            assert row.avg_recency_days == pytest.approx(members["recency_days"].mean())
            assert row.avg_frequency == pytest.approx(members["frequency"].mean())
            assert row.avg_monetary == pytest.approx(members["monetary"].mean())
        else:
            assert row.segment not in by_segment.groups
    assert segments["customers"].sum() == len(per)

    assert_clean(states, STATE_COLUMNS)
    expected = per.groupby(["state", "segment"]).size()
    assert dict(zip(zip(states["state"], states["segment"], strict=True), states["customers"],
                    strict=True)) == expected.to_dict()  # fmt: skip
    assert states.groupby("state")["customer_share"].sum().round(9).eq(1.0).all()
    assert set(states["state_ja"]) <= {"新規", "安定", "優良", "ロイヤル", "休眠"}


@pytest.mark.parametrize("level", ["prefecture", "region"])
def test_rfmd_agrees_with_pandas(db, level):
    ws = demo_shop(db)
    with db.read() as conn:
        per = rfm(conn, ws, as_of=AS_OF)
        got = rfm_by_area(conn, ws, as_of=AS_OF, level=level)
        people = read_frame(conn, sa.select(customers.c.customer_id, customers.c.prefecture)
                            .where(customers.c.workspace_id == ws.workspace_id))  # fmt: skip
    assert_clean(got, AREA_COLUMNS)
    merged = per.merge(people, on="customer_id", how="left")

    def area(name: Any) -> str:
        found = find_prefecture(name) if isinstance(name, str) else None
        if found is None:
            return "不明"
        return found.region.name_ja if level == "region" else found.name_ja

    merged["area"] = merged["prefecture"].map(area)
    expected = merged.groupby(["area", "segment"]).agg(
        n=("monetary", "size"), rev=("monetary", "sum")
    )
    assert len(got) == len(expected)
    for row in got.itertuples():
        assert row.customers == expected.loc[(row.area, row.segment), "n"]
        assert row.revenue == pytest.approx(expected.loc[(row.area, row.segment), "rev"])
    assert got.groupby("area")["customer_share"].sum().round(9).eq(1.0).all()
    if level == "region":
        order = ["北海道", "東北", "関東", "中部", "近畿", "中国", "四国", "九州・沖縄", "不明"]
        present = set(got["area"])
        assert list(dict.fromkeys(got["area"])) == [a for a in order if a in present]
        assert "Kanto" in set(got["area_en"])


def test_rfmc_by_category_agrees_with_pandas(db):
    ws = demo_shop(db)
    with db.read() as conn:
        per = rfm(conn, ws, as_of=AS_OF)
        got = rfm_by_category(conn, ws, as_of=AS_OF)
        brands = rfm_by_category(conn, ws, as_of=AS_OF, by="brand")
    assert_clean(got, CATEGORY_COLUMNS)
    lines = reference_lines(db, ws).merge(per[["customer_id", "segment"]], on="customer_id")
    expected = lines.groupby(["segment", "category"]).agg(
        customers=("customer_id", "nunique"), revenue=("revenue", "sum"), units=("units", "sum")
    )
    sizes = per.groupby("segment").size()
    assert len(got) == len(expected)
    for row in got.itertuples():
        want = expected.loc[(row.segment, row.value)]
        assert (row.customers, row.units) == (want["customers"], want["units"])
        assert row.revenue == pytest.approx(want["revenue"])
        assert row.segment_customers == sizes[row.segment]
    assert got.groupby("segment")["revenue_share"].sum().round(9).eq(1.0).all()
    assert set(brands["value"]) == set(lines["brand"])


# --- hand-built edge cases -----------------------------------------------------------------


def test_ties_share_the_lower_quintile_deterministically(db, workspace):
    # Ten customers: a..e buy once, f..j twice; recency and spend tie in pairs.
    specs = []
    for k, name in enumerate("abcdefghij"):
        days = 10 * (k // 2) + 1
        specs.append((f"{name}1", name, days, 1000.0 * (1 + k // 2)))
        if k >= 5:
            specs.append((f"{name}2", name, days + 100, 500.0))
    add_orders(db, workspace, specs)
    with db.read() as conn:
        got = rfm(conn, workspace, as_of=AS_OF).set_index("customer_id")
    f = {name: got.loc[str(cid(name)), "f_score"] for name in "abcdefghij"}
    # Five one-order customers hold ranks 1–5 (score 1), two-order ones start at rank 6 → 3.
    assert [f[n] for n in "abcde"] == [1] * 5 and [f[n] for n in "fghij"] == [3] * 5
    r = [got.loc[str(cid(n)), "r_score"] for n in "abcdefghij"]
    assert r == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]  # pairs tie on recency: same score
    again = []
    with db.read() as conn:
        again = rfm(conn, workspace, as_of=AS_OF).set_index("customer_id").sort_index()
    assert again.equals(got.sort_index())


def test_one_customer_refunds_cancellations_and_future_orders(db, workspace):
    add_orders(
        db, workspace,
        [("o1", "solo", 40.5, 3000.0), ("o2", "solo", 20.2, 2000.0), ("o3", "solo", 10, 999.0),
         ("o4", "solo", 5, 800.0), ("o5", "solo", -3, 5000.0), ("o6", "solo", 2, 0.0)],
        o2={"refunded": 500.0}, o3={"status": "cancelled"},
        o4={"status": "returned", "refunded": 800.0},
    )  # fmt: skip
    with db.read() as conn:
        got = rfm(conn, workspace, as_of=AS_OF)
        grid = rfm_grid(conn, workspace, as_of=AS_OF)
    assert_clean(got, RFM_COLUMNS)
    row = got.iloc[0]
    # o1 and o2 (refund netted) count; cancelled, fully returned, zero and future ones do not.
    assert (row["frequency"], row["monetary"], row["recency_days"]) == (2, 4500.0, 20)
    assert row["last_purchase_at"] == AS_OF - timedelta(days=20.2)
    # A lone customer takes the first position on every axis: the lowest quintile.
    assert (row["r_score"], row["f_score"], row["m_score"], row["segment"]) == (1, 1, 1, "lost")
    assert grid["customers"].sum() == 1 and grid["revenue"].sum() == 4500.0


def test_recency_counts_whole_days_to_the_microsecond(db, workspace):
    tick = timedelta(microseconds=1) / timedelta(days=1)
    specs = [("a", "a", 30, 100.0), ("b", "b", 30 - tick, 100.0), ("c", "c", 0, 100.0),
             ("d", "d", 365 + tick, 100.0), ("e", "e", 365, 100.0)]  # fmt: skip
    add_orders(db, workspace, specs)
    with db.read() as conn:
        got = rfm(conn, workspace, as_of=AS_OF, config=RfmConfig(scoring=ThresholdScoring()))
    got = got.set_index("customer_id")
    days = {n: got.loc[str(cid(n)), "recency_days"] for n in "abcde"}
    assert days == {"a": 30, "b": 29, "c": 0, "d": 365, "e": 365}
    scores = {n: got.loc[str(cid(n)), "r_score"] for n in "abcde"}
    assert scores == {"a": 5, "b": 5, "c": 5, "d": 2, "e": 2}  # ≤ 30 days: 5; ≤ 365: 2


def test_empty_windows_give_empty_typed_frames(db, workspace):
    functions = [(rfm, RFM_COLUMNS), (rfm_grid, GRID_COLUMNS), (rfm_segments, SEGMENT_COLUMNS),
                 (rfm_by_area, AREA_COLUMNS), (rfm_by_category, CATEGORY_COLUMNS),
                 (rfm_by_state, STATE_COLUMNS)]  # fmt: skip
    with db.read() as conn:  # no orders at all
        for function, columns in functions:
            got = function(conn, workspace, as_of=AS_OF)
            assert got.empty and list(got.columns) == list(columns)
    add_orders(db, workspace, [("o1", "x", 400, 1000.0)])
    with db.read() as conn:  # orders, none in the window
        for function, columns in functions:
            got = function(conn, workspace, as_of=AS_OF, since=AS_OF - timedelta(days=30))
            assert got.empty and list(got.columns) == list(columns)
        assert str(rfm(conn, workspace, as_of=AS_OF, since=AS_OF).dtypes["frequency"]) == "int64"
        empty_grid = rfm_grid(conn, workspace, as_of=AS_OF, since=AS_OF)
    assert _png(plot_rfm_grid(empty_grid)).startswith(PNG)


def test_mixed_currencies_and_bad_dates_are_invalid_input(db, workspace):
    add_orders(db, workspace, [("j", "a", 3, 1000.0), ("u", "b", 4, 10.0)], u={"currency": "USD"})
    with db.read() as conn:
        for function in (rfm, rfm_grid, rfm_segments, rfm_by_area, rfm_by_category, rfm_by_state):
            with pytest.raises(InvalidInput) as mixed:
                function(conn, workspace, as_of=AS_OF)
            assert mixed.value.code == "mixed_currencies"
            assert "JPY (1 orders), USD (1 orders)" in str(mixed.value)
        usd = rfm(conn, workspace, as_of=AS_OF, currency="usd")
        assert usd["customer_id"].tolist() == [str(cid("b"))]
        with pytest.raises(InvalidInput):
            rfm_grid(conn, workspace, as_of=AS_OF, currency="EUR")
        # Only the window's purchases must share a currency.
        recent = rfm(conn, workspace, as_of=AS_OF, since=AS_OF - timedelta(days=3.5))
        assert recent["customer_id"].tolist() == [str(cid("a"))]
        with pytest.raises(InvalidInput) as naive:
            rfm(conn, workspace, as_of=datetime(2026, 4, 1), currency="JPY")
        assert naive.value.code == "naive_datetime"
        with pytest.raises(InvalidInput) as backwards:
            rfm(conn, workspace, as_of=AS_OF, since=AS_OF + timedelta(days=1), currency="JPY")
        assert backwards.value.code == "empty_window"


def test_custom_rules_states_and_region_names(db, workspace):
    specs = [("a1", "a", 1, 5000.0), ("a2", "a", 2, 5000.0), ("b1", "b", 300, 100.0),
             ("c1", "c", 5, 100.0)]  # fmt: skip
    add_orders(db, workspace, specs)
    add_customers(db, workspace, {"a": "東京都", "b": "大阪", "c": None})
    rules = SegmentRules(rules=(
        SegmentRule(key="vip", label_en="VIP", label_ja="上顧客", monetary=(4, 5)),
        SegmentRule(key="others", label_en="Others", label_ja="その他"),
    ))  # fmt: skip
    config = RfmConfig(segments=rules, states=StateRules(dormant_after_days=90))
    with db.read() as conn:
        got = rfm(conn, workspace, as_of=AS_OF, config=config).set_index("customer_id")
        areas = rfm_by_area(conn, workspace, as_of=AS_OF, config=config, level="region")
        segments = rfm_segments(conn, workspace, as_of=AS_OF, config=config)
    assert got.loc[str(cid("a")), "segment"] == "vip"
    assert got.loc[str(cid("a")), "segment_ja"] == "上顧客"
    assert got.loc[str(cid("b")), ["segment", "state"]].tolist() == ["others", "dormant"]
    assert got.loc[str(cid("a")), "state"] == "stable"
    assert got.loc[str(cid("c")), "state"] == "new"
    assert areas[["area", "area_en", "segment"]].values.tolist() == [
        ["関東", "Kanto", "vip"],
        ["近畿", "Kinki (Kansai)", "others"],
        ["不明", "Unknown", "others"],
    ]
    assert segments["segment"].tolist() == ["vip", "others"]
    assert segments["customers"].tolist() == [1, 2]


def test_grid_plot_renders_counts_and_revenue(db):
    ws = demo_shop(db, 200)
    with db.read() as conn:
        grid = rfm_grid(conn, ws, as_of=AS_OF)
    for value in ("customers", "revenue", "avg_monetary"):
        assert _png(plot_rfm_grid(grid, value=value)).startswith(PNG)
    with pytest.raises(ValueError):
        plot_rfm_grid(grid, value="nope")


def _png(figure: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
