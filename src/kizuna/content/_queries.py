"""The named queries behind personalization contexts, each one statement for a whole batch.

Per-customer "latest" rows come from ``row_number()`` windows over the batch's
customers (both SQLite and PostgreSQL run them on the ``(workspace_id,
customer_id, …)`` indexes). Best sellers are the one workspace-wide aggregate; they
change slowly, so they are kept for a few minutes per workspace.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.store.scope import Scope
from kizuna.store.tables import carts, customers, events, order_items, orders, products

__all__ = [
    "PRODUCT_COLUMNS",
    "best_sellers",
    "bought",
    "last_orders",
    "open_carts",
    "order_lines",
    "products_by_sku",
    "recently_viewed",
    "sample_customer_id",
]

PRODUCT_COLUMNS = ("sku", "product_id", "name", "category", "brand", "price", "url", "image_url",
                   "stock")  # fmt: skip
_BEST_SELLER_SECONDS = 300.0
_Sellers = tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]
_best: dict[tuple[int, uuid.UUID], tuple[float, _Sellers]] = {}
_best_lock = threading.Lock()


def _product_columns() -> list[sa.ColumnElement[Any]]:
    return [products.c[name] for name in PRODUCT_COLUMNS]


def last_orders(scope: Scope, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Each customer's latest placed order, with their count of placed orders."""
    o = orders.c
    latest = (o.ordered_at.desc(), o.order_id.desc())
    ranked = (
        sa.select(
            o.customer_id, o.order_id, o.ordered_at, o.total, o.currency, o.channel,
            sa.func.row_number().over(partition_by=o.customer_id, order_by=latest).label("rn"),
            sa.func.count().over(partition_by=o.customer_id).label("order_count"),
        )
        .where(o.workspace_id == scope.workspace_id, o.customer_id.in_(ids), o.status == "placed")
        .subquery()
    )  # fmt: skip
    rows = scope.conn.execute(sa.select(ranked).where(ranked.c.rn == 1))
    return {r.customer_id: dict(r._mapping) for r in rows}


def order_lines(scope: Scope, order_ids: Collection[str]) -> dict[str, list[dict[str, Any]]]:
    """Line items of the given orders, with the product's link and image when catalogued."""
    if not order_ids:
        return {}
    i, p = order_items.c, products.c
    query = (
        sa.select(i.order_id, i.sku, i.product_id, i.product_name, i.category, i.brand,
                  i.quantity, i.unit_price, p.url, p.image_url)
        .select_from(order_items.outerjoin(
            products, sa.and_(p.workspace_id == i.workspace_id, p.sku == i.sku)))
        .where(i.workspace_id == scope.workspace_id, i.order_id.in_(order_ids))
        .order_by(i.order_id, i.line_no)
    )  # fmt: skip
    lines: dict[str, list[dict[str, Any]]] = {}
    for row in scope.conn.execute(query):
        lines.setdefault(row.order_id, []).append(dict(row._mapping))
    return lines


