"""Subscription churn, GRR and NRR by month, and customer-success phases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa

from kizuna.analytics.subscriptions import (
    PHASE_COLUMNS,
    SUBSCRIPTION_COLUMNS,
    subscription_retention,
    success_phases,
)
from kizuna.domain.records import SubscriptionRecord
from kizuna.errors import InvalidInput
from kizuna.store.commerce import upsert_subscriptions
from kizuna.store.frames import read_frame
from kizuna.store.identity import IdentityResolver
from kizuna.store.tables import events, subscriptions
from kizuna.store.types import new_id
from tests.integration.test_repeat import AS_OF, demo_shop, order, place, reference_purchases


def _contracts(scope_factory: Any, records: list[dict[str, Any]]) -> None:
    with scope_factory() as scope:
        built = [SubscriptionRecord.model_validate(r) for r in records]
        upsert_subscriptions(scope, IdentityResolver(scope), built)


def _contract(sub_id: str, user: str, start: str, amount: float, **extra: Any) -> dict[str, Any]:
    return {
        "subscription_id": sub_id,
        "customer": {"user_id": user},
        "plan": "定期便",
        "amount": amount,
        "interval_days": extra.pop("interval_days", 30),
        "started_at": start,
        **extra,
    }


def _reference(subs: pd.DataFrame, zone: str, as_of: datetime) -> pd.DataFrame:
    """The monthly table recomputed in pandas, one month at a time."""
    end = subs["cancelled_at"].where(
        subs["cancelled_at"].notna() | (subs["status"] != "cancelled"), subs["updated_at"]
    )
    mrr = subs["amount"] * 30 / subs["interval_days"]
    first = subs["started_at"].min().tz_convert(zone)
    local_as_of = pd.Timestamp(as_of).tz_convert(zone)
    starts = pd.date_range(first.replace(day=1).normalize(), local_as_of, freq="MS")
    rows = []
    for start in starts:
        stop = min(start + pd.offsets.MonthBegin(1), pd.Timestamp(as_of))

        def active(at: pd.Timestamp) -> pd.Series:
            return (subs["started_at"] <= at) & (end.isna() | (end > at))

        was = mrr.where(active(start), 0).groupby(subs["customer_id"]).sum()
        now = mrr.where(active(stop), 0).groupby(subs["customer_id"]).sum()
        had = active(start).groupby(subs["customer_id"]).any()
        has = active(stop).groupby(subs["customer_id"]).any()
        rows.append(
            {
                "month": start.strftime("%Y-%m"),
                "customers_start": int(had.sum()),
                "mrr_start": was[had].sum(),
                "churned_customers": int((had & ~has).sum()),
                "churned_mrr": was[had & ~has].sum(),
                "new_mrr": now[~had & has].sum(),
                "contraction_mrr": (was - now)[had & has & (now < was)].sum(),
                "expansion_mrr": (now - was)[had & has & (now > was)].sum(),
                "mrr_end": now[has].sum(),
            }
        )
    return pd.DataFrame(rows)


def test_monthly_retention_agrees_with_pandas_on_the_demo_shop(db):
    ws = demo_shop(db)
    with db.read() as conn:
        subs = read_frame(
            conn, sa.select(subscriptions).where(subscriptions.c.workspace_id == ws.workspace_id)
        )
        got = subscription_retention(conn, ws, as_of=AS_OF)
    assert len(subs) > 5 and (subs["status"] == "cancelled").any()
    assert list(got.columns) == list(SUBSCRIPTION_COLUMNS)
    expected = _reference(subs, ws.time_zone, AS_OF)
    assert got["month"].tolist() == expected["month"].tolist()
    for name in expected.columns.drop("month"):
        assert got[name].to_numpy() == pytest.approx(expected[name].to_numpy()), name
    assert got["complete"].tolist() == [True] * (len(got) - 1) + [False]
    for row in got.itertuples():
        if row.customers_start == 0:
            assert (row.churn_rate, row.grr, row.nrr) == (None, None, None)
        else:
            assert row.churn_rate == pytest.approx(row.churned_customers / row.customers_start)
            assert row.grr <= 1.0 and row.nrr >= row.grr


def test_churn_contraction_expansion_and_a_tokyo_month_boundary(db, workspace, scope_factory):
    _contracts(
        scope_factory,
        [
            _contract("A", "churns", "2026-01-10T00:00:00Z", 3000, cancelled_at="2026-02-15T00:00Z",
                      status="cancelled"),
            _contract("B1", "expands", "2026-01-05T00:00:00Z", 2000),
            _contract("B2", "expands", "2026-02-10T00:00:00Z", 1000),
            _contract("C1", "contracts", "2026-01-06T00:00:00Z", 1500,
                      cancelled_at="2026-02-20T00:00Z", status="cancelled"),
            _contract("C2", "contracts", "2026-01-06T00:00:00Z", 900, interval_days=90),
            # 2026-01-31 15:30 UTC is 1 February 00:30 in Tokyo: new in February.
            _contract("D", "new", "2026-01-31T15:30:00Z", 600),
            _contract("E", "blip", "2026-02-03T00:00:00Z", 5000, cancelled_at="2026-02-09T00:00Z",
                      status="cancelled"),
        ],
    )  # fmt: skip
    with db.read() as conn:
        got = subscription_retention(conn, workspace, as_of=AS_OF)
    assert got["month"].tolist() == ["2026-01", "2026-02", "2026-03", "2026-04"]
    feb = got.set_index("month").loc["2026-02"]
    assert feb["customers_start"] == 3 and feb["contracts_start"] == 4
    assert feb["mrr_start"] == pytest.approx(3000 + 2000 + 1500 + 300)
    assert (feb["churned_customers"], feb["churned_mrr"]) == (1, pytest.approx(3000))
    assert feb["contraction_mrr"] == pytest.approx(1500)
    assert feb["expansion_mrr"] == pytest.approx(1000)
    assert (feb["new_customers"], feb["new_mrr"]) == (1, pytest.approx(600))
    assert feb["contracts_ended"] == 2  # A and C1; E never reached a month boundary
    assert feb["churn_rate"] == pytest.approx(1 / 3)
    assert feb["grr"] == pytest.approx((6800 - 3000 - 1500) / 6800)
    assert feb["nrr"] == pytest.approx((6800 - 3000 - 1500 + 1000) / 6800)
    jan = got.set_index("month").loc["2026-01"]
    assert (jan["customers_start"], jan["churn_rate"], jan["grr"]) == (0, None, None)
    assert jan["new_customers"] == 3  # churns, expands, contracts (new starts on 1 Feb)
    with db.read() as conn:
        march = subscription_retention(
            conn, workspace, as_of=AS_OF, since=datetime(2026, 3, 1, tzinfo=ZoneInfo("Asia/Tokyo"))
        )
    assert march["month"].tolist() == ["2026-03", "2026-04"]
    assert march["mrr_start"].iloc[0] == pytest.approx(2000 + 1000 + 300 + 600)


def test_no_contracts_gives_an_empty_table(db, workspace, scope_factory):
    with db.read() as conn:
        empty = subscription_retention(conn, workspace, as_of=AS_OF)
    assert empty.empty and list(empty.columns) == list(SUBSCRIPTION_COLUMNS)
    place(scope_factory, [order("O1", "x", "2026-01-05T00:00:00Z")])
    with db.read() as conn, pytest.raises(InvalidInput):
        subscription_retention(conn, workspace, as_of=AS_OF, currency="USD")


def _event(db, workspace, customer_id: str, name: str, at: datetime) -> None:
    with db.write() as conn:
        conn.execute(
            events.insert().values(
                workspace_id=workspace.workspace_id,
                customer_id=uuid.UUID(customer_id),
                event_id=new_id(),
                message_id=f"m-{uuid.uuid4().hex}",
                type="track",
                name=name,
                properties={},
                context={},
                occurred_at=at,
                received_at=at,
            )
        )


def test_success_phases_from_purchases_contracts_and_events(db, workspace, scope_factory):
    with db.read() as conn:
        nothing = success_phases(conn, workspace, as_of=AS_OF)
    assert nothing.empty and list(nothing.columns) == list(PHASE_COLUMNS)
    ids = place(
        scope_factory,
        [
            order("N1", "new", "2026-03-20T00:00:00Z"),
            order("R1", "repeat", "2025-01-10T00:00:00Z", 1000.0),
            order("R2", "repeat", "2026-02-01T00:00:00Z", 3000.0),
            order("V1", "reviewer", "2025-10-10T00:00:00Z"),
            order("K1", "caller", "2025-09-10T00:00:00Z"),
        ],
    )
    with db.read() as conn:
        before = success_phases(conn, workspace, as_of=AS_OF).set_index("phase")
    assert before.loc["renewal", "derived"] == False  # noqa: E712 (numpy bool)
    assert before.loc["renewal", "customers"] is None and before.loc["advocacy", "share"] is None
    assert before.loc["onboarding", "customers"] == 1
    _contracts(
        scope_factory,
        [
            _contract("S1", "subscriber", "2025-06-01T00:00:00Z", 1000,
                      renewed_at="2026-03-01T00:00:00Z"),
            _contract("G1", "grows", "2024-12-01T00:00:00Z", 1000),
            _contract("G2", "grows", "2025-10-01T00:00:00Z", 1000),
        ],
    )  # fmt: skip
    _event(db, workspace, ids["reviewer"], "Review Submitted", datetime(2026, 1, 5, tzinfo=UTC))
    _event(db, workspace, ids["caller"], "Call Center Contact", datetime(2025, 9, 20, tzinfo=UTC))
    _event(
        db, workspace, ids["caller"], "Referral Sent", datetime(2026, 5, 1, tzinfo=UTC)
    )  # future
    with db.read() as conn:
        got = success_phases(conn, workspace, as_of=AS_OF)
    assert list(got.columns) == list(PHASE_COLUMNS)
    table = got.set_index("phase")
    assert table["derived"].all()
    counts = table["customers"].to_dict()
    assert counts == {
        "onboarding": 1,
        "support": 1,
        "adoption": 1,
        "renewal": 1,
        "expansion": 2,  # repeat (spend 1,000 → 3,000) and grows (MRR 1,000 → 2,000)
        "advocacy": 1,
    }
    assert table.loc["adoption", "share"] == pytest.approx(1 / 6)
    assert table.loc["renewal", "label_ja"] == "更新・継続"
    with db.read() as conn:
        recent = success_phases(
            conn, workspace, as_of=AS_OF, since=datetime(2026, 1, 1, tzinfo=UTC)
        )
    assert recent.set_index("phase")["customers"].to_dict()["onboarding"] == 1
    assert recent.set_index("phase").loc["adoption", "customers"] == 0


def test_success_phases_agree_with_pandas_on_the_demo_shop(db):
    ws = demo_shop(db)
    p = reference_purchases(db, ws)
    with db.read() as conn:
        subs = read_frame(
            conn, sa.select(subscriptions).where(subscriptions.c.workspace_id == ws.workspace_id)
        )
        calls = read_frame(
            conn,
            sa.select(events.c.customer_id).where(
                events.c.workspace_id == ws.workspace_id,
                events.c.name == "Call Center Contact",
                events.c.occurred_at <= AS_OF,
            ),
        )
        got = success_phases(conn, ws, as_of=AS_OF).set_index("phase")
    touches = pd.concat(
        [
            p[["customer_id", "ordered_at"]].rename(columns={"ordered_at": "at"}),
            subs.loc[subs["started_at"] <= AS_OF, ["customer_id", "started_at"]].rename(
                columns={"started_at": "at"}
            ),
        ]
    )
    first = touches.groupby("customer_id")["at"].min()
    year = pd.Timedelta(days=365)
    recent = p.loc[p["ordered_at"] > AS_OF - year].groupby("customer_id")["amount"].sum()
    earlier = p.loc[(p["ordered_at"] <= AS_OF - year) & (p["ordered_at"] > AS_OF - 2 * year)]
    before = earlier.groupby("customer_id")["amount"].sum()
    grew = set(before.index[before > 0]) & set(
        recent.index[recent > before.reindex(recent.index).fillna(0)]
    )
    # Demo contracts never change amount and each customer has one: no MRR growth.
    assert subs["customer_id"].is_unique
    expected = {
        "onboarding": int((AS_OF - first < pd.Timedelta(days=30)).sum()),
        "support": calls.loc[calls["customer_id"].isin(first.index), "customer_id"].nunique(),
        "adoption": int((p.groupby("customer_id").size() >= 2).sum()),
        "renewal": subs.loc[subs["renewed_at"] <= AS_OF, "customer_id"].nunique(),
        "expansion": len(grew),
    }
    assert {k: got.loc[k, "customers"] for k in expected} == expected
    assert got.loc["advocacy", "derived"] == False  # noqa: E712 (numpy bool)
    assert got.loc["adoption", "share"] == pytest.approx(expected["adoption"] / len(first))
