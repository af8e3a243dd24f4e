"""Personalization contexts: what a template knows about each customer, built per batch.

One call reads a whole batch in a fixed number of queries (profiles, last orders and
their lines, open carts, recently viewed products, best sellers, what was bought),
never one per customer. Every context has the keys of :data:`MINIMAL_CONTEXT`;
the optional ones appear only when the customer has them (``None`` never reaches a
template: a value is there or it is missing, see :mod:`kizuna.content.missing`).
Times are shown in the workspace's zone.

Keys (the documented sample is :data:`SAMPLE_CONTEXT`)::

    customer_id, order_count, attributes{…}, loyalty{rank?, rfm_segment?,
    rfm_segment_name?, rfm_segment_name_en?, clv?}, recently_viewed[product],
    recommended[product], sender{name, postal_address, contact}
    optional: shop_customer_id, first_name, last_name, full_name, first_name_kana,
    last_name_kana, full_name_kana, email, prefecture, city, birthday{month, day},
    registered_at, last_order{number, date, total, currency, channel, item_count,
    items[line]}, cart{id, status, value, currency, updated_at, item_count, items[line]}
    product: sku, product_id, name, in_stock, and optional category, brand, price,
    url, image_url; line: sku, quantity, price, and optional product_id, name,
    category, brand, url, image_url
    per message: links{unsubscribe_url, preferences_url, unsubscribe_mailto?} and
    the message's params (they override anything above)

Recommended products are the best sellers of the last 90 days in the categories
the customer viewed most recently, then overall, leaving out what they viewed or
ever bought, in stock only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kizuna.analytics.rfm_rules import DEFAULT_SEGMENT_RULES
from kizuna.content import _queries as q
from kizuna.delivery.settings import DeliverySettings, load_delivery_settings
from kizuna.store.scope import Scope
from kizuna.store.templates import Recipient, read_recipients
from kizuna.store.workspaces import get_workspace

__all__ = [
    "MINIMAL_CONTEXT",
    "OPTIONAL_OBJECTS",
    "SAMPLE_CONTEXT",
    "build_contexts",
    "clean",
    "message_context",
    "sample_links",
    "sender_context",
]

WINDOW = timedelta(days=90)
PRODUCTS = 6  # recently viewed and recommended products per customer
_RFM_NAMES = {r.key: (r.label_ja, r.label_en) for r in DEFAULT_SEGMENT_RULES.rules}

_PRODUCT = {"sku": "SKU-0001", "product_id": "P-0001", "name": "薬用美白美容液 30mL",
            "category": "スキンケア", "brand": "KIZUNA", "price": 4980,
            "url": "https://shop.example.jp/products/P-0001",
            "image_url": "https://shop.example.jp/images/P-0001.jpg", "in_stock": True}  # fmt: skip
_LINE = {"sku": "SKU-0002", "product_id": "P-0002", "name": "保湿化粧水 150mL", "quantity": 2,
         "price": 2750, "category": "スキンケア", "brand": "KIZUNA",
         "url": "https://shop.example.jp/products/P-0002",
         "image_url": "https://shop.example.jp/images/P-0002.jpg"}  # fmt: skip
_WHEN = datetime.fromisoformat("2026-03-20T19:30:00+09:00")
SAMPLE_CONTEXT: dict[str, Any] = {
    "customer_id": "00000000-0000-7000-8000-000000000000", "shop_customer_id": "C0001",
    "first_name": "花子", "last_name": "山田", "full_name": "山田 花子",
    "first_name_kana": "ハナコ", "last_name_kana": "ヤマダ", "full_name_kana": "ヤマダ ハナコ",
    "email": "hanako@example.jp", "prefecture": "東京都", "city": "渋谷区",
    "birthday": {"month": 4, "day": 15}, "registered_at": _WHEN - timedelta(days=400),
    "attributes": {}, "order_count": 3,
    "loyalty": {"rank": "ゴールド", "rfm_segment": "loyal", "rfm_segment_name": "ロイヤル顧客",
                "rfm_segment_name_en": "Loyal", "clv": 48000},
    "last_order": {"number": "A-10023", "date": _WHEN, "total": 5500, "currency": "JPY",
                   "channel": "online", "item_count": 2, "items": [_LINE]},
    "cart": {"id": "default", "status": "open", "value": 4980, "currency": "JPY",
             "updated_at": _WHEN, "item_count": 1, "items": [{**_LINE, "quantity": 1}]},
    "recently_viewed": [_PRODUCT], "recommended": [{**_PRODUCT, "sku": "SKU-0003"}],
    "sender": {"name": "株式会社サンプル", "postal_address": "東京都渋谷区1-2-3",
               "contact": "support@example.jp"},
}  # fmt: skip
_MIN_PRODUCT = {"sku": "SKU-0001", "product_id": "P-0001", "name": "商品", "in_stock": True}
_MIN_LINE = {"sku": "SKU-0002", "quantity": 1, "price": 1000}
MINIMAL_CONTEXT: dict[str, Any] = {
    "customer_id": SAMPLE_CONTEXT["customer_id"], "attributes": {}, "order_count": 0,
    "loyalty": {}, "recently_viewed": [_MIN_PRODUCT], "recommended": [_MIN_PRODUCT],
    "sender": {"name": "", "postal_address": "", "contact": ""},
    "last_order": {"number": "A-1", "date": _WHEN, "total": 1000, "currency": "JPY",
                   "channel": "online", "item_count": 1, "items": [_MIN_LINE]},
    "cart": {"id": "default", "status": "open", "value": 1000, "currency": "JPY",
             "updated_at": _WHEN, "item_count": 1, "items": [_MIN_LINE]},
}  # fmt: skip
OPTIONAL_OBJECTS = ("last_order", "cart")  # present in MINIMAL_CONTEXT only to check their insides


def sample_links(public_url: str, *, mailto: str = "") -> dict[str, str]:
    """Stand-in links for validation and previews (they unsubscribe nobody)."""
    base = public_url.rstrip("/")
    links = {"unsubscribe_url": f"{base}/u/preview", "preferences_url": f"{base}/p/preview"}
    if mailto:
        links["unsubscribe_mailto"] = f"mailto:{mailto}?subject=unsubscribe"
    return links


def _clean_map(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: clean(v) for k, v in value.items() if v is not None}


def _flat(value: Mapping[str, Any]) -> dict[str, Any]:
    """A flat mapping without its None values (no recursion: the hot path of a batch)."""
    return {k: v for k, v in value.items() if v is not None}


def clean(value: Any) -> Any:
    """``value`` with every ``None`` left out of its mappings and lists, recursively."""
    if isinstance(value, Mapping):
        return _clean_map(value)
    if isinstance(value, list | tuple):
        return [clean(v) for v in value if v is not None]
    return value


def message_context(
    base: Mapping[str, Any],
    *,
    params: Mapping[str, Any] | None = None,
    links: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One message's context: the customer's, then its params and links on top."""
    merged = dict(base)
    if params:
        merged.update(_clean_map(params))
    if links is not None:
        merged["links"] = _clean_map(links)
    return merged