def open_carts(scope: Scope, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Each customer's most recently updated cart that is still open (or in checkout)."""
    c = carts.c
    ranked = (
        sa.select(
            c.customer_id, c.cart_id, c.status, c["items"], c.value, c.currency, c.updated_at,
            sa.func.row_number().over(partition_by=c.customer_id,
                                      order_by=c.updated_at.desc()).label("rn"),
        )
        .where(c.workspace_id == scope.workspace_id, c.customer_id.in_(ids),
               c.status.in_(("open", "checkout_started")))
        .subquery()
    )  # fmt: skip
    rows = scope.conn.execute(sa.select(ranked).where(ranked.c.rn == 1))
    return {r.customer_id: dict(r._mapping) for r in rows}


def products_by_sku(scope: Scope, skus: Collection[str]) -> dict[str, dict[str, Any]]:
    """Catalogue entries by SKU."""
    if not skus:
        return {}
    query = sa.select(*_product_columns()).where(
        products.c.workspace_id == scope.workspace_id, products.c.sku.in_(skus)
    )
    return {row.sku: dict(row._mapping) for row in scope.conn.execute(query)}


def recently_viewed(
    scope: Scope, ids: Collection[uuid.UUID], since: datetime, limit: int
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Up to ``limit`` catalogued products each customer viewed since ``since``, latest first."""
    e, p = events.c, products.c
    sku = sa.func.coalesce(e.properties["sku"].as_string(), e.properties["product_id"].as_string())
    viewed = (
        sa.select(e.customer_id, sku.label("sku"), sa.func.max(e.occurred_at).label("viewed_at"))
        .where(e.workspace_id == scope.workspace_id, e.customer_id.in_(ids),
               e.occurred_at >= since, e.name == "Product Viewed")
        .group_by(e.customer_id, sku)
        .subquery()
    )  # fmt: skip
    ranked = (
        sa.select(
            viewed.c.customer_id, viewed.c.viewed_at, *_product_columns(),
            sa.func.row_number().over(partition_by=viewed.c.customer_id,
                                      order_by=(viewed.c.viewed_at.desc(), p.sku)).label("rn"),
        )
        .select_from(viewed.join(products, sa.and_(p.workspace_id == scope.workspace_id,
                                                   p.sku == viewed.c.sku)))
        .subquery()
    )  # fmt: skip
    query = sa.select(ranked).where(ranked.c.rn <= limit).order_by(ranked.c.customer_id,
                                                                   ranked.c.rn)  # fmt: skip
    found: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in scope.conn.execute(query):
        found.setdefault(row.customer_id, []).append(dict(row._mapping))
    return found


def _sellers(conn: Connection, workspace_id: uuid.UUID, since: datetime, per: int) -> Any:
    i, o, p = order_items.c, orders.c, products.c
    sold = (
        sa.select(i.sku, sa.func.sum(i.quantity).label("sold"))
        .select_from(order_items.join(
            orders, sa.and_(o.workspace_id == i.workspace_id, o.order_id == i.order_id)))
        .where(i.workspace_id == workspace_id, o.ordered_at >= since, o.status == "placed")
        .group_by(i.sku)
        .subquery()
    )  # fmt: skip
    in_stock = sa.or_(p.stock.is_(None), p.stock > 0)
    ranked = (
        sa.select(
            *_product_columns(), sold.c.sold,
            sa.func.row_number().over(partition_by=p.category,
                                      order_by=(sold.c.sold.desc(), p.sku)).label("rn"),
        )
        .select_from(sold.join(products, sa.and_(p.workspace_id == workspace_id,
                                                 p.sku == sold.c.sku)))
        .where(in_stock)
        .subquery()
    )  # fmt: skip
    return conn.execute(
        sa.select(ranked).where(ranked.c.rn <= per).order_by(ranked.c.sold.desc(), ranked.c.sku)
    )


def best_sellers(
    scope: Scope, since: datetime, per_category: int
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """In-stock best sellers since ``since``: (overall, top ``per_category`` per category)."""
    key = (id(scope.conn.engine), scope.workspace_id)
    with _best_lock:
        cached = _best.get(key)
    if cached is not None and time.monotonic() - cached[0] < _BEST_SELLER_SECONDS:
        return cached[1]
    overall: list[dict[str, Any]] = []
    by_category: dict[str, list[dict[str, Any]]] = {}
    for row in _sellers(scope.conn, scope.workspace_id, since, per_category):
        product = {name: row._mapping[name] for name in PRODUCT_COLUMNS}
        if row.category is not None:
            by_category.setdefault(row.category, []).append(product)
        if len(overall) < per_category:
            overall.append(product)
    with _best_lock:
        _best[key] = (time.monotonic(), (overall, by_category))
    return overall, by_category


def bought(
    scope: Scope, ids: Collection[uuid.UUID], skus: Collection[str]
) -> set[tuple[uuid.UUID, str]]:
    """Which of ``skus`` each customer has ever ordered, as (customer, sku) pairs."""
    if not skus:
        return set()
    i = order_items.c
    query = (
        sa.select(i.customer_id, i.sku)
        .where(i.workspace_id == scope.workspace_id, i.customer_id.in_(ids), i.sku.in_(skus))
        .distinct()
    )
    return {(row.customer_id, row.sku) for row in scope.conn.execute(query)}


def sample_customer_id(scope: Scope, within: timedelta = timedelta(days=365)) -> uuid.UUID | None:
    """A customer to try templates on: the latest buyer, else the latest seen customer."""
    o, c = orders.c, customers.c
    buyer = scope.conn.execute(
        sa.select(o.customer_id)
        .where(o.workspace_id == scope.workspace_id, o.status == "placed",
               o.ordered_at >= scope.now - within)
        .order_by(o.ordered_at.desc())
        .limit(1)
    ).scalar()  # fmt: skip
    if buyer is not None:
        return uuid.UUID(str(buyer))
    seen = scope.conn.execute(
        sa.select(c.customer_id)
        .where(c.workspace_id == scope.workspace_id, c.merged_into.is_(None))
        .order_by(c.last_seen_at.desc())
        .limit(1)
    ).scalar()
    return None if seen is None else uuid.UUID(str(seen))
