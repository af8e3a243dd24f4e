"""Identity resolution and merges, on the backend under test."""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.domain.records import (
    ConsentRecord,
    Identifiers,
    OrderRecord,
)
from kizuna.store.commerce import upsert_orders
from kizuna.store.consent import record_consents
from kizuna.store.identity import IdentityResolver
from kizuna.store.tables import consents, customer_merges, customers, orders


def test_anonymous_activity_joins_the_customer_who_identifies(scope_factory, clock):
    with scope_factory() as scope:
        resolver = IdentityResolver(scope)
        anon = resolver.resolve(Identifiers(anonymous_id="cookie-1"), clock.now())
        known = resolver.resolve(Identifiers(user_id="C001"), clock.now())
        joined = resolver.resolve(Identifiers(user_id="C001", anonymous_id="cookie-1"), clock.now())
        resolver.flush()
        assert joined == known != anon
        tomb = scope.conn.execute(
            sa.select(customers.c.merged_into).where(customers.c.customer_id == anon)
        ).scalar()
        assert tomb == known
        merges = scope.conn.execute(sa.select(customer_merges)).all()
        assert [(m.from_customer_id, m.into_customer_id) for m in merges] == [(anon, known)]


def test_two_known_customers_sharing_an_email_stay_apart(scope_factory, clock):
    with scope_factory() as scope:
        resolver = IdentityResolver(scope)
        first = resolver.resolve(Identifiers(user_id="C001", email="a@example.com"), clock.now())
        second = resolver.resolve(Identifiers(user_id="C002", email="a@example.com"), clock.now())
        assert first != second
        assert resolver.merges == 0


def test_merge_moves_orders_and_keeps_the_latest_consent(scope_factory, clock):
    with scope_factory() as scope:
        resolver = IdentityResolver(scope)
        upsert_orders(
            scope,
            resolver,
            [
                OrderRecord(
                    order_id="O1",
                    customer={"email": "m@example.com"},
                    ordered_at="2026-01-01",
                    items=[{"sku": "S1", "unit_price": 1200}],
                ),
            ],
        )
        record_consents(
            scope,
            resolver,
            [
                ConsentRecord(
                    customer={"email": "m@example.com"},
                    channel="email",
                    status="opted_out",
                    occurred_at="2026-03-01",
                ),
                ConsentRecord(
                    customer={"user_id": "C9"},
                    channel="email",
                    status="opted_in",
                    occurred_at="2026-02-01",
                ),
            ],
        )
        winner = resolver.alias("C9", "C9", clock.now())
        merged = resolver.resolve(Identifiers(user_id="C9", email="m@example.com"), clock.now())
        resolver.flush()
        assert merged == winner
        owner = scope.conn.execute(sa.select(orders.c.customer_id)).scalar()
        assert owner == winner
        states = scope.conn.execute(sa.select(consents.c.customer_id, consents.c.status)).all()
        assert states == [(winner, "opted_out")]
