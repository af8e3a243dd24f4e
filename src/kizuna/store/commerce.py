"""Orders with line items, products with stock, subscription contracts and carts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.domain.records import OrderRecord, OrderStatus, ProductRecord, SubscriptionRecord
from kizuna.store.identity import IdentityResolver
from kizuna.store.scope import Scope
from kizuna.store.tables import carts, order_items, orders, products, subscriptions
from kizuna.store.upsert import upsert

__all__ = [
    "order_rows",
    "set_order_status",
    "upsert_cart",
    "upsert_orders",
    "upsert_products",
    "upsert_subscriptions",
]


def order_rows(
    scope: Scope, record: OrderRecord, customer_id: uuid.UUID
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``orders`` row and ``order_items`` rows for one order."""
    ws = scope.workspace_id
    order = {
        "workspace_id": ws,
        "order_id": record.order_id,
        "customer_id": customer_id,
        "ordered_at": record.ordered_at,
        "channel": record.channel.value,
        "status": record.status.value,
        "currency": record.currency.upper(),
        "subtotal": record.subtotal,
        "discount": record.discount,
        "shipping": record.shipping,
        "tax": record.tax,
        "total": record.total,
        "refunded": record.refunded,
        "coupon": record.coupon,
        "store_id": record.store_id,
        "cancelled_at": record.cancelled_at,
        "returned_at": record.returned_at,
        "updated_at": scope.now,
    }
    items = [
        {
            "workspace_id": ws,
            "order_id": record.order_id,
            "line_no": n,
            "customer_id": customer_id,
            "sku": i.sku,
            "product_id": i.product_id,
            "product_name": i.product_name,
            "category": i.category,
            "brand": i.brand,
            "quantity": i.quantity,
            "unit_price": i.unit_price,
            "discount": i.discount,
            "coupon": i.coupon,
            "is_sale": i.is_sale,
            "returned_quantity": i.returned_quantity,
        }
        for n, i in enumerate(record.items, start=1)
    ]
    return order, items


def upsert_orders(
    scope: Scope, resolver: IdentityResolver, records: Sequence[OrderRecord]
) -> list[uuid.UUID]:
    """Insert or update orders by the shop's order id; line items are replaced whole.

    Returns the customer id of each order, in order.
    """
    if not records:
        return []
    resolver.prefetch(r.customer for r in records)
    owners = [resolver.resolve(r.customer, r.ordered_at) for r in records]
    resolver.flush()
    order_list, item_list = [], []
    latest: dict[str, int] = {}
    for index, record in enumerate(records):
        latest[record.order_id] = index  # the last version of an order in a batch wins
    for order_id, index in latest.items():
        order, items = order_rows(scope, records[index], owners[index])
        order_list.append(order)
        item_list.extend(items)
        del order_id
    _replace_items(scope, list(latest), item_list)
    upsert(scope.conn, orders, order_list, ["workspace_id", "order_id"])
    return owners


def _replace_items(scope: Scope, order_ids: list[str], rows: list[dict[str, Any]]) -> None:
    existing = order_items.c
    scope.conn.execute(
        order_items.delete()
        .where(existing.workspace_id == scope.workspace_id)
        .where(existing.order_id.in_(order_ids))
    )
    if rows:
        scope.conn.execute(order_items.insert(), rows)


def set_order_status(
    scope: Scope, order_id: str, status: OrderStatus, at: datetime, refunded: float | None = None
) -> bool:
    """Mark an order cancelled or returned (refunded); False when the order is unknown."""
    values: dict[str, Any] = {"status": status.value, "updated_at": scope.now}
    if status is OrderStatus.CANCELLED:
        values["cancelled_at"] = at
    elif status is OrderStatus.RETURNED:
        values["returned_at"] = at
        values["refunded"] = orders.c.total if refunded is None else refunded
    result = scope.conn.execute(
        orders.update()
        .where(orders.c.workspace_id == scope.workspace_id)
        .where(orders.c.order_id == order_id)
        .values(**values)
    )
    return result.rowcount > 0


def upsert_products(scope: Scope, records: Sequence[ProductRecord]) -> None:
    """Insert or update catalogue entries by SKU."""
    rows = {
        r.sku: {
            "workspace_id": scope.workspace_id,
            "sku": r.sku,
            "product_id": r.product_id or r.sku,
            "name": r.name,
            "category": r.category,
            "brand": r.brand,
            "price": r.price,
            "cost": r.cost,
            "stock": r.stock,
            "url": r.url,
            "image_url": r.image_url,
            "attributes": r.attributes,
            "updated_at": scope.now,
        }
        for r in records
    }
    # Key order, so concurrent batches lock the same rows in the same order (no deadlock).
    upsert(scope.conn, products, [rows[sku] for sku in sorted(rows)], ["workspace_id", "sku"])


def upsert_subscriptions(
    scope: Scope, resolver: IdentityResolver, records: Sequence[SubscriptionRecord]
) -> None:
    """Insert or update subscription contracts by their id."""
    resolver.prefetch(r.customer for r in records)
    rows = {}
    for r in records:
        customer_id = resolver.resolve(r.customer, r.started_at)
        rows[r.subscription_id] = {
            "workspace_id": scope.workspace_id,
            "subscription_id": r.subscription_id,
            "customer_id": customer_id,
            "plan": r.plan,
            "status": r.status.value,
            "amount": r.amount,
            "interval_days": r.interval_days,
            "started_at": r.started_at,
            "renewed_at": r.renewed_at,
            "next_renewal_at": r.next_renewal_at,
            "cancelled_at": r.cancelled_at,
            "updated_at": scope.now,
        }
    resolver.flush()
    upsert(scope.conn, subscriptions, list(rows.values()), ["workspace_id", "subscription_id"])


def upsert_cart(
    scope: Scope,
    customer_id: uuid.UUID,
    cart_id: str,
    *,
    at: datetime,
    items: list[dict[str, Any]] | None = None,
    value: float | None = None,
    currency: str = "JPY",
    status: str | None = None,
    order_id: str | None = None,
) -> None:
    """Create or update a cart; items, value and status are replaced only when given."""
    key = sa.and_(
        carts.c.workspace_id == scope.workspace_id,
        carts.c.customer_id == customer_id,
        carts.c.cart_id == cart_id,
    )
    row = scope.conn.execute(sa.select(carts).where(key)).first()
    current: dict[str, Any] = dict(row._mapping) if row else {"items": [], "status": "open"}
    new_items: list[dict[str, Any]] = current["items"] if items is None else items
    if value is None:
        value = sum(float(i.get("price") or 0) * int(i.get("quantity") or 1) for i in new_items)
    values = {
        "workspace_id": scope.workspace_id,
        "customer_id": customer_id,
        "cart_id": cart_id,
        "items": new_items,
        "value": value,
        "currency": currency,
        "status": status or current["status"],
        "order_id": order_id or current.get("order_id"),
        "checkout_started_at": at
        if status == "checkout_started"
        else current.get("checkout_started_at"),
        "updated_at": at,
    }
    if row is None:
        scope.conn.execute(carts.insert().values(**values))
    else:
        scope.conn.execute(carts.update().where(key).values(**values))
