"""Live counts and the 4R report on a shop whose numbers are known by hand."""

from __future__ import annotations

import math

import pytest

from kizuna.errors import InvalidInput, NotFound
from kizuna.segments.definition import parse_condition, parse_spec
from kizuna.segments.power import minimum_detectable_effect, required_size
from kizuna.segments.report import (
    ReportOptions,
    count_draft,
    count_segment,
    report_rows,
    segment_report,
)
from kizuna.store.segments import save_segment
from tests.integration.segment_shop import build_shop


@pytest.fixture
def shop(scope_factory):
    with scope_factory() as scope:
        return build_shop(scope)


def _reach(report_or_counts):
    channels = getattr(report_or_counts, "reach", None) or report_or_counts.channels
    return {c.channel: c for c in channels}


def test_counts_by_channel(db, shop):
    counts = count_segment(db, "shop", "tokyo")
    assert counts.customers == 4
    reach = _reach(counts)
    email = reach["email"]
    assert (email.opted_in, email.has_address, email.suppressed) == (2, 2, 1)
    assert (email.not_suppressed, email.reachable, email.reachable_share) == (1, 1, 0.25)
    assert (reach["sms"].has_address, reach["sms"].reachable) == (2, 1)  # C1 has a phone
    assert reach["line"].reachable == 1 and reach["push"].has_address == 0
    assert counts.reachable("email") == 1
    assert (reach["email"].label_ja, reach["push"].label_en) == ("メール", "App push")


def test_a_draft_is_checked_then_counted(db, shop):
    draft = parse_condition(
        {"type": "and", "conditions": [{"type": "segment", "segment": "tokyo"},
                                       {"type": "orders", "within": {"days": 365}}]}
    )  # fmt: skip
    assert count_draft(db, "shop", draft).customers == 2  # C1, C2 (C3's order is old)
    bad = parse_condition(
        {"type": "and", "conditions": [{"type": "trait", "trait": "shoe_size", "op": "eq",
                                        "value": 1}]}
    )  # fmt: skip
    with pytest.raises(InvalidInput) as error:
        count_draft(db, "shop", bad)
    assert error.value.problems[0].field == "conditions[0].trait"


def test_the_four_r_numbers(db, shop):
    report = segment_report(db, "shop", "tokyo")
    r = report.realistic
    assert (r.members, r.customers, r.customer_share) == (4, 10, 0.4)
    assert (r.revenue, r.total_revenue, r.revenue_share) == (18000.0, 20000.0, 0.9)
    assert r.currency == "JPY" and (r.as_of - r.revenue_since).days == 365
    assert _reach(report)["email"].reachable == 1
    s = report.response
    assert (s.treatment, s.control) == (4, 0)  # 10% of 4 members rounds down to nobody
    assert s.mde_relative is None and s.effect_size is None and not s.measurable
    assert s.members_needed == required_size(0.02, 0.2, control_share=0.1).total
    assert report.rank == 2 and report.labels["reach"] == ("到達", "Reach")
    rows = {metric: value for _, metric, _, _, value in report_rows(report)}
    assert rows["members"] == 4 and rows["rank"] == 2 and rows["measurable"] is False


def test_response_follows_the_marketer_assumptions(db, shop):
    options = ReportOptions(baseline=0.3, control_share=0.5, lift=2.0, revenue_days=20)
    s = segment_report(db, "shop", "tokyo", options).response
    expected = minimum_detectable_effect(2, 2, 0.3)
    assert (s.treatment, s.control) == (2, 2)
    assert s.effect_size == pytest.approx(expected.effect_size) and math.isfinite(s.effect_size)
    assert s.confidence == 0.95 and s.power == 0.8
    # Two against two would need a rate above 100%: nothing is detectable.
    assert s.detectable_rate is None and s.mde_absolute is None and not s.measurable
    assert s.members_needed == required_size(0.3, 2.0, control_share=0.5).total
    realistic = segment_report(db, "shop", "tokyo", options).realistic
    assert realistic.total_revenue == 0.0 and realistic.revenue_share is None  # 30 days ago


def test_bad_options_and_unknown_segments(db, shop):
    with pytest.raises(InvalidInput) as error:
        segment_report(db, "shop", "tokyo", ReportOptions(baseline=0, control_share=1.5))
    assert {p.field for p in error.value.problems} == {"baseline", "control_share"}
    with pytest.raises(NotFound):
        segment_report(db, "shop", "nobody")
    with pytest.raises(NotFound):
        count_segment(db, "elsewhere", "tokyo")


def test_a_big_enough_split_is_measurable(db, shop, scope_factory):
    everyone = {"key": "everyone", "name": "全員",
                "condition": {"type": "location", "regions": ["関東", "関西"]}}  # fmt: skip
    with scope_factory() as scope:
        save_segment(scope, parse_spec(everyone), "tester")
    # Five against five at a 10% baseline detect a rate of about 87% (+774%).
    options = ReportOptions(baseline=0.1, control_share=0.5, lift=8.0)
    s = segment_report(db, "shop", "everyone", options).response
    assert (s.treatment, s.control) == (5, 5)
    assert s.mde_relative == pytest.approx(minimum_detectable_effect(5, 5, 0.1).relative)
    assert 7 < s.mde_relative < 8 and s.measurable
    stricter = segment_report(db, "shop", "everyone", ReportOptions(0.1, 0.5, lift=7.0))
    assert not stricter.response.measurable
