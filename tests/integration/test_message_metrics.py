"""Message metrics, group outcomes and workspace rates on small hand-counted sends."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from kizuna.errors import InvalidInput
from kizuna.measurement.metrics import (
    METRIC_COLUMNS,
    GroupOutcome,
    group_outcomes,
    message_metrics,
    workspace_rates,
)
from kizuna.store.messages import MessageEvent, record_message_events
from kizuna.store.tables import messages
from kizuna.store.tables_campaigns import attributions
from kizuna.store.types import new_id
from tests.integration import attribution_rows as rows

DAY = timedelta(days=1)
NOON_JST = datetime(2026, 3, 30, 3, 0, tzinfo=UTC)  # 2026-03-30 12:00 in Tokyo
ONE_AM_JST = datetime(2026, 3, 30, 16, 0, tzinfo=UTC)  # 2026-03-31 01:00 in Tokyo


def _credit(scope: Any, message_id: uuid.UUID, customer: uuid.UUID, kind: str,
            source: tuple[str, str], revenue: float, key: str) -> None:  # fmt: skip
    """An attribution as the job writes it: a credit carries its message's labels."""
    m = messages.c
    found = sa.select(m.step, m.variant, m.channel).where(
        m.workspace_id == scope.workspace_id, m.message_id == message_id)  # fmt: skip
    labels = scope.conn.execute(found).one()._mapping
    scope.conn.execute(attributions.insert().values(
        workspace_id=scope.workspace_id, attribution_id=new_id(), conversion_key=key,
        customer_id=customer, kind=kind, source_kind=source[0], source_id=source[1],
        message_id=message_id if kind == "message" else None, touch="click", revenue=revenue,
        converted_at=scope.now, attributed_at=scope.now,
        **(labels if kind == "message" else {})))  # fmt: skip


@pytest.fixture
def sends(scope_factory, clock):
    """A campaign (A: a1 a2 + held ah; B: b1 b2 + held bh) and a scenario (s1 s2 + held s3 s4)."""
    t = clock.now()
    a1, a2, ah, b1, b2, bh, s1, s2, s3, s4 = (uuid.uuid4() for _ in range(10))
    with scope_factory() as scope:
        camp = rows.campaign(scope, t - 2 * DAY)
        cid = str(camp)
        m_a1 = rows.message(scope, a1, source_id=cid, variant="A", sent_at=NOON_JST,
                            delivered_at=NOON_JST, opened_at=NOON_JST,
                            clicked_at=NOON_JST)  # fmt: skip
        m_a2 = rows.message(scope, a2, source_id=cid, variant="A", sent_at=NOON_JST)
        rows.message(scope, b1, source_id=cid, variant="B", sent_at=ONE_AM_JST, status="bounced")
        rows.message(scope, b2, source_id=cid, variant="B", sent_at=ONE_AM_JST,
                     delivered_at=ONE_AM_JST, opened_at=ONE_AM_JST, unsubscribed_at=ONE_AM_JST,
                     status="complained")  # fmt: skip
        rows.message(scope, a1, source_kind="test", source_id=cid, variant="A", sent_at=NOON_JST)
        # A mail scanner's open proves delivery but is no open.
        record_message_events(scope, [MessageEvent(m_a2, "Message Opened", NOON_JST,
                                                   {"machine": True}, "open:machine")])  # fmt: skip
        rows.recipients(scope, camp, [(a1, False, "A", m_a1), (a2, False, "A", m_a2),
                                      (ah, True, "A", None), (b1, False, "B", None),
                                      (b2, False, "B", None), (bh, True, "B", None)])  # fmt: skip
        _credit(scope, m_a1, a1, "message", ("campaign", cid), 5000.0, "order:O-a1")
        _credit(scope, m_a1, ah, "control", ("campaign", cid), 2000.0, "order:O-ah")
        for who, n, revenue in ((a1, 1, 5000.0), (b2, 2, 3000.0), (ah, 1, 2000.0)):
            rows.set_outcome(scope, camp, who, n, revenue)
        rows.rfm(scope, a1, "champions")
        rows.rfm(scope, b1, "champions")

        scenario_id = rows.scenario(scope, "welcome")
        entered = t - 3 * DAY
        for who, held in ((s1, False), (s2, False), (s3, True), (s4, True)):
            rows.run(scope, scenario_id, who, entered, held_out=held)
        for who in (s1, s2):
            rows.message(scope, who, source_kind="scenario", source_id="welcome", step="mail-1",
                         sent_at=entered, delivered_at=entered)  # fmt: skip
        m_s1 = rows.message(scope, s1, source_kind="scenario", source_id="welcome",
                            step="mail-2", sent_at=entered + DAY, delivered_at=entered + DAY,
                            clicked_at=entered + DAY)  # fmt: skip
        _credit(scope, m_s1, s1, "message", ("scenario", "welcome"), 1000.0, "order:O-s1")
        rows.order(scope, s1, "O-s1", entered + DAY, 1000.0)
        rows.order(scope, s1, "O-s1-late", entered + 8 * DAY, 700.0)  # after the 7-day window
        rows.order(scope, s3, "O-s3", entered + 2 * DAY, 400.0)
        rows.order(scope, s3, "O-s3-x", entered + 2 * DAY, 999.0, status="cancelled")
    return {"campaign": cid}


