"""Normalization of identifiers and dates as Japanese shop data needs it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kizuna.domain.normalize import (
    normalize_email,
    normalize_phone,
    normalize_postal_code,
    parse_date,
    parse_datetime,
)
from kizuna.errors import InvalidInput


def test_email_is_trimmed_and_lower_cased():
    assert normalize_email("  Taro.Yamada@Example.COM ") == "taro.yamada@example.com"


def test_invalid_email_names_the_field():
    with pytest.raises(InvalidInput) as info:
        normalize_email("taro-at-example.com", field="メールアドレス")
    assert info.value.problems[0].field == "メールアドレス"
    assert info.value.problems[0].code == "invalid_email"


@pytest.mark.parametrize(
    "raw", ["090-1234-5678", "０９０－１２３４－５６７８", "+81 90 1234 5678", "09012345678"]
)
def test_japanese_mobile_numbers_become_e164(raw):
    assert normalize_phone(raw) == "+819012345678"


def test_impossible_phone_is_rejected():
    with pytest.raises(InvalidInput):
        normalize_phone("12")


@pytest.mark.parametrize("raw", ["1234567", "123-4567", "〒１２３－４５６７", "１２３４５６７"])
def test_postal_codes_are_normalized(raw):
    assert normalize_postal_code(raw) == "123-4567"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024/4/1", datetime(2024, 3, 31, 15, 0, tzinfo=UTC)),
        ("2024-04-01 10:00", datetime(2024, 4, 1, 1, 0, tzinfo=UTC)),
        ("2024年4月1日", datetime(2024, 3, 31, 15, 0, tzinfo=UTC)),
        ("2024-04-01T10:00:00Z", datetime(2024, 4, 1, 10, 0, tzinfo=UTC)),
        ("45383", datetime(2024, 3, 31, 15, 0, tzinfo=UTC)),
        (45383.5, datetime(2024, 4, 1, 3, 0, tzinfo=UTC)),
    ],
)
def test_common_date_forms_parse_in_the_shops_time_zone(raw, expected):
    assert parse_datetime(raw, "購入日時", "Asia/Tokyo") == expected


def test_unparseable_date_names_the_field():
    with pytest.raises(InvalidInput) as info:
        parse_datetime("yesterday-ish", "購入日時")
    assert info.value.problems[0].field == "購入日時"


def test_birthday_is_a_calendar_date():
    assert parse_date("1990/1/2", "birthday") == date(1990, 1, 2)
