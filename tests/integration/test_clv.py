"""Predictive CLV on the store: the SQL summary against pandas, fits, predictions, plots."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from kizuna.analytics.charts.clv import plot_calibration_holdout, plot_clv_distribution
from kizuna.analytics.charts.output import figure_bytes, save_figure
from kizuna.analytics.clv import (
    CLV_COLUMNS,
    HOLDOUT_COLUMNS,
    SUMMARY_COLUMNS,
    check_holdout,
    customer_summary,
    fit_clv,
    predict_clv,
)
from kizuna.analytics.models.bgnbd import fit_bgnbd
from kizuna.demo import DemoOptions, generate_demo_data
from kizuna.domain.records import OrderRecord
from kizuna.errors import InvalidInput
from kizuna.store.commerce import upsert_orders
from kizuna.store.frames import read_frame
from kizuna.store.identity import IdentityResolver
from kizuna.store.scope import Scope
from kizuna.store.tables import orders
from kizuna.store.workspaces import create_workspace

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def shop(db):
    """A 400-customer demo shop (Asia/Tokyo), generated at the test clock's now."""
    return generate_demo_data(db, DemoOptions(customers=400, seed=11, chunk_size=200)).workspace


def _pandas_summary(db, workspace, as_of: datetime) -> pd.DataFrame:
    """The CLV summary computed the plain way, from the orders table in pandas."""
    with db.read() as conn:
        query = sa.select(orders).where(orders.c.workspace_id == workspace.workspace_id)
        frame = read_frame(conn, query)
    frame["amount"] = frame["total"] - frame["refunded"]
    ordered_at = pd.to_datetime(frame["ordered_at"], utc=True)
    keep = (frame["status"] != "cancelled") & (ordered_at <= as_of) & (frame["amount"] > 0)
    frame = frame[keep].copy()
    frame["day"] = ordered_at[keep].dt.tz_convert(workspace.time_zone).dt.date
    daily = frame.groupby(["customer_id", "day"], as_index=False)["amount"].sum()
    first = daily.groupby("customer_id")["day"].transform("min")
    daily["repeat_amount"] = daily["amount"].where(daily["day"] > first, 0.0)
    out = daily.groupby("customer_id").agg(
        first=("day", "min"),
        last=("day", "max"),
        days=("day", "size"),
        spend=("repeat_amount", "sum"),
    )
    today = as_of.astimezone(ZoneInfo(workspace.time_zone)).date()
    out["frequency"] = out["days"] - 1
    out["recency"] = [(b - a).days for a, b in zip(out["first"], out["last"], strict=True)]
    out["T"] = [(today - a).days for a in out["first"]]
    out["monetary_value"] = np.where(
        out["frequency"] > 0, out["spend"] / out["frequency"].clip(lower=1), 0.0
    )
    return out.sort_index()


def test_summary_equals_pandas_on_the_demo_shop(db, shop, clock):
    as_of = clock.now()
    with db.read() as conn:
        summary = customer_summary(conn, shop, as_of)
    expected = _pandas_summary(db, shop, as_of)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert len(summary) == len(expected) > 200
    got = summary.set_index("customer_id").sort_index()
    assert got.index.tolist() == expected.index.tolist()
    for column in ("frequency", "recency", "T"):
        assert got[column].tolist() == expected[column].tolist(), column
    np.testing.assert_allclose(got["monetary_value"], expected["monetary_value"], rtol=1e-12)
    assert got["first_purchase_day"].tolist() == [d.isoformat() for d in expected["first"]]
    assert (got["frequency"] > 0).sum() > 50


def test_fit_collapses_in_sql_without_changing_the_fit(db, shop, clock):
    with db.read() as conn:
        fit = fit_clv(conn, shop, clock.now())
        summary = customer_summary(conn, shop, clock.now())
    plain = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"], collapse=False)
    np.testing.assert_allclose(fit.purchases.params.as_array(), plain.params.as_array(), rtol=1e-6)
    assert fit.purchases.log_likelihood == pytest.approx(plain.log_likelihood, abs=1e-6)
    assert fit.purchases.rows < len(summary) == fit.customers
    assert fit.repeat_customers == int((summary["frequency"] > 0).sum()) == fit.spend.customers
    assert fit.purchases.converged and fit.spend.converged
    diagnostics = fit.diagnostics()
    assert diagnostics["currency"] == "JPY" and diagnostics["time_unit"] == "day"
    numbers = [v for v in diagnostics.values() if isinstance(v, float)]
    assert numbers and all(np.isfinite(numbers))