def _row(frame: Any, **where: Any) -> dict[str, Any]:
    for record in frame.to_dict("records"):
        if all(record[k] == v or (v is None and record[k] is None) for k, v in where.items()):
            return dict(record)
    raise AssertionError(f"no row {where} in\n{frame}")


def _check(found: dict[str, Any], **expected: float) -> None:
    for name, value in expected.items():
        if math.isnan(value):
            assert math.isnan(found[name]), name
        else:
            assert found[name] == pytest.approx(value), name


NAN = math.nan


def test_campaign_metrics_overall(scope_factory, sends):
    with scope_factory() as scope:
        frame = message_metrics(scope, "campaign", sends["campaign"])
    assert list(frame.columns) == list(METRIC_COLUMNS) and len(frame) == 1
    _check(frame.iloc[0].to_dict(), targeted=6, held_out=2, sent=4, delivered=3,
           delivery_rate=3 / 4, unique_opens=2, open_rate=2 / 3, clicks=1, ctr=1 / 3,
           click_to_open=1 / 2, conversions=1, cvr=1 / 3, revenue=5000, revenue_per_recipient=1250,
           unsubscribes=1, bounces=1, complaints=1)  # fmt: skip


def test_campaign_metrics_by_variant_and_day(scope_factory, sends):
    with scope_factory() as scope:
        by_variant = message_metrics(scope, "campaign", sends["campaign"], ["variant"])
        by_day = message_metrics(scope, "campaign", sends["campaign"], ["day"])
    assert list(by_variant.columns) == ["variant", *METRIC_COLUMNS]
    _check(_row(by_variant, variant="A"), targeted=3, held_out=1, sent=2, delivered=2,
           delivery_rate=1, unique_opens=1, open_rate=1 / 2, clicks=1, ctr=1 / 2, click_to_open=1,
           conversions=1, cvr=1 / 2, revenue=5000, revenue_per_recipient=2500,
           bounces=0)  # fmt: skip
    _check(_row(by_variant, variant="B"), targeted=3, held_out=1, sent=2, delivered=1,
           delivery_rate=1 / 2, unique_opens=1, open_rate=1, clicks=0, ctr=0, click_to_open=0,
           conversions=0, cvr=0, revenue=0, unsubscribes=1, bounces=1, complaints=1)  # fmt: skip
    # Days are Tokyo dates; the audience has no day, so targeted and held_out are NaN.
    assert list(by_day["day"]) == ["2026-03-30", "2026-03-31"]
    _check(_row(by_day, day="2026-03-31"), targeted=NAN, held_out=NAN, sent=2, delivered=1)


def test_campaign_metrics_by_rfm_segment(scope_factory, sends):
    with scope_factory() as scope:
        frame = message_metrics(scope, "campaign", sends["campaign"], ["rfm_segment"])
    _check(_row(frame, rfm_segment="champions"), targeted=2, held_out=0, sent=2, delivered=1,
           unique_opens=1, clicks=1, conversions=1, revenue=5000, bounces=1)  # fmt: skip
    _check(_row(frame, rfm_segment=None), targeted=4, held_out=2, sent=2, delivered=2,
           unique_opens=1, clicks=0, unsubscribes=1, complaints=1)  # fmt: skip


