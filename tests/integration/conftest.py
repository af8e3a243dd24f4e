"""Fixtures for tests that go through the CLI or HTTP edges."""

from __future__ import annotations

import pytest

from kizuna.config import Settings
from kizuna.domain.records import ConsentRecord, CustomerTraits, Identifiers, OrderRecord
from kizuna.store.commerce import upsert_orders
from kizuna.store.consent import record_consents
from kizuna.store.customers import apply_traits
from kizuna.store.identity import IdentityResolver


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the CLI's environment at the test store."""
    monkeypatch.setenv("KIZUNA_HOME", str(settings.home))
    monkeypatch.setenv("KIZUNA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KIZUNA_SECRET_KEY", settings.secret_key or "")
    monkeypatch.setenv("KIZUNA_API_TOKEN", "test-token")
    monkeypatch.delenv("KIZUNA_WORKSPACE", raising=False)
    return settings


@pytest.fixture
def hanako(scope_factory, clock):
    """A known customer with a profile, two orders, an opt-in and an anonymous visit merged in."""
    with scope_factory() as scope:
        resolver = IdentityResolver(scope)
        customer_id = resolver.resolve(
            Identifiers(user_id="C100", email="hanako@example.jp"), clock.now()
        )
        anon = resolver.resolve(Identifiers(anonymous_id="cookie-77"), clock.now())
        assert (
            resolver.resolve(Identifiers(user_id="C100", anonymous_id="cookie-77"), clock.now())
            == customer_id
        )
        resolver.flush()
        apply_traits(
            scope,
            customer_id,
            CustomerTraits(
                email="hanako@example.jp",
                phone="080-1234-5678",
                last_name="佐藤",
                first_name="花子",
                prefecture="東京都",
                attributes={"skin_type": "dry"},
            ),
        )
        upsert_orders(
            scope,
            resolver,
            [
                OrderRecord(
                    order_id=f"O-{n}",
                    customer={"user_id": "C100"},
                    ordered_at=f"2026-0{n}-10 12:00",
                    items=[{"sku": "SKU-1", "unit_price": 3300}],
                )
                for n in (1, 2)
            ],
        )
        record_consents(
            scope,
            resolver,
            [
                ConsentRecord(
                    customer={"user_id": "C100"},
                    channel="email",
                    status="opted_in",
                    occurred_at="2026-01-05",
                    method="checkout checkbox",
                    wording="新商品やセールのお知らせを受け取る",
                    source="https://shop.example.jp",
                )
            ],
        )
    return {"customer_id": customer_id, "anonymous": anon}