def test_predictions_are_finite_and_consistent(db, shop, clock, tmp_path):
    as_of = clock.now()
    with db.read() as conn:
        fit = fit_clv(conn, shop, as_of)
        scores = predict_clv(conn, shop, fit, horizon_days=365, annual_discount_rate=0.08)
    assert list(scores.columns) == list(CLV_COLUMNS)
    assert scores["customer_id"].is_unique and len(scores) == fit.customers
    numbers = scores[["p_alive", "expected_purchases", "expected_avg_spend", "clv"]].to_numpy()
    assert np.isfinite(numbers).all() and (numbers >= 0).all()
    assert scores["p_alive"].between(0, 1).all()
    assert (scores.loc[scores["frequency"] == 0, "p_alive"] == 1).all()
    assert (
        scores["clv"] <= scores["expected_purchases"] * scores["expected_avg_spend"] + 1e-6
    ).all()
    upcoming = scores["expected_next_order_at"].dropna()
    assert str(scores["expected_next_order_at"].dtype) == "datetime64[ns, UTC]"
    assert len(upcoming) > 0
    assert ((upcoming > as_of) & (upcoming <= as_of + timedelta(days=365))).all()
    # Who is expected to reorder is expected to buy at least once in the horizon.
    has_date = scores["expected_next_order_at"].notna()
    assert (scores.loc[has_date, "expected_purchases"] >= 1 - 1e-6).all()
    assert (scores.loc[~has_date, "expected_purchases"] < 1 + 1e-6).all()

    figure = plot_clv_distribution(scores, currency=fit.currency)
    assert figure_bytes(figure).startswith(PNG)
    path = save_figure(figure, tmp_path / "clv.svg")
    assert path.read_bytes().lstrip().startswith(b"<?xml")


def test_holdout_check_counts_holdout_purchase_days(db, shop, clock):
    as_of = clock.now()
    with db.read() as conn:
        check = check_holdout(conn, shop, as_of, holdout_days=120)
    assert list(check.table.columns) == list(HOLDOUT_COLUMNS)
    calibration_day = as_of.astimezone(ZoneInfo(shop.time_zone)).date() - timedelta(days=120)
    assert check.calibration_end.astimezone(ZoneInfo(shop.time_zone)).date() == calibration_day
    calibrated = _pandas_summary(db, shop, check.calibration_end)
    assert check.table["customers"].sum() == len(calibrated) == check.fit.customers
    everything = _pandas_summary(db, shop, as_of)
    # Purchase days after calibration = the purchase days counted now minus those then.
    later = (everything.loc[calibrated.index, "frequency"] - calibrated["frequency"]).sum()
    assert check.actual_total == pytest.approx(later)
    assert np.isfinite(check.predicted_total) and check.predicted_total > 0
    assert figure_bytes(plot_calibration_holdout(check.table, holdout_days=120)).startswith(PNG)


# --- the rules, on hand-made orders ------------------------------------------------------


def _local(day: str, hour: int, zone: str) -> str:
    moment = datetime.fromisoformat(f"{day}T{hour:02d}:00").replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(UTC).isoformat()