def sender_context(settings: DeliverySettings) -> dict[str, str]:
    """What templates may show of the sender (``{{ sender.name }}``)."""
    s = settings.sender
    return {"name": s.name, "postal_address": s.postal_address, "contact": s.contact}


def _money(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _product(row: Mapping[str, Any]) -> dict[str, Any]:
    stock = row.get("stock")
    item = {name: row.get(name) for name in q.PRODUCT_COLUMNS if name != "stock"}
    item["price"] = _money(item["price"])
    item["in_stock"] = stock is None or stock > 0
    return _flat(item)


def _line(item: Mapping[str, Any], product: Mapping[str, Any] | None) -> dict[str, Any]:
    catalogue = product or {}
    return _flat({
        "sku": item.get("sku"), "product_id": item.get("product_id") or catalogue.get("product_id"),
        "name": item.get("product_name") or item.get("name") or catalogue.get("name"),
        "category": item.get("category") or catalogue.get("category"),
        "brand": item.get("brand") or catalogue.get("brand"),
        "quantity": int(item.get("quantity") or 1),
        "price": _money(float(item.get("unit_price", item.get("price")) or 0)),
        "url": item.get("url") or catalogue.get("url"),
        "image_url": item.get("image_url") or catalogue.get("image_url"),
    })  # fmt: skip


def _order(row: Mapping[str, Any], lines: list[dict[str, Any]], zone: ZoneInfo) -> dict[str, Any]:
    items = [_line(line, None) for line in lines]
    return {"number": row["order_id"], "date": row["ordered_at"].astimezone(zone),
            "total": _money(row["total"]), "currency": row["currency"], "channel": row["channel"],
            "item_count": sum(i["quantity"] for i in items), "items": items}  # fmt: skip


def _cart(
    row: Mapping[str, Any], catalogue: Mapping[str, Mapping[str, Any]], zone: ZoneInfo
) -> dict[str, Any] | None:
    items = [_line(i, catalogue.get(str(i.get("sku")))) for i in row["items"] or []]
    if not items:
        return None
    return {"id": row["cart_id"], "status": row["status"], "value": _money(row["value"]),
            "currency": row["currency"], "updated_at": row["updated_at"].astimezone(zone),
            "item_count": sum(i["quantity"] for i in items), "items": items}  # fmt: skip


def _joined(*parts: str | None) -> str | None:
    present = [p for p in parts if p]
    return " ".join(present) if present else None


def _profile(r: Recipient, zone: ZoneInfo) -> dict[str, Any]:
    birthday = None
    if r.birth_md:
        month, day = r.birth_md.split("-")
        birthday = {"month": int(month), "day": int(day)}
    names = _RFM_NAMES.get(r.rfm_segment or "", (None, None))
    return _flat({
        "customer_id": str(r.customer_id), "shop_customer_id": r.shop_customer_id,
        "first_name": r.first_name, "last_name": r.last_name,
        "full_name": _joined(r.last_name, r.first_name), "first_name_kana": r.first_name_kana,
        "last_name_kana": r.last_name_kana,
        "full_name_kana": _joined(r.last_name_kana, r.first_name_kana), "email": r.email,
        "prefecture": r.prefecture, "city": r.city, "birthday": birthday,
        "registered_at": r.registered_at.astimezone(zone) if r.registered_at else None,
        "attributes": _clean_map(r.attributes),
        "loyalty": _flat({"rank": r.membership_rank, "rfm_segment": r.rfm_segment,
                          "rfm_segment_name": names[0], "rfm_segment_name_en": names[1],
                          "clv": _money(r.clv)}),
    })  # fmt: skip


def _recommend(
    viewed: list[dict[str, Any]],
    overall: list[dict[str, Any]],
    by_category: Mapping[str, list[dict[str, Any]]],
    owned: set[str],
) -> list[dict[str, Any]]:
    """Up to PRODUCTS best sellers (already in context form), viewed categories first."""
    skip = owned | {p["sku"] for p in viewed}
    categories = dict.fromkeys(p["category"] for p in viewed if p.get("category"))
    picks: list[dict[str, Any]] = []
    for candidates in (*(by_category.get(c, []) for c in categories), overall):
        for product in candidates:
            if len(picks) == PRODUCTS:
                return picks
            if product["sku"] not in skip:
                skip.add(product["sku"])
                picks.append(product)
    return picks


def _best_sellers(
    scope: Scope,
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Best sellers in context form, converted once per batch (customers share the dicts)."""
    overall, by_category = q.best_sellers(scope, scope.now - WINDOW, PRODUCTS * 2)
    ready = {p["sku"]: _product(p) for p in overall}
    for products in by_category.values():
        ready.update((p["sku"], _product(p)) for p in products if p["sku"] not in ready)
    return [ready[p["sku"]] for p in overall], {
        category: [ready[p["sku"]] for p in products] for category, products in by_category.items()
    }


def build_contexts(
    scope: Scope,
    customer_ids: Iterable[uuid.UUID],
    params_by_customer: Mapping[uuid.UUID, Mapping[str, Any]] | None = None,
    *,
    settings: DeliverySettings | None = None,
) -> dict[uuid.UUID, dict[str, Any]]:
    """Contexts of the customers that exist among ``customer_ids``, in a few queries.

    ``params_by_customer`` is laid over each context (a message's params win).
    """
    ids = list(dict.fromkeys(customer_ids))
    settings = settings or load_delivery_settings(scope.conn, scope.workspace_id)
    zone = ZoneInfo(get_workspace(scope.conn, scope.workspace_id).time_zone)
    recipients = read_recipients(scope, ids)
    ids = [cid for cid in ids if cid in recipients]
    if not ids:
        return {}
    orders, carts = _purchases(scope, ids, zone)
    viewed, recommended = _products(scope, ids)
    sender = sender_context(settings)
    contexts = {}
    for cid in ids:
        context = _profile(recipients[cid], zone)
        order = orders.get(cid)
        context["order_count"] = order.pop("order_count") if order else 0
        if order:
            context["last_order"] = order
        if cid in carts:
            context["cart"] = carts[cid]
        context["recently_viewed"] = viewed.get(cid, [])
        context["recommended"] = recommended[cid]
        context["sender"] = sender
        params = (params_by_customer or {}).get(cid)
        contexts[cid] = message_context(context, params=params)
    return contexts


def _purchases(
    scope: Scope, ids: list[uuid.UUID], zone: ZoneInfo
) -> tuple[dict[uuid.UUID, dict[str, Any]], dict[uuid.UUID, dict[str, Any]]]:
    """Last orders (with ``order_count``, for the caller to take out) and open carts."""
    orders = q.last_orders(scope, ids)
    lines = q.order_lines(scope, [o["order_id"] for o in orders.values()])
    carts = q.open_carts(scope, ids)
    skus = {str(i.get("sku")) for c in carts.values() for i in c["items"] or []}
    catalogue = q.products_by_sku(scope, skus)
    last = {
        cid: {**_order(o, lines.get(o["order_id"], []), zone), "order_count": int(o["order_count"])}
        for cid, o in orders.items()
    }
    open_carts = {cid: _cart(c, catalogue, zone) for cid, c in carts.items()}
    return last, {cid: cart for cid, cart in open_carts.items() if cart}


def _products(
    scope: Scope, ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, list[dict[str, Any]]], dict[uuid.UUID, list[dict[str, Any]]]]:
    """Recently viewed and recommended products per customer."""
    seen = q.recently_viewed(scope, ids, scope.now - WINDOW, PRODUCTS)
    overall, by_category = _best_sellers(scope)
    candidates = {p["sku"] for p in overall} | {p["sku"] for ps in by_category.values() for p in ps}
    owned: dict[uuid.UUID, set[str]] = {}
    for who, sku in q.bought(scope, ids, candidates):
        owned.setdefault(who, set()).add(sku)
    viewed = {cid: [_product(p) for p in products] for cid, products in seen.items()}
    recommended = {
        cid: _recommend(viewed.get(cid, []), overall, by_category, owned.get(cid, set()))
        for cid in ids
    }
    return viewed, recommended
