"""Campaign approval, freeze and send: split proportions, control group, idempotency, delivery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from kizuna.campaigns.flow import (
    approve_campaign,
    cancel_campaign,
    recipient_counts,
    submit_campaign,
)
from kizuna.campaigns.send import freeze_and_send, send_due_campaigns
from kizuna.delivery.pipeline import Pipeline
from kizuna.errors import Conflict, InvalidInput
from kizuna.store.campaigns import get_campaign
from kizuna.store.operation_log import Actor
from kizuna.store.tables import operation_log
from kizuna.store.tables_campaigns import campaigns
from tests.integration.campaign_shop import (
    NOBODY,
    SPRING,
    add_bare_customers,
    build_shop,
    campaign_messages,
    recipients,
    save,
    set_segment,
)

BOSS = Actor("user:boss", "pytest")


def _approve(scope_factory, key: str = "spring") -> None:
    with scope_factory() as scope:
        submit_campaign(scope, key, BOSS)
    with scope_factory() as scope:
        approve_campaign(scope, key, BOSS)


def test_an_approved_campaign_freezes_its_audience_and_sends_through_the_pipeline(
    db, scope_factory, clock
):
    ids = build_shop(scope_factory, clock, customers_=6)
    save(scope_factory, {**SPRING, "control_percent": 0})
    _approve(scope_factory)
    with scope_factory() as scope:
        assert get_campaign(scope, "spring").status == "scheduled"
    assert send_due_campaigns(db) == 1
    found = recipients(db)
    assert {r["customer_id"] for r in found} == set(ids)
    assert not any(r["held_out"] for r in found)
    sent = campaign_messages(db)
    assert len(sent) == 6
    by_customer = {r["customer_id"]: r for r in found}
    for m in sent:
        mine = by_customer[m["customer_id"]]
        assert m["message_id"] == mine["message_id"] and isinstance(m["message_id"], uuid.UUID)
        assert m["message_id"].version == 4  # a valid random UUID on both dialects
        assert m["variant"] == mine["variant"]
        assert m["template_key"] == {"A": "spring-a", "B": "spring-b"}[m["variant"]]
        assert m["idempotency_key"] == f"campaign:{mine['campaign_id']}:{m['customer_id']}"
        assert m["source_id"] == str(mine["campaign_id"]) and m["status"] == "queued"
    pipeline = Pipeline(db)
    try:
        outcomes = dict(pipeline.drain_all().outcomes)
    finally:
        pipeline.close()
    assert outcomes == {"sent": 6}
    assert {m["status"] for m in campaign_messages(db)} == {"sent"}
    with scope_factory() as scope:
        saved = get_campaign(scope, "spring")
    assert (saved.status, saved.targeted, saved.held_out) == ("sent", 6, 0)
    assert saved.frozen_at is not None
    assert send_due_campaigns(db) == 0  # sent once


def test_the_split_is_deterministic_and_in_proportion_and_the_held_out_get_nothing(
    db, scope_factory, clock
):
    build_shop(scope_factory, clock, customers_=1)
    add_bare_customers(scope_factory, 3000)
    spec = {**SPRING, "segment": "all", "control_percent": 20,
            "variants": [{"key": "A", "template": "spring-a", "weight": 3},
                         {"key": "B", "template": "spring-b", "weight": 1}]}  # fmt: skip
    save(scope_factory, spec)
    _approve(scope_factory)
    send_due_campaigns(db)
    found = recipients(db)
    assert len(found) == 3001
    held = [r for r in found if r["held_out"]]
    assert 0.17 < len(held) / len(found) < 0.23
    treated = [r for r in found if not r["held_out"]]
    share_a = sum(r["variant"] == "A" for r in treated) / len(treated)
    assert 0.72 < share_a < 0.78
    assert all(r["message_id"] is None for r in held)
    sent_to = {m["customer_id"] for m in campaign_messages(db)}
    assert sent_to == {r["customer_id"] for r in treated}
    counts = {(c["group"], c["variant"]): c for c in
              (dict(x) for x in _counts(scope_factory))}  # fmt: skip
    assert sum(c["customers"] for c in counts.values()) == 3001
    assert counts[("control", "A")]["messages"] == 0
    # The draw is a hash of campaign and customer: freezing again draws the same.
    draw = {r["customer_id"]: (r["held_out"], r["variant"]) for r in found}
    with scope_factory() as scope:
        scope.conn.execute(sa.delete(campaigns.metadata.tables["campaign_recipients"]))
        scope.conn.execute(campaigns.update().values(status="scheduled"))
    with scope_factory() as scope:
        freeze_and_send(scope, "spring")
    assert {r["customer_id"]: (r["held_out"], r["variant"]) for r in recipients(db)} == draw


def _counts(scope_factory):
    with scope_factory() as scope:
        return recipient_counts(scope, "spring")


def test_a_send_repeated_after_a_crash_queues_nothing_twice(db, scope_factory, clock):
    build_shop(scope_factory, clock, customers_=5)
    save(scope_factory, {**SPRING, "control_percent": 0})
    _approve(scope_factory)
    send_due_campaigns(db)
    first = {m["message_id"] for m in campaign_messages(db)}
    # As if the worker died after the send committed but before it knew: run it again.
    with scope_factory() as scope:
        scope.conn.execute(campaigns.update().values(status="scheduled"))
    with scope_factory() as scope:
        report = freeze_and_send(scope, "spring")
    assert report.queued == 0 and report.targeted == 5
    assert {m["message_id"] for m in campaign_messages(db)} == first
    assert len(recipients(db)) == 5


def test_approval_needs_submission_logs_who_and_cancel_stops_a_scheduled_send(
    db, scope_factory, clock
):
    build_shop(scope_factory, clock)
    save(scope_factory, SPRING)
    with scope_factory() as scope, pytest.raises(Conflict, match="awaiting_approval"):
        approve_campaign(scope, "spring", BOSS)
    _approve(scope_factory)
    with db.read() as conn:
        logged = conn.execute(
            sa.select(operation_log.c.action, operation_log.c.actor, operation_log.c.target)
        ).all()
    assert ("campaign.approve", "user:boss", "campaign:spring") in [tuple(r) for r in logged]
    assert ("campaign.submit", "user:boss", "campaign:spring") in [tuple(r) for r in logged]
    with scope_factory() as scope:
        cancel_campaign(scope, "spring", BOSS)
    assert send_due_campaigns(db) == 0
    assert campaign_messages(db) == []
    with scope_factory() as scope, pytest.raises(Conflict):
        cancel_campaign(scope, "spring", BOSS)


def test_approve_reruns_the_checks_and_refuses_an_empty_segment(db, scope_factory, clock):
    build_shop(scope_factory, clock)
    save(scope_factory, SPRING)
    with scope_factory() as scope:
        submit_campaign(scope, "spring", BOSS)
    set_segment(scope_factory, "buyers", NOBODY)  # it empties between submission and approval
    with scope_factory() as scope, pytest.raises(InvalidInput) as caught:
        approve_campaign(scope, "spring", BOSS)
    assert [p.code for p in caught.value.problems] == ["refused", "segment_empty"]
    with scope_factory() as scope:
        assert get_campaign(scope, "spring").status == "awaiting_approval"


def test_a_local_time_schedule_waits_for_that_instant_in_the_workspace_zone(
    db, scope_factory, clock
):
    build_shop(scope_factory, clock)
    # The clock stands at 2026-04-01 12:00 in Tokyo; send on the 3rd at 10:00 Tokyo time.
    schedule = {"kind": "local_time", "date": "2026-04-03", "local_time": "10:00"}
    save(scope_factory, {**SPRING, "schedule": schedule, "control_percent": 0})
    _approve(scope_factory)
    instant = datetime(2026, 4, 3, 1, 0, tzinfo=UTC)
    with scope_factory() as scope:
        assert get_campaign(scope, "spring").send_at == instant
    assert send_due_campaigns(db) == 0
    clock.advance(timedelta(days=2))  # 04-03 12:00 JST: due
    assert send_due_campaigns(db) == 1
    assert {m["not_before"] for m in campaign_messages(db)} == {instant}
    assert {r["send_at"] for r in recipients(db)} == {instant}


def test_a_schedule_already_past_is_warned_and_sends_at_once(db, scope_factory, clock):
    build_shop(scope_factory, clock)
    schedule = {"kind": "at", "at": "2026-03-31T12:00:00+09:00"}  # 24 h before the clock
    save(scope_factory, {**SPRING, "schedule": schedule, "control_percent": 0})
    with scope_factory() as scope:
        report = submit_campaign(scope, "spring", BOSS)
    (late,) = [f for f in report.findings if f.code == "schedule_past"]
    assert (late.severity, late.number) == ("warning", 24.0)
    with scope_factory() as scope:
        approve_campaign(scope, "spring", BOSS)
    assert send_due_campaigns(db) == 1


def test_a_campaign_that_cannot_be_sent_fails_with_the_reason_and_writes_nothing(
    db, scope_factory, clock
):
    from kizuna.store.segments import archive_segment

    build_shop(scope_factory, clock)
    save(scope_factory, {**SPRING, "control_percent": 0})
    _approve(scope_factory)
    with scope_factory() as scope:
        archive_segment(scope, SPRING["segment"])
    assert send_due_campaigns(db) == 0
    with scope_factory() as scope:
        failed = get_campaign(scope, "spring")
    assert failed.status == "failed" and SPRING["segment"] in failed.checks["send_error"]
    assert recipients(db) == [] and campaign_messages(db) == []
    assert send_due_campaigns(db) == 0  # not tried again every few seconds
