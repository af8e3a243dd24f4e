"""Orders and line items shaped as :func:`kizuna.store.commerce.order_rows` makes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from kizuna.demo.behaviour import Purchases
from kizuna.demo.catalogue import pick_skus
from kizuna.demo.chunk import Chunk

__all__ = ["CHANNELS", "STORES", "OrderFacts", "build_orders"]

CHANNELS = ("online", "store", "marketplace")
STORES = ("store-omotesando", "store-umeda", "store-tenjin", "store-sakae")
_DISCOUNT_RATES = np.array([0.2, 0.3, 0.5])


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the event and profile builders need to know about the chunk's orders."""

    ids: list[str]
    customer: np.ndarray
    day: np.ndarray
    channel: np.ndarray
    total: np.ndarray
    placed: np.ndarray  # neither cancelled nor returned
    first_sku: np.ndarray
    store: list[str | None]


@dataclass(frozen=True, slots=True)
class _Lines:
    order: np.ndarray
    sku: np.ndarray
    quantity: np.ndarray
    discount: np.ndarray
    is_sale: np.ndarray
    net: np.ndarray


def _lines(chunk: Chunk, p: Purchases, sale_affinity: np.ndarray) -> _Lines:
    rng, cat = chunk.rng, chunk.catalogue
    count = np.clip(1 + rng.poisson(np.maximum(p.value / 5_000 - 0.6, 0)), 1, 6)
    order = np.repeat(np.arange(len(count)), count)
    own = rng.random(len(order)) < 0.6
    other = rng.choice(len(cat.category_share), len(order), p=cat.category_share)
    category = np.where(own, chunk.favourite[p.customer[order]], other)
    sku = pick_skus(cat, rng, category, p.value[order] / count[order])
    quantity = rng.choice(3, len(order), p=[0.82, 0.14, 0.04]) + 1
    on_sale_day = chunk.cal.sale[p.day[order].astype(int)]
    s = sale_affinity[p.customer[order]]
    is_sale = rng.random(len(order)) < np.clip(
        np.where(on_sale_day, 0.2 + 0.75 * s, 0.5 * s), 0, 0.95
    )
    gross = cat.price[sku] * quantity
    rate = _DISCOUNT_RATES[rng.choice(3, len(order), p=[0.5, 0.35, 0.15])]
    discount = np.where(is_sale, np.round(gross * rate, -1), 0.0)
    return _Lines(order, sku, quantity, discount, is_sale, gross - discount)


def _channels(chunk: Chunk, p: Purchases) -> np.ndarray:
    rng = chunk.rng
    primary = rng.choice(3, chunk.size, p=[0.72, 0.14, 0.14])
    stray = rng.random(len(p.customer)) < 0.15
    return np.where(stray, rng.choice(3, len(p.customer), p=[0.6, 0.2, 0.2]), primary[p.customer])


def build_orders(chunk: Chunk, p: Purchases) -> OrderFacts:
    """Append ``orders`` and ``order_items`` rows; returns the facts other builders use."""
    rng, cat = chunk.rng, chunk.catalogue
    sale_affinity = rng.beta(0.6, 1.6, chunk.size)
    lines = _lines(chunk, p, sale_affinity)
    m = len(p.customer)
    subtotal = np.bincount(lines.order, lines.net, minlength=m)
    welcome = (p.seq == 0) & (rng.random(m) < 0.2) & (subtotal > 2_000)
    sale_coupon = chunk.cal.sale[p.day.astype(int)] & (rng.random(m) < 0.1) & (subtotal >= 8_000)
    discount = np.where(welcome, 500.0, 0.0) + np.where(sale_coupon & ~welcome, 1_000.0, 0.0)
    taxed = np.bincount(lines.order, lines.net * cat.tax_rate[lines.sku], minlength=m)
    tax = np.floor(np.maximum(taxed - discount * 0.1, 0))
    channel = _channels(chunk, p)
    shipping = np.where((channel == 0) & (subtotal < 5_000), 550.0, 0.0)
    total = subtotal - discount + shipping + tax
    status = rng.choice(3, m, p=[0.965, 0.02, 0.015])
    status[(status == 2) & (p.day > chunk.cal.end_day - 14)] = 0
    first_line = np.searchsorted(lines.order, np.arange(m))
    facts = OrderFacts(
        ids=[f"KZ-{chunk.number:05d}-{k:06d}" for k in range(1, m + 1)],
        customer=p.customer, day=p.day, channel=channel, total=total, placed=status == 0,
        first_sku=lines.sku[first_line],
        store=[STORES[r] if c == 1 else None
               for r, c in zip(rng.integers(0, len(STORES), m).tolist(), channel.tolist(),
                               strict=True)],
    )  # fmt: skip
    coupon = np.where(welcome, "WELCOME500", np.where(sale_coupon, "SALE1000", ""))
    _order_rows(chunk, facts, status, (subtotal, discount, shipping, tax, total), coupon)
    _item_rows(chunk, facts, lines, status)
    return facts


