"""Saving campaigns, and the checks before sending, each with the number that made it so."""

from __future__ import annotations

import pytest

from kizuna.campaigns.definition import parse_campaign
from kizuna.campaigns.flow import approve_campaign, check_campaign, submit_campaign
from kizuna.errors import Conflict, InvalidInput
from kizuna.segments.power import minimum_detectable_effect
from kizuna.store.campaigns import get_campaign, save_campaign
from kizuna.store.operation_log import Actor
from tests.integration.campaign_shop import (
    EVERYONE,
    SPRING,
    add_bare_customers,
    build_shop,
    save,
    set_segment,
)

BOSS = Actor("user:boss", "pytest")


def _check(scope_factory, key: str = "spring"):
    with scope_factory() as scope:
        return check_campaign(scope, key)


def test_names_are_checked_against_the_workspace_when_saved(scope_factory, clock):
    build_shop(scope_factory, clock)
    spec = {**SPRING, "segment": "ghosts", "topic": "gossip",
            "variants": [{"key": "A", "template": "nope"},
                         {"key": "B", "template": "spring-line"}]}  # fmt: skip
    with scope_factory() as scope, pytest.raises(InvalidInput) as caught:
        save_campaign(scope, parse_campaign(spec), "t")
    assert [(p.code, p.field) for p in caught.value.problems] == [
        ("unknown_segment", "segment"),
        ("unknown_template", "variants[0].template"),
        ("template_channel", "variants[1].template"),
        ("unknown_topic", "topic"),
    ]


def test_a_draft_is_edited_in_place_but_not_once_approved(scope_factory, clock):
    build_shop(scope_factory, clock)
    first = save(scope_factory, SPRING)
    with scope_factory() as scope:
        submit_campaign(scope, "spring", BOSS)
    again = save(scope_factory, {**SPRING, "name": "春のセール(改)"})
    assert again.campaign_id == first.campaign_id and again.name == "春のセール(改)"
    assert again.status == "draft"  # an edited submission must be submitted again
    with scope_factory() as scope:
        submit_campaign(scope, "spring", BOSS)
    with scope_factory() as scope:
        approve_campaign(scope, "spring", BOSS)
    with pytest.raises(Conflict, match="scheduled"):
        save(scope_factory, SPRING)


def test_an_empty_segment_is_refused_with_its_count(scope_factory, clock):
    build_shop(scope_factory, clock)
    save(scope_factory, {**SPRING, "segment": "nobody"})
    report = _check(scope_factory)
    assert report.refused and report.members == 0
    (finding,) = report.findings
    assert (finding.code, finding.severity, finding.number) == ("segment_empty", "refusal", 0)
    with scope_factory() as scope:  # stored with the campaign
        assert get_campaign(scope, "spring").checks["findings"][0]["code"] == "segment_empty"
    with scope_factory() as scope, pytest.raises(InvalidInput) as caught:
        submit_campaign(scope, "spring", BOSS)
    assert "0 customers" in caught.value.problems[1].message


def test_a_template_that_fails_for_a_sample_customer_names_the_customer_and_error(
    scope_factory, clock
):
    ids = build_shop(scope_factory, clock)
    spec = {**SPRING, "variants": [{"key": "A", "template": "spring-a"},
                                   {"key": "B", "template": "broken"}]}  # fmt: skip
    save(scope_factory, spec)
    report = _check(scope_factory)
    (finding,) = [f for f in report.findings if f.severity == "refusal"]
    assert finding.code == "render_failed" and finding.details["variant"] == "B"
    assert finding.details["customer_id"] in {str(i) for i in ids}
    assert "division" in finding.details["error"]
    assert finding.details["customer_id"] in finding.message


def test_a_channel_nobody_can_be_reached_on_is_refused(scope_factory, clock):
    build_shop(scope_factory, clock)
    add_bare_customers(scope_factory, 30)
    set_segment(scope_factory, "bare", {**EVERYONE, "op": "not_exists"})
    save(scope_factory, {**SPRING, "segment": "bare"})
    report = _check(scope_factory)
    assert (report.members, report.reachable) == (30, 0)
    codes = {f.code: f for f in report.findings}
    assert codes["no_reachable"].severity == "refusal" and codes["no_reachable"].number == 0
    assert "0 reachable of 30" in codes["no_reachable"].message


def test_a_small_control_group_is_warned_with_its_minimum_detectable_effect(scope_factory, clock):
    build_shop(scope_factory, clock, customers_=20)
    save(scope_factory, SPRING)
    report = _check(scope_factory)
    assert not report.refused
    assert (report.members, report.treatment, report.control) == (20, 18, 2)
    (finding,) = report.findings
    assert finding.code == "control_too_small" and finding.severity == "warning"
    expected = minimum_detectable_effect(18, 2, finding.details["baseline"])
    assert finding.number == pytest.approx(expected.relative)
    assert "95 % confidence / 80 % power" in finding.message
    assert finding.details["members_needed"] > 20


def test_no_control_group_is_warned(scope_factory, clock):
    build_shop(scope_factory, clock)
    save(scope_factory, {**SPRING, "control_percent": 0})
    report = _check(scope_factory)
    (finding,) = report.findings
    assert (finding.code, finding.severity, finding.number) == ("no_control", "warning", 0)


def test_a_channel_without_a_provider_is_refused(scope_factory, clock):
    build_shop(scope_factory, clock)  # email goes to a provider; LINE to none
    save(scope_factory, {**SPRING, "key": "line-sale", "channel": "line",
                         "variants": [{"key": "A", "template": "spring-line"}]})  # fmt: skip
    report = _check(scope_factory, "line-sale")
    (missing,) = [f for f in report.findings if f.code == "no_provider"]
    assert missing.severity == "refusal" and missing.number == 0 and "line" in missing.message
    assert report.refused
    save(scope_factory, SPRING)
    assert all(f.code != "no_provider" for f in _check(scope_factory).findings)
