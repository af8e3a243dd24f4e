"""Frequency caps and quiet hours, the rules every marketing send obeys."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from kizuna.delivery.rules import cap_frees_at, cap_reached, cap_window, quiet_until
from kizuna.delivery.settings import FrequencyCap, QuietHours, parse_delivery_settings
from kizuna.errors import InvalidInput

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo
CAPS = [
    FrequencyCap(channel="email", max_messages=2, days=7),
    FrequencyCap(channel="line", max_messages=1, days=1),
]


def test_email_cap_counts_only_email_inside_its_window() -> None:
    sent = [("email", NOW - timedelta(days=1)), ("line", NOW - timedelta(hours=1))]
    assert cap_reached(CAPS, "email", sent, NOW) is None
    sent.append(("email", NOW - timedelta(days=6)))
    assert cap_reached(CAPS, "email", sent, NOW) == CAPS[0]
    # a send older than the window no longer counts
    old = [("email", NOW - timedelta(days=8)), ("email", NOW - timedelta(days=1))]
    assert cap_reached(CAPS, "email", old, NOW) is None


def test_line_cap_is_one_per_day_and_independent_of_email() -> None:
    assert cap_reached(CAPS, "line", [("email", NOW)], NOW) is None
    assert cap_reached(CAPS, "line", [("line", NOW - timedelta(hours=23))], NOW) == CAPS[1]
    assert cap_reached(CAPS, "line", [("line", NOW - timedelta(hours=25))], NOW) is None


def test_a_cap_on_any_channel_counts_every_channel() -> None:
    caps = [FrequencyCap(channel="any", max_messages=3, days=7)]
    sent = [("email", NOW), ("line", NOW), ("sms", NOW)]
    assert cap_reached(caps, "push", sent, NOW) == caps[0]
    assert cap_window(caps + CAPS) == timedelta(days=7)
    assert cap_window([]) == timedelta(0)


def test_overnight_quiet_hours_end_at_the_local_morning() -> None:
    quiet = QuietHours(start=time(21), end=time(9))
    night = datetime(2026, 11, 23, 13, 30, tzinfo=UTC)  # 22:30 Tokyo
    assert quiet_until(quiet, "line", night, "Asia/Tokyo") == datetime(
        2026, 11, 24, 0, 0, tzinfo=UTC
    )  # 09:00 Tokyo next day
    early = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 05:00 Tokyo on the 24th
    assert quiet_until(quiet, "line", early, "Asia/Tokyo") == datetime(
        2026, 11, 24, 0, 0, tzinfo=UTC
    )
    assert quiet_until(quiet, "line", NOW, "Asia/Tokyo") is None  # noon


def test_quiet_hours_follow_the_workspace_time_zone_and_channels() -> None:
    quiet = QuietHours(start=time(21), end=time(9), channels=["sms", "line"])
    night_in_tokyo = datetime(2026, 11, 23, 13, 30, tzinfo=UTC)
    assert quiet_until(quiet, "email", night_in_tokyo, "Asia/Tokyo") is None
    assert quiet_until(quiet, "sms", night_in_tokyo, "Asia/Tokyo") is not None
    # 15:00 UTC is midnight in Tokyo (quiet) but 10:00 in New York (not)
    later = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert quiet_until(quiet, "sms", later, "Asia/Tokyo") is not None
    assert quiet_until(quiet, "sms", later, "America/New_York") is None
    daytime = QuietHours(start=time(12), end=time(13))
    assert quiet_until(daytime, "email", NOW, "Asia/Tokyo") == NOW + timedelta(hours=1)


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_delivery_settings({"frequency_caps": [{"channel": "fax", "max_messages": 0}]})
    fields = {p.field for p in caught.value.problems}
    assert "frequency_caps.0.channel" in fields
    assert "frequency_caps.0.max_messages" in fields
    assert "frequency_caps.0.days" in fields


def test_a_capped_send_fits_again_when_enough_sends_leave_the_window() -> None:
    cap = FrequencyCap(channel="email", max_messages=2, days=7)
    first, second = NOW - timedelta(days=6), NOW - timedelta(days=2)
    sent = [("email", second), ("line", NOW), ("email", first)]
    assert cap_frees_at(cap, sent, NOW) == first + timedelta(days=7)
