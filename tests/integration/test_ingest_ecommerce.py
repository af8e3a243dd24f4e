"""Segment e-commerce v2 events fill orders, items, products and carts; PII never lands in clear."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from kizuna.api import build_app
from kizuna.store.tables import carts, events, metadata, order_items, orders, products
from kizuna.store.workspaces import create_write_key


@pytest.fixture
def track(db, workspace):
    with db.write() as conn:
        key = create_write_key(conn, workspace.workspace_id, "test", db.clock.now())
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    with TestClient(build_app(db)) as client:

        def send(event, properties, kind="track", **extra):
            body = {"userId": "C1", "event": event, "properties": properties, **extra}
            answer = client.post(f"/v1/{kind}", json=body, headers=auth)
            assert answer.status_code == 200, answer.text

        yield send


def all_rows(db, table):
    with db.read() as conn:
        return conn.execute(sa.select(table)).all()


ORDER = {
    "order_id": "O-1", "checkout_id": "K1", "total": 5500, "revenue": 5000, "shipping": 500,
    "tax": 0, "discount": 300, "coupon": "SPRING", "currency": "jpy",
    "products": [
        {"product_id": "P1", "sku": "S1", "name": "Tea", "category": "Drinks", "brand": "Kz",
         "price": 1000, "quantity": 2, "coupon": "SPRING"},
        {"product_id": "P2", "sku": "S2", "name": "Cup", "price": 2800, "full_price": 3500},
        {"product_id": "P3", "name": "Pot", "price": 200, "on_sale": True},
    ],
}  # fmt: skip


def test_order_completed_fills_orders_and_items(track, db):
    track("Order Completed", ORDER)
    (order,) = all_rows(db, orders)
    assert (order.order_id, order.total, order.shipping, order.discount) == ("O-1", 5500, 500, 300)
    assert (order.coupon, order.currency, order.status) == ("SPRING", "JPY", "placed")
    items = sorted(all_rows(db, order_items), key=lambda i: i.line_no)
    assert [(i.sku, i.quantity, i.unit_price, i.is_sale) for i in items] == [
        ("S1", 2, 1000, False), ("S2", 1, 2800, True), ("P3", 1, 200, True),
    ]  # fmt: skip
    assert items[0].product_name == "Tea" and items[0].brand == "Kz"
    (event,) = all_rows(db, events)
    assert event.customer_id == order.customer_id == items[0].customer_id


def test_refund_and_cancel_change_the_status(track, db):
    track("Order Completed", ORDER)
    track("Order Completed", {**ORDER, "order_id": "O-2"})
    track("Order Refunded", {"order_id": "O-1"})
    track("Order Cancelled", {"order_id": "O-2"})
    status = {o.order_id: (o.status, o.refunded) for o in all_rows(db, orders)}
    assert status == {"O-1": ("returned", 5500), "O-2": ("cancelled", 0)}
    assert len(all_rows(db, events)) == 4


def test_product_viewed_fills_the_catalogue(track, db):
    track("Product Viewed", {"product_id": "P1", "sku": "S1", "name": "Tea", "price": 1000})
    track("Product Viewed", {"product_id": "P9"})  # no name: the event only
    (product,) = all_rows(db, products)
    assert (product.sku, product.name, product.price) == ("S1", "Tea", 1000)
    stored = sorted(all_rows(db, events), key=lambda e: e.occurred_at)
    assert len(stored) == 2
    # A product's name is not a person's: it stays in the event's properties.
    assert any(e.properties.get("name") == "Tea" for e in stored)


def test_cart_life_from_added_to_converted(track, db):
    track("Product Added", {"product_id": "P1", "sku": "S1", "price": 1000, "quantity": 2})
    track("Product Added", {"product_id": "P2", "sku": "S2", "price": 500})
    (cart,) = all_rows(db, carts)
    assert (cart.cart_id, cart.status, cart.value) == ("default", "open", 2500)
    assert [i["sku"] for i in cart.items] == ["S1", "S2"]
    track("Checkout Started", {"products": [{"sku": "S1", "price": 1000}], "value": 1000})
    (cart,) = all_rows(db, carts)
    assert (cart.status, cart.value) == ("checkout_started", 1000)
    assert cart.checkout_started_at is not None
    track("Order Completed", {**ORDER, "checkout_id": None})
    (cart,) = all_rows(db, carts)
    assert (cart.status, cart.order_id) == ("converted", "O-1")


def test_cart_id_from_properties(track, db):
    track("Cart Viewed", {"cart_id": "K1", "products": [{"sku": "S1", "price": 300}]})
    track("Order Completed", ORDER)  # checkout_id K1
    (cart,) = all_rows(db, carts)
    assert (cart.cart_id, cart.status, cart.value) == ("K1", "converted", 300)


def test_retried_order_is_applied_once(track, db):
    track("Order Completed", ORDER, messageId="once")
    track("Order Refunded", {"order_id": "O-1"}, messageId="refund")
    track("Order Completed", ORDER, messageId="once")  # a retry must not un-refund it
    (order,) = all_rows(db, orders)
    assert order.status == "returned"


EMAIL = "secret.person@example.com"


def test_email_never_stored_in_clear(track, db, settings):
    traits = {"email": EMAIL, "phone": "09011112222", "firstName": "秘密", "plan": "gold"}
    track(None, {}, kind="identify", traits=traits, context={"traits": {"email": EMAIL}})
    track("Signed Up", {"email": EMAIL, "nested": {"Email": EMAIL}},
          context={"traits": {"email": EMAIL, "name": "秘密"}, "ip": "10.0.0.1"})  # fmt: skip
    track("Order Completed", {**ORDER, "email": EMAIL})
    assert len(all_rows(db, events)) == 3
    needles = [EMAIL.encode(), "秘密".encode(), b"09011112222", b"+819011112222"]
    if db.dialect == "sqlite":
        home = Path(settings.home)
        blobs = [p.read_bytes() for p in home.glob("kizuna.db*")]  # file and WAL, live
        assert any(p.name.endswith("-wal") for p in home.glob("kizuna.db*"))
        db.dispose()  # checkpoints the WAL into the file
        blobs += [p.read_bytes() for p in home.glob("kizuna.db*")]
        assert any(b"Signed Up" in blob for blob in blobs)  # the reading does see the data
        for blob in blobs:
            assert not any(n in blob for n in needles)
        return
    with db.read() as conn:
        seen = conn.exec_driver_sql("SELECT t::text FROM events t").scalars().all()
        assert any("Signed Up" in row for row in seen)  # the reading does see the data
        for table in metadata.sorted_tables:
            text = conn.exec_driver_sql(f'SELECT t::text FROM "{table.name}" t').scalars().all()
            dump = "\n".join(text)
            assert not any(n.decode() in dump for n in needles), table.name
