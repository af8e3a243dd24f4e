"""The demo shop's generators, without a database."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import numpy as np

from kizuna.demo.behaviour import acquisition_days, build_calendar, draw_purchases
from kizuna.demo.catalogue import build_catalogue
from kizuna.demo.chunk import demo_uuid
from kizuna.demo.people import PREFECTURES, draw_people
from kizuna.domain.records import CustomerTraits

NOW = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)


def test_people_pass_the_record_validators_unchanged() -> None:
    people = draw_people(np.random.default_rng(1), 0, 500, 11, date(2026, 4, 1))
    assert len({p.email for p in people}) == 500
    assert len({p.phone for p in people if p.phone}) == sum(1 for p in people if p.phone)
    for p in people[:100]:
        traits = CustomerTraits(email=p.email, phone=p.phone, postal_code=p.postal_code)
        assert (traits.email, traits.phone, traits.postal_code) == (p.email, p.phone, p.postal_code)
    assert Counter(p.prefecture for p in people).most_common(1)[0][0] == "東京都"
    assert all(p.last_name_kana and p.first_name_kana for p in people)


def test_all_prefectures_are_there() -> None:
    assert len(PREFECTURES) == 47
    assert sum(p[1] for p in PREFECTURES) > 120_000


def test_catalogue_has_stock_outs_and_categories() -> None:
    cat = build_catalogue(np.random.default_rng(3))
    assert len(cat) >= 50
    assert (cat.stock == 0).any() and (cat.stock > 0).mean() > 0.7
    assert (cat.cost < cat.price).all()
    assert {"skincare", "haircare", "supplements", "food", "apparel"} <= set(cat.category)


def test_purchases_are_heterogeneous_and_seasonal() -> None:
    cal = build_calendar(NOW)
    rng = np.random.default_rng(5)
    first = acquisition_days(rng, 20_000, cal)
    p = draw_purchases(rng, cal, first, np.ones(20_000, dtype=bool))
    per = np.bincount(p.customer)
    assert 0.25 < (per == 1).mean() < 0.6
    assert (per >= 3).mean() > 0.2
    assert p.day.max() <= cal.end_day
    months = Counter(cal.dates[int(d)].month for d in p.day)
    assert months[12] > months[6] and months[1] > months[2]
    assert p.value.std() / p.value.mean() > 0.5


def test_ids_are_version_7_and_ordered_by_time() -> None:
    a, b = demo_uuid(1_000, 42, 1), demo_uuid(2_000, 42, 0)
    assert a.version == 7 and a < b
