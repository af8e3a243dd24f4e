"""A small shop whose segment numbers are known by hand (shared by the segment-use tests).

Ten live customers C1…C10 (plus an anonymous visitor merged into C1). C1–C4 live in
東京都, the rest in 大阪府. Net purchases in the last 365 days: C1 8,000 (two
orders), C2 10,000, C5 2,000 — 20,000 in all, 18,000 of it from Tokyo; C3's order
is older than a year. Reach of the Tokyo customers: email opted in C1, C2 with
addresses, C2's suppressed (so only C1 reachable); SMS C3; LINE C4; push nobody.
"""

from __future__ import annotations

from datetime import timedelta

from kizuna.domain.records import (
    ConsentRecord,
    CustomerTraits,
    Identifiers,
    OrderRecord,
    SuppressionRecord,
)
from kizuna.segments.definition import parse_spec
from kizuna.store.commerce import upsert_orders
from kizuna.store.consent import record_consents, suppress
from kizuna.store.customers import apply_traits
from kizuna.store.identity import IdentityResolver
from kizuna.store.segments import save_segment
from kizuna.store.tables import customer_metrics

__all__ = ["TOKYO", "build_shop"]

TOKYO = {
    "key": "tokyo",
    "name": "東京の顧客",
    "rank": 2,
    "condition": {"type": "location", "prefectures": ["東京都"]},
}

_PEOPLE = {
    "C1": CustomerTraits(email="taro@example.jp", last_name="山田", first_name="太郎",
                         phone="090-1111-2222", prefecture="東京都", city="渋谷区",
                         attributes={"skin_type": "dry"}),
    "C2": CustomerTraits(email="bounce@example.jp", last_name="佐藤", prefecture="東京都"),
    "C3": CustomerTraits(phone="080-3333-4444", prefecture="東京都"),
    "C4": CustomerTraits(prefecture="東京都"),
}  # fmt: skip


def _order(n: str, customer: str, when: str, amount: float) -> OrderRecord:
    return OrderRecord(order_id=n, customer={"user_id": customer}, ordered_at=when,
                       items=[{"sku": "SKU-1", "unit_price": amount}])  # fmt: skip


def _consent(customer: str, channel: str) -> ConsentRecord:
    return ConsentRecord(customer={"user_id": customer}, channel=channel, status="opted_in",
                         occurred_at="2026-01-05", method="form")  # fmt: skip


def build_shop(scope) -> dict[str, object]:
    """Fill the scope's workspace; returns customer ids by shop id."""
    resolver = IdentityResolver(scope)
    now = scope.now
    ids = {}
    for n in range(1, 11):
        extra = {"line_user_id": "U-line-4"} if n == 4 else {}
        ids[f"C{n}"] = resolver.resolve(Identifiers(user_id=f"C{n}", **extra), now)
    resolver.resolve(Identifiers(anonymous_id="cookie-1"), now)
    resolver.resolve(Identifiers(user_id="C1", anonymous_id="cookie-1"), now)  # merged into C1
    resolver.flush()
    for shop_id, traits in _PEOPLE.items():
        apply_traits(scope, ids[shop_id], traits)
    for n in range(5, 11):
        apply_traits(scope, ids[f"C{n}"], CustomerTraits(prefecture="大阪府"))
    last_month = (now - timedelta(days=30)).isoformat()
    orders = [_order("O-1", "C1", last_month, 5000), _order("O-2", "C1", last_month, 3000),
              _order("O-3", "C2", last_month, 10000), _order("O-4", "C5", last_month, 2000),
              _order("O-5", "C3", "2024-06-01", 2000)]  # fmt: skip
    upsert_orders(scope, resolver, orders)
    consents = [_consent("C1", "email"), _consent("C2", "email"), _consent("C3", "sms"),
                _consent("C4", "line")]  # fmt: skip
    record_consents(scope, resolver, consents)
    suppress(
        scope,
        [SuppressionRecord(channel="email", address="bounce@example.jp", reason="hard_bounce")],
        ids["C2"],
    )
    scope.conn.execute(
        customer_metrics.insert().values(
            workspace_id=scope.workspace_id, customer_id=ids["C1"], as_of=now, frequency=2,
            monetary=8000.0, rfm_segment="champions", clv=12345.5, p_alive=0.9, computed_at=now,
        )
    )  # fmt: skip
    save_segment(scope, parse_spec(TOKYO), "tester")
    return ids
