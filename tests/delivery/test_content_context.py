"""Personalization contexts for a batch: profile, last order, cart, viewed and recommended products.

The shop is filled through the Segment-compatible ingestion API, as a real shop would.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from kizuna.api import build_app
from kizuna.content.context import MINIMAL_CONTEXT, OPTIONAL_OBJECTS, build_contexts
from kizuna.content.library import save_template
from kizuna.content.render import open_renderer
from kizuna.content.spec import parse_template_spec
from kizuna.delivery.settings import DeliverySettings, Sender, save_delivery_settings
from kizuna.domain.records import ProductRecord
from kizuna.store.commerce import upsert_products
from kizuna.store.profiles import find_customer_id
from kizuna.store.scope import Scope
from kizuna.store.workspaces import create_write_key

TOKYO = ZoneInfo("Asia/Tokyo")
_CATALOGUE = {
    "S1": ("薬用美白美容液", "スキンケア", 4980), "S2": ("保湿化粧水", "スキンケア", 1650),
    "S3": ("クレンジングオイル", "スキンケア", 2200), "S4": ("UVミルク", "スキンケア", 3300),
    "S5": ("シートマスク", "スキンケア", 1100), "S6": ("アイクリーム", "スキンケア", 5500),
    "S7": ("リップティント", "メイク", 1980), "S8": ("限定コフレ", "スキンケア", 8800),
}  # fmt: skip


def product(sku, quantity=1):
    name, category, price = _CATALOGUE[sku]
    return {"product_id": f"P-{sku}", "sku": sku, "name": name, "category": category,
            "brand": "KIZUNA", "price": price, "quantity": quantity,
            "url": f"https://shop.example.jp/p/{sku}"}  # fmt: skip


def _order(order_id, lines):
    items = [product(sku, n) for sku, n in lines]
    return {"order_id": order_id, "currency": "JPY", "products": items,
            "total": sum(p["price"] * p["quantity"] for p in items)}  # fmt: skip


def build_content_shop(db, workspace):
    """C1 (山田 花子, two orders, a cart, three views), C2 (佐藤, nothing else), C3 (a buyer)."""
    with db.write() as conn:
        key = create_write_key(conn, workspace.workspace_id, "test", db.clock.now())
        save_delivery_settings(conn, workspace.workspace_id, DeliverySettings(
            public_url="https://crm.example.jp",
            sender=Sender(name="株式会社絆", postal_address="東京都渋谷区1-2-3",
                          contact="support@example.jp"),
        ))  # fmt: skip
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}

    def track(user, at, event, properties):
        return ("track", user, at, {"event": event, "properties": properties})

    hanako = {
        "email": "hanako@example.jp", "lastName": "山田", "firstName": "花子",
        "lastNameKana": "ヤマダ", "firstNameKana": "ハナコ", "prefecture": "東京都",
        "membershipRank": "ゴールド", "birthday": "1990-04-15", "skin_type": "dry",
    }  # fmt: skip
    start = "2026-01-01T00:00:00Z"
    calls = [
        ("identify", "C1", start, {"traits": hanako}),
        ("identify", "C2", start, {"traits": {"lastName": "佐藤"}}),
        ("identify", "C3", start, {"traits": {"firstName": "三郎"}}),
        track("C1", "2026-01-10T03:00:00Z", "Order Completed", _order("O-1", [("S1", 1)])),
        track("C1", "2026-03-10T03:00:00Z", "Order Completed",
              _order("O-2", [("S1", 1), ("S2", 2)])),
        track("C3", "2026-03-12T03:00:00Z", "Order Completed",
              _order("O-3", [("S5", 5), ("S6", 3), ("S7", 4), ("S8", 10)])),
        track("C1", "2026-03-05T03:00:00Z", "Product Viewed", product("S1")),
        track("C1", "2026-03-25T03:00:00Z", "Product Viewed", product("S3")),
        track("C1", "2026-03-28T03:00:00Z", "Product Viewed", product("S4")),
        track("C1", "2026-03-29T03:00:00Z", "Product Added", product("S4")),
        track("C3", "2026-03-29T03:00:00Z", "Product Viewed", product("S7")),
    ]  # fmt: skip
    with TestClient(build_app(db)) as client:
        for kind, user, at, body in calls:
            sent = client.post(f"/v1/{kind}", json={"userId": user, "timestamp": at, **body},
                               headers=auth)  # fmt: skip
            assert sent.status_code == 200, sent.text
    catalogue = [
        ProductRecord(sku=sku, product_id=f"P-{sku}", name=name, category=category, price=price,
                      stock=0 if sku == "S8" else 10, url=f"https://shop.example.jp/p/{sku}")
        for sku, (name, category, price) in _CATALOGUE.items()
    ]  # fmt: skip
    with db.write() as conn:
        upsert_products(Scope(conn, db.cipher, workspace.workspace_id, db.clock.now()), catalogue)
        return {ref: find_customer_id(conn, db.cipher, workspace.workspace_id, ref)
                for ref in ("C1", "C2", "C3")}  # fmt: skip


@pytest.fixture
def shop(db, workspace):
    return build_content_shop(db, workspace)


def _skus(products):
    return [p["sku"] for p in products]


def test_a_batch_gets_profile_last_order_cart_and_products(scope_factory, shop):
    with scope_factory() as scope:
        contexts = build_contexts(scope, [shop["C1"], shop["C2"], shop["C3"]])
    hanako = contexts[shop["C1"]]
    names = (hanako["last_name"], hanako["first_name"], hanako["full_name"])
    assert names == ("山田", "花子", "山田 花子")
    assert hanako["full_name_kana"] == "ヤマダ ハナコ" and hanako["email"] == "hanako@example.jp"
    assert hanako["birthday"] == {"month": 4, "day": 15} and hanako["prefecture"] == "東京都"
    assert hanako["attributes"] == {"skin_type": "dry"}
    assert hanako["loyalty"] == {"rank": "ゴールド"}
    assert hanako["order_count"] == 2
    order = hanako["last_order"]
    assert (order["number"], order["total"], order["item_count"]) == ("O-2", 8280, 3)
    assert order["date"] == datetime(2026, 3, 10, 12, 0, tzinfo=TOKYO)
    assert [(i["sku"], i["name"], i["quantity"], i["price"]) for i in order["items"]] == [
        ("S1", "薬用美白美容液", 1, 4980), ("S2", "保湿化粧水", 2, 1650)]  # fmt: skip
    cart = hanako["cart"]
    assert [(i["sku"], i["name"], i["url"]) for i in cart["items"]] == [
        ("S4", "UVミルク", "https://shop.example.jp/p/S4")]  # fmt: skip
    assert cart["value"] == 3300
    assert _skus(hanako["recently_viewed"]) == ["S4", "S3", "S1"]  # latest first
    # Best sellers of the viewed category not viewed or bought, then overall; S8 is sold out.
    assert _skus(hanako["recommended"]) == ["S5", "S6", "S7"]
    assert hanako["sender"] == {"name": "株式会社絆", "postal_address": "東京都渋谷区1-2-3",
                                "contact": "support@example.jp"}  # fmt: skip


def test_customers_without_data_get_only_what_they_have(scope_factory, shop):
    with scope_factory() as scope:
        contexts = build_contexts(scope, [shop["C2"]], {shop["C2"]: {"coupon": "SPRING10"}})
    sato = contexts[shop["C2"]]
    assert sato["last_name"] == "佐藤" and "first_name" not in sato and "full_name" in sato
    assert not set(OPTIONAL_OBJECTS) & set(sato)
    assert set(MINIMAL_CONTEXT) - set(OPTIONAL_OBJECTS) <= set(sato)
    assert None not in sato.values()
    assert sato["order_count"] == 0 and sato["recently_viewed"] == []
    assert _skus(sato["recommended"]) == ["S5", "S7", "S6", "S1", "S2"]  # overall best sellers
    assert sato["coupon"] == "SPRING10"  # the message's params


def test_the_number_of_queries_does_not_grow_with_the_batch(db, scope_factory, shop):
    statements = []

    def count(*_args):
        statements.append(1)

    with scope_factory() as scope:
        build_contexts(scope, [shop["C1"]])  # warms the best-seller cache
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            build_contexts(scope, [shop["C1"]])
            one = len(statements)
            statements.clear()
            build_contexts(scope, list(shop.values()))
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == one


def test_a_renderer_renders_a_batch_from_saved_templates(scope_factory, shop):
    body = """{{ last_name | default('お客') }}様
{% for p in recommended %}
・{{ p.name }}{% if p.price %} {{ p.price | yen }}{% endif +%}
{% endfor %}
{% if cart %}
カート: {{ cart.items | map(attribute='sku') | join('、') }}
{% endif %}
"""
    with scope_factory() as scope:
        spec = {"key": "reco", "channel": "sms", "name": "おすすめ", "body": body}
        save_template(scope, parse_template_spec(spec), "tester")
        contexts = build_contexts(scope, [shop["C1"], shop["C2"]])
        renderer = open_renderer(scope, ["reco"])
        texts = {ref: renderer.render("reco", contexts[shop[ref]]).text for ref in ("C1", "C2")}
    assert texts["C1"] == ("山田様\n・シートマスク ¥1,100\n・アイクリーム ¥5,500\n"
                           "・リップティント ¥1,980\nカート: S4\n")  # fmt: skip
    assert texts["C2"].startswith("佐藤様\n・シートマスク ¥1,100\n・リップティント ¥1,980\n")
    assert "カート" not in texts["C2"]


def test_times_are_in_the_workspace_zone(scope_factory, shop):
    with scope_factory() as scope:
        order = build_contexts(scope, [shop["C1"]])[shop["C1"]]["last_order"]
    assert order["date"].utcoffset().total_seconds() == 9 * 3600
    assert order["date"].astimezone(UTC) == datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
