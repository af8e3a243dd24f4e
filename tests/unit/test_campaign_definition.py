"""Campaign definitions: shape rules, and problems that name the field and the file's line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kizuna.campaigns.definition import (
    campaign_schema,
    load_campaign_text,
    parse_campaign,
    send_instant,
)
from kizuna.errors import InvalidInput

GOOD = {
    "key": "spring", "name": "春のセール", "segment": "buyers", "channel": "email",
    "variants": [{"key": "A", "template": "spring-a", "weight": 1}],
}  # fmt: skip


def _problems(data: dict) -> list[tuple[str, str | None]]:
    with pytest.raises(InvalidInput) as caught:
        parse_campaign(data)
    return [(p.code, p.field) for p in caught.value.problems]


def test_defaults_match_what_measurement_reads():
    spec = parse_campaign(GOOD)
    assert spec.control_percent == 10 and spec.window_days == 7
    assert (spec.click_window_days, spec.open_window_days, spec.delivery_window_days) == (7, 3, 3)
    assert spec.schedule.kind == "now" and spec.goal is None and spec.purpose == "marketing"
    assert "variants" in campaign_schema()["properties"]


def test_weights_must_be_positive_and_variant_keys_unique():
    bad = {**GOOD, "variants": [{"key": "A", "template": "t", "weight": 0}]}
    assert _problems(bad) == [("invalid_greater_than", "variants[0].weight")]
    twice = {**GOOD, "variants": [{"key": "A", "template": "t"}, {"key": "A", "template": "u"}]}
    assert [code for code, _ in _problems(twice)] == ["invalid_value_error"]


def test_control_percent_is_0_to_50_and_a_schedule_needs_its_fields():
    assert _problems({**GOOD, "control_percent": 60}) == [
        ("invalid_less_than_equal", "control_percent")
    ]
    assert _problems({**GOOD, "schedule": {"kind": "local_time", "local_time": "10:00"}}) == [
        ("invalid_value_error", "schedule")
    ]
    assert _problems({**GOOD, "channel": "fax"})[0][1] == "channel"


def test_a_files_problems_carry_their_line():
    text = (
        "key: spring\n"
        "name: 春のセール\n"
        "segment: buyers\n"
        "channel: email\n"
        "variants:\n"
        "  - {key: A, template: spring-a, weight: 1}\n"
        "  - {key: B, template: spring-b, weight: -2}\n"
        "control_percent: 10\n"
    )
    with pytest.raises(InvalidInput) as caught:
        load_campaign_text(text)
    (problem,) = caught.value.problems
    assert (problem.field, problem.line) == ("variants[1].weight", 7)
    with pytest.raises(InvalidInput) as caught:
        load_campaign_text("key: [unclosed\n")
    assert caught.value.problems[0].code == "invalid_yaml"


def test_schedules_resolve_to_one_utc_instant():
    now = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)
    local = parse_campaign(
        {**GOOD, "schedule": {"kind": "local_time", "date": "2026-04-03", "local_time": "10:00"}}
    )
    assert send_instant(local, now, "Asia/Tokyo") == datetime(2026, 4, 3, 1, 0, tzinfo=UTC)
    zoneless = parse_campaign({**GOOD, "schedule": {"kind": "at", "at": "2026-04-03T10:00"}})
    assert send_instant(zoneless, now, "Asia/Tokyo") == datetime(2026, 4, 3, 1, 0, tzinfo=UTC)
    zoned = parse_campaign({**GOOD, "schedule": {"kind": "at", "at": "2026-04-03T10:00Z"}})
    assert send_instant(zoned, now, "Asia/Tokyo") == datetime(2026, 4, 3, 10, 0, tzinfo=UTC)
    assert send_instant(parse_campaign(GOOD), now, "Asia/Tokyo") == now
