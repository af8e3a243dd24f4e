"""Segment e-commerce v2 events → orders, order items, products and carts.

:func:`parse_commerce` reads an event's properties into a :class:`CommerceAction`
at validation time (so a bad order rejects its message with a field path);
:func:`apply_commerce` writes the action after the event row is inserted.

- "Order Completed" → an order with its items (``upsert_orders``); a ``cart_id``
  or ``checkout_id`` (else the customer's default cart, when it exists) is
  marked converted.
- "Order Refunded" → status returned; "Order Cancelled" → cancelled.
- "Product Viewed" → catalogue entry, when the product has a name.
- "Product Added" → appended to the cart; "Cart Viewed" → the cart's items;
  "Checkout Started" → the cart's items and status ``checkout_started``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from kizuna.domain.records import (
    Identifiers,
    LineItem,
    OrderRecord,
    OrderStatus,
    ProductRecord,
)
from kizuna.errors import InvalidInput, Problem
from kizuna.store.commerce import set_order_status, upsert_cart, upsert_orders, upsert_products
from kizuna.store.identity import IdentityResolver
from kizuna.store.scope import Scope
from kizuna.store.tables import carts

__all__ = ["DEFAULT_CART", "CartChange", "CommerceAction", "apply_commerce", "parse_commerce"]

DEFAULT_CART = "default"


@dataclass(frozen=True, slots=True)
class CartChange:
    """What an event does to a cart: replace or append items, set status or order."""

    cart_id: str | None
    items: list[dict[str, Any]] | None = None
    added: dict[str, Any] | None = None
    value: float | None = None
    currency: str = "JPY"
    status: str | None = None
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class CommerceAction:
    """The store change one e-commerce event asks for."""

    order: OrderRecord | None = None
    status: tuple[str, OrderStatus, float | None] | None = None
    product: ProductRecord | None = None
    cart: CartChange | None = None


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value).strip() or None


def _num(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _is_sale(p: dict[str, Any]) -> bool:
    if any(p.get(flag) is True for flag in ("on_sale", "onSale", "sale", "is_sale")):
        return True
    price = _num(p.get("price"))
    full = _num(p.get("full_price") or p.get("original_price") or p.get("compare_at_price"))
    return price is not None and full is not None and price < full


def _line(p: dict[str, Any]) -> LineItem:
    return LineItem(
        sku=_str(p.get("sku")) or _str(p.get("product_id")) or _str(p.get("id")) or "",
        product_id=_str(p.get("product_id")), product_name=_str(p.get("name")),
        category=_str(p.get("category")), brand=_str(p.get("brand")),
        quantity=int(_num(p.get("quantity")) or 1), unit_price=_num(p.get("price")) or 0.0,
        coupon=_str(p.get("coupon")), is_sale=_is_sale(p),
    )  # fmt: skip


def _products(props: dict[str, Any]) -> list[dict[str, Any]]:
    items = props.get("products")
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidInput(
            Problem("invalid_field", "must be a list of objects", "properties.products")
        )
    return items


def _cart_item(p: dict[str, Any]) -> dict[str, Any]:
    line = _line(p)
    return {
        "sku": line.sku, "product_id": line.product_id, "name": line.product_name,
        "price": line.unit_price, "quantity": line.quantity, "is_sale": line.is_sale,
    }  # fmt: skip


def _cart_id(props: dict[str, Any]) -> str | None:
    return _str(props.get("cart_id")) or _str(props.get("checkout_id"))


def _lines(props: dict[str, Any]) -> list[LineItem]:
    lines = []
    for n, p in enumerate(_products(props)):
        try:
            lines.append(_line(p))
        except ValidationError as exc:
            raise InvalidInput([
                Problem("invalid_field", str(e["msg"]),
                        f"properties.products[{n}]." + _path(e["loc"]))
                for e in exc.errors()
            ]) from exc  # fmt: skip
    return lines


def _order(props: dict[str, Any], ids: Identifiers, at: datetime) -> CommerceAction:
    lines = _lines(props)
    total = _num(props.get("total"))
    order = OrderRecord(
        order_id=_str(props.get("order_id")) or "", customer=ids, ordered_at=at,
        currency=(_str(props.get("currency")) or "JPY").upper(), items=lines,
        subtotal=_num(props.get("subtotal")) if total is not None else _num(props.get("revenue")),
        discount=_num(props.get("discount")) or 0.0, shipping=_num(props.get("shipping")) or 0.0,
        tax=_num(props.get("tax")) or 0.0, total=total, coupon=_str(props.get("coupon")),
    )  # fmt: skip
    cart = CartChange(_cart_id(props), status="converted", order_id=order.order_id)
    return CommerceAction(order=order, cart=cart)


def _order_status(props: dict[str, Any], status: OrderStatus) -> CommerceAction:
    order_id = _str(props.get("order_id"))
    if order_id is None:
        raise InvalidInput(Problem("missing", "order_id is required", "properties.order_id"))
    refunded = _num(props.get("total")) if status is OrderStatus.RETURNED else None
    return CommerceAction(status=(order_id, status, refunded))


def _viewed(props: dict[str, Any]) -> CommerceAction | None:
    name, sku = _str(props.get("name")), _str(props.get("sku")) or _str(props.get("product_id"))
    if name is None or sku is None:
        return None
    product = ProductRecord(
        sku=sku, product_id=_str(props.get("product_id")), name=name,
        category=_str(props.get("category")), brand=_str(props.get("brand")),
        price=_num(props.get("price")), url=_str(props.get("url")),
        image_url=_str(props.get("image_url")),
    )  # fmt: skip
    return CommerceAction(product=product)


def _cart(event: str, props: dict[str, Any]) -> CommerceAction:
    currency = (_str(props.get("currency")) or "JPY").upper()
    if event == "Product Added":
        return CommerceAction(
            cart=CartChange(_cart_id(props), added=_cart_item(props), currency=currency)
        )
    items = [_cart_item(p) for p in _products(props)] if "products" in props else None
    value = _num(props.get("value")) or _num(props.get("revenue")) or _num(props.get("total"))
    status = "checkout_started" if event == "Checkout Started" else None
    return CommerceAction(cart=CartChange(_cart_id(props), items, None, value, currency, status))


def parse_commerce(
    event: str, props: dict[str, Any], ids: Identifiers, at: datetime
) -> CommerceAction | None:
    """The store change an e-commerce event asks for, or None; InvalidInput names the field."""
    try:
        if event == "Order Completed":
            return _order(props, ids, at)
        if event == "Order Refunded":
            return _order_status(props, OrderStatus.RETURNED)
        if event == "Order Cancelled":
            return _order_status(props, OrderStatus.CANCELLED)
        if event == "Product Viewed":
            return _viewed(props)
        if event in ("Product Added", "Cart Viewed", "Checkout Started"):
            return _cart(event, props)
    except ValidationError as exc:
        raise InvalidInput([
            Problem("invalid_field", str(e["msg"]), "properties." + _path(e["loc"]))
            for e in exc.errors()
        ]) from exc  # fmt: skip
    return None


def _path(loc: tuple[Any, ...]) -> str:
    names = {"items": "products", "product_name": "name", "unit_price": "price"}
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]"
        else:
            parts.append(names.get(str(part), str(part)))
    return ".".join(parts)


def apply_commerce(
    scope: Scope,
    resolver: IdentityResolver,
    customer_id: uuid.UUID,
    action: CommerceAction,
    at: datetime,
) -> None:
    """Write one action for ``customer_id`` (whose event row was just inserted)."""
    if action.order is not None:
        upsert_orders(scope, resolver, [action.order])
    if action.status is not None:
        order_id, status, refunded = action.status
        set_order_status(scope, order_id, status, at, refunded)
    if action.product is not None:
        upsert_products(scope, [action.product])
    if action.cart is not None:
        _apply_cart(scope, customer_id, action.cart, at)


def _apply_cart(scope: Scope, customer_id: uuid.UUID, change: CartChange, at: datetime) -> None:
    cart_id = change.cart_id or DEFAULT_CART
    key = sa.and_(
        carts.c.workspace_id == scope.workspace_id,
        carts.c.customer_id == customer_id,
        carts.c.cart_id == cart_id,
    )
    current = scope.conn.execute(sa.select(carts.c["items"], carts.c.status).where(key)).first()
    done = current is None or current.status == "converted"
    if change.status == "converted" and done and (change.cart_id is None or current is not None):
        return  # no open cart to convert
    reopened = current is not None and current.status == "converted" and change.status is None
    items = change.items
    if change.added is not None:
        items = [*(current[0] if current and not reopened else []), change.added]
    upsert_cart(
        scope, customer_id, cart_id, at=at, items=items, value=change.value,
        currency=change.currency, status="open" if reopened else change.status,
        order_id=change.order_id,
    )  # fmt: skip