def test_scenario_metrics_by_step(scope_factory, sends):
    with scope_factory() as scope:
        overall = message_metrics(scope, "scenario", "welcome")
        by_step = message_metrics(scope, "scenario", "welcome", ["step"])
    _check(overall.iloc[0].to_dict(), targeted=4, held_out=2, sent=3, delivered=3, clicks=1,
           conversions=1, revenue=1000, revenue_per_recipient=1000 / 3)  # fmt: skip
    _check(_row(by_step, step="mail-1"), targeted=NAN, sent=2, delivered=2, clicks=0,
           click_to_open=NAN, conversions=0)  # fmt: skip
    _check(_row(by_step, step="mail-2"), sent=1, delivered=1, clicks=1, ctr=1, conversions=1,
           cvr=1, revenue=1000)  # fmt: skip


def test_group_outcomes_of_a_campaign(scope_factory, sends):
    with scope_factory() as scope:
        overall = group_outcomes(scope, "campaign", sends["campaign"])
        per_variant = group_outcomes(scope, "campaign", sends["campaign"], by_variant=True)
    assert overall == [
        GroupOutcome("treatment", None, 4, 2, 8000.0, 5000.0**2 + 3000.0**2),
        GroupOutcome("control", None, 2, 1, 2000.0, 2000.0**2),
    ]
    assert per_variant == [
        GroupOutcome("treatment", "A", 2, 1, 5000.0, 5000.0**2),
        GroupOutcome("control", "A", 1, 1, 2000.0, 2000.0**2),
        GroupOutcome("treatment", "B", 2, 1, 3000.0, 3000.0**2),
        GroupOutcome("control", "B", 1, 0, 0.0, 0.0),
    ]


def test_group_outcomes_of_a_scenario(scope_factory, sends):
    """Orders within 7 days of entering, cancelled ones left out."""
    with scope_factory() as scope:
        found = group_outcomes(scope, "scenario", "welcome")
    assert found == [
        GroupOutcome("treatment", None, 2, 1, 1000.0, 1000.0**2),
        GroupOutcome("control", None, 2, 1, 400.0, 400.0**2),
    ]


def test_workspace_rates(scope_factory, sends):
    with scope_factory() as scope:
        frame = workspace_rates(scope)
    assert list(frame.columns) == [
        "source_kind", "source_id", "sent", "delivery_rate", "open_rate", "ctr", "cvr"
    ]  # fmt: skip
    assert list(zip(frame["source_kind"], frame["source_id"], strict=True)) == [
        ("campaign", sends["campaign"]), ("scenario", "welcome")
    ]  # fmt: skip
    _check(_row(frame, source_kind="campaign"), sent=4, delivery_rate=3 / 4, open_rate=2 / 3,
           ctr=1 / 3, cvr=1 / 3)  # fmt: skip
    _check(_row(frame, source_kind="scenario"), sent=3, delivery_rate=1, open_rate=0,
           ctr=1 / 3, cvr=1 / 3)  # fmt: skip


def test_an_empty_source_has_one_row_of_zeros(scope_factory):
    with scope_factory() as scope:
        frame = message_metrics(scope, "scenario", "nothing")
        outcomes = group_outcomes(scope, "campaign", str(uuid.uuid4()))
    _check(frame.iloc[0].to_dict(), targeted=0, sent=0, delivery_rate=NAN, cvr=NAN)
    assert [o.customers for o in outcomes] == [0, 0]


def test_bad_dimensions_and_ids_are_refused(scope_factory):
    with scope_factory() as scope, pytest.raises(InvalidInput) as bad:
        message_metrics(scope, "campaign", str(uuid.uuid4()), ["week"])
    assert "week" in str(bad.value)
    with scope_factory() as scope, pytest.raises(InvalidInput):
        group_outcomes(scope, "campaign", "spring")
