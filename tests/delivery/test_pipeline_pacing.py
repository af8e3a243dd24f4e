"""Pacing and concurrency: provider rate limits, and caps that hold with several workers."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from kizuna.content.library import save_template
from kizuna.content.spec import parse_template_spec
from kizuna.delivery.pipeline import Pipeline
from kizuna.delivery.settings import FrequencyCap, save_delivery_settings
from kizuna.store.messages import SendIntent, enqueue, list_messages
from kizuna.store.providers import configure_provider
from tests.delivery.test_tracking import SETTINGS, make_customer

TEMPLATE = {"key": "note", "channel": "email", "name": "お知らせ", "subject": "お知らせ",
            "body": "{{ last_name | default('お客') }}様、新商品のお知らせです。"}  # fmt: skip


@pytest.fixture
def customer(scope_factory, clock):
    customer_id = make_customer(scope_factory, clock, "hanako@example.jp")
    with scope_factory() as scope:
        save_template(scope, parse_template_spec(TEMPLATE), "test")
    return customer_id


def _provider(scope_factory, **settings) -> None:
    with scope_factory() as scope:
        configure_provider(scope, "email", "null", settings)


def _queue(scope_factory, customer_id, count: int, purpose: str = "transactional") -> None:
    with scope_factory() as scope:
        enqueue(scope, [SendIntent(customer_id, "email", "note", f"n:{purpose}:{i}",
                                   purpose=purpose) for i in range(count)])  # fmt: skip


def _statuses(scope_factory) -> dict[str, int]:
    with scope_factory() as scope:
        found: dict[str, int] = {}
        for m in list_messages(scope, limit=1000):
            key = m.status if m.status != "queued" else f"queued:{m.reason}"
            found[key] = found.get(key, 0) + 1
        return found


def test_rate_per_second_holds_the_rest_for_a_moment(db, scope_factory, clock, customer):
    _provider(scope_factory, rate_per_second=2)
    _queue(scope_factory, customer, 5)
    pipeline = Pipeline(db)
    pipeline.drain()
    assert _statuses(scope_factory) == {"sent": 2, "queued:rate_limited": 3}
    clock.advance(timedelta(seconds=1))
    pipeline.drain()
    assert _statuses(scope_factory) == {"sent": 4, "queued:rate_limited": 1}
    pipeline.close()


def test_rate_per_window_is_counted_in_the_store(db, scope_factory, clock, customer):
    _provider(scope_factory, rate_per_window={"count": 3, "seconds": 3600})
    _queue(scope_factory, customer, 5)
    Pipeline(db).drain_all()
    assert _statuses(scope_factory) == {"sent": 3, "queued:rate_limited": 2}
    clock.advance(timedelta(minutes=30))
    Pipeline(db).drain_all()  # a fresh worker: the window is read from the message log
    assert _statuses(scope_factory) == {"sent": 3, "queued:rate_limited": 2}
    clock.advance(timedelta(minutes=31))
    Pipeline(db).drain_all()
    assert _statuses(scope_factory) == {"sent": 5}


def test_a_cap_holds_when_workers_drain_at_the_same_time(db, scope_factory, customer):
    _provider(scope_factory)
    with scope_factory() as scope:
        caps = [FrequencyCap(channel="email", max_messages=1, days=1)]
        save_delivery_settings(scope.conn, scope.workspace_id,
                               SETTINGS.model_copy(update={"frequency_caps": caps}))  # fmt: skip
    _queue(scope_factory, customer, 40, purpose="marketing")
    workers = [Pipeline(db, batch_size=5) for _ in range(3)]
    threads = [threading.Thread(target=w.drain_all) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workers:
        w.close()
    assert _statuses(scope_factory) == {"sent": 1, "skipped": 39}