def _add_orders(db, zone: str, rows: list[dict]) -> object:
    with db.write() as conn:
        workspace = create_workspace(conn, "rules", time_zone=zone, now=db.clock.now())
        scope = Scope(conn, db.cipher, workspace.workspace_id, db.clock.now())
        records = [
            OrderRecord(
                order_id=f"O-{n}",
                customer={"user_id": who},
                ordered_at=_local(day, hour, zone),
                total=total,
                **extra,
            )
            for n, (who, day, hour, total, extra) in enumerate(rows)
        ]
        upsert_orders(scope, IdentityResolver(scope), records)
    return workspace


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/New_York"])
def test_summary_rules(db, clock, zone):
    rows = [
        ("A", "2026-01-10", 9, 3000.0, {}),
        ("A", "2026-01-10", 21, 2000.0, {}),  # same local day (not the same UTC day in New York)
        ("A", "2026-02-01", 10, 5000.0, {}),
        ("A", "2026-02-15", 10, 9999.0, {"status": "cancelled"}),
        ("A", "2026-03-01", 10, 4000.0, {"refunded": 4000.0}),  # fully refunded: no purchase
        ("A", "2026-03-05", 10, 6000.0, {"refunded": 1000.0}),
        ("A", "2026-05-01", 10, 7000.0, {}),  # after as_of
        ("B", "2026-03-20", 23, 8000.0, {}),
    ]
    workspace = _add_orders(db, zone, rows)
    as_of = clock.now()
    with db.read() as conn:
        summary = customer_summary(conn, workspace, as_of).sort_values("first_purchase_day")
    today = as_of.astimezone(ZoneInfo(zone)).date()
    a, b = summary.to_dict("records")
    assert (a["frequency"], a["recency"], a["monetary_value"]) == (2, 54, 5000.0)
    assert a["T"] == (today - date(2026, 1, 10)).days
    assert (a["first_purchase_day"], a["last_purchase_day"]) == ("2026-01-10", "2026-03-05")
    assert (b["frequency"], b["recency"], b["monetary_value"]) == (0, 0, 0.0)
    assert b["T"] == (today - date(2026, 3, 20)).days
    pd.testing.assert_frame_equal(
        summary.reset_index(drop=True),
        _pandas_summary(db, workspace, as_of)
        .reset_index()
        .assign(first_purchase_day=lambda f: f["first"].map(date.isoformat),
                last_purchase_day=lambda f: f["last"].map(date.isoformat))[list(SUMMARY_COLUMNS)]
        .sort_values("first_purchase_day")
        .reset_index(drop=True),
        check_dtype=False,
    )  # fmt: skip


def test_bad_input_is_answered_clearly(db, clock):
    as_of = clock.now()
    only_once = [("A", "2026-01-10", 9, 3000.0, {}), ("B", "2026-02-10", 9, 4000.0, {})]
    workspace = _add_orders(db, "Asia/Tokyo", only_once)
    with db.read() as conn:
        with pytest.raises(InvalidInput) as excinfo:
            fit_clv(conn, workspace, as_of)
        assert excinfo.value.code == "no_repeat_customers"
        early = datetime(2025, 1, 1, tzinfo=UTC)
        empty = customer_summary(conn, workspace, early)
        assert empty.empty and list(empty.columns) == list(SUMMARY_COLUMNS)
        with pytest.raises(InvalidInput) as excinfo:
            fit_clv(conn, workspace, early)
        assert excinfo.value.code == "no_purchases"
        with pytest.raises(InvalidInput) as excinfo:
            customer_summary(conn, workspace, as_of.replace(tzinfo=None))
        assert excinfo.value.code == "naive_datetime"


def test_mixed_currencies_need_a_choice(db, clock):
    rows = [
        ("A", "2026-01-10", 9, 3000.0, {}),
        ("A", "2026-02-10", 9, 3500.0, {}),
        ("B", "2026-01-12", 9, 2000.0, {}),
        ("B", "2026-02-01", 9, 2500.0, {}),
        ("B", "2026-03-01", 9, 1500.0, {}),
        ("C", "2026-01-20", 9, 40.0, {"currency": "USD"}),
    ]
    workspace = _add_orders(db, "Asia/Tokyo", rows)
    with db.read() as conn:
        with pytest.raises(InvalidInput) as excinfo:
            customer_summary(conn, workspace, clock.now())
        assert excinfo.value.code == "mixed_currencies"
        summary = customer_summary(conn, workspace, clock.now(), currency="jpy")
        assert sorted(summary["frequency"].tolist()) == [1, 2]
        fit = fit_clv(conn, workspace, clock.now(), currency="JPY")
        assert fit.currency == "JPY" and fit.customers == 2
        scores = predict_clv(conn, workspace, fit)
        assert len(scores) == 2 and np.isfinite(scores["clv"]).all()