def _order_rows(
    chunk: Chunk,
    facts: OrderFacts,
    status: np.ndarray,
    money: tuple[np.ndarray, ...],
    coupon: np.ndarray,
) -> None:
    ws, now, cal, rows = chunk.workspace_id, chunk.now, chunk.cal, chunk.table("orders")
    ids = chunk.customer_ids
    subtotal, discount, shipping, tax, total = (a.tolist() for a in money)
    delay = chunk.rng.uniform(0.05, 1.0, len(status)).tolist()
    names = ("placed", "cancelled", "returned")
    for k, (c, day, ch, st) in enumerate(
        zip(facts.customer.tolist(), facts.day.tolist(), facts.channel.tolist(), status.tolist(),
            strict=True)
    ):  # fmt: skip
        at = cal.at(day)
        chunk.seen(c, day)
        rows.append({
            "workspace_id": ws, "order_id": facts.ids[k], "customer_id": ids[c],
            "ordered_at": at, "channel": CHANNELS[ch], "status": names[st], "currency": "JPY",
            "subtotal": subtotal[k], "discount": discount[k], "shipping": shipping[k],
            "tax": tax[k], "total": total[k], "refunded": total[k] if st == 2 else 0.0,
            "coupon": coupon[k] or None, "store_id": facts.store[k],
            "cancelled_at": at + timedelta(days=delay[k]) if st == 1 else None,
            "returned_at": at + timedelta(days=7 + 7 * delay[k]) if st == 2 else None,
            "updated_at": now,
        })  # fmt: skip
        if st == 1 and rows[-1]["cancelled_at"] > now:
            rows[-1]["cancelled_at"] = now


def _item_rows(chunk: Chunk, facts: OrderFacts, lines: _Lines, status: np.ndarray) -> None:
    ws, cat, rows = chunk.workspace_id, chunk.catalogue, chunk.table("order_items")
    ids = chunk.customer_ids
    owner = facts.customer.tolist()
    returned = status[lines.order] == 2
    line_no = 0
    previous = -1
    for o, s, q, d, sale, ret in zip(
        lines.order.tolist(), lines.sku.tolist(), lines.quantity.tolist(),
        lines.discount.tolist(), lines.is_sale.tolist(), returned.tolist(), strict=True,
    ):  # fmt: skip
        line_no = line_no + 1 if o == previous else 1
        previous = o
        rows.append({
            "workspace_id": ws, "order_id": facts.ids[o], "line_no": line_no,
            "customer_id": ids[owner[o]], "sku": cat.sku[s], "product_id": cat.sku[s],
            "product_name": cat.name[s], "category": cat.category[s], "brand": cat.brand[s],
            "quantity": q, "unit_price": float(cat.price[s]), "discount": d,
            "coupon": None, "is_sale": sale, "returned_quantity": q if ret else 0,
        })  # fmt: skip
