"""Behaviour events and carts for one chunk: browsing, carts, checkouts, store and call-centre.

Events follow the Segment e-commerce spec names (``Product Viewed``, ``Product
Added``, ``Checkout Started``, ``Order Completed``); page views are ``page``
calls named ``Page Viewed``. Sessions that add to cart but never order leave an
``open`` cart, and those that start checkout leave a ``checkout_started`` cart:
the shop's abandoned carts and checkouts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kizuna.demo.chunk import ANONYMOUS, Chunk
from kizuna.demo.orders import OrderFacts

__all__ = ["build_activity"]

_WEB = {"channel": "web", "library": {"name": "kizuna-demo"}}
_STORE = {"channel": "store"}
_CALL = {"channel": "call_center"}
_PAGES = ("/", "/collections/new", "/collections/sale", "/blog/skincare-routine", "/ranking")
_CALL_REASONS = ("配送について", "返品・交換", "定期便の変更", "商品について", "会員情報の変更")
_MINUTE = 1 / 1440


class _Writer:
    def __init__(self, chunk: Chunk) -> None:
        self.chunk = chunk
        self.rows = chunk.table("events")
        self.prefix = f"demo-{chunk.seed}-{chunk.number:05d}-"
        self.products: dict[int, dict[str, Any]] = {}
        self.added_cache: dict[int, dict[str, Any]] = {}

    def add(
        self,
        c: int,
        day: float,
        name: str,
        props: dict[str, Any],
        *,
        kind: str = "track",
        user: bool = True,
        ctx: dict[str, Any] = _WEB,
    ) -> None:
        chunk = self.chunk
        at = chunk.cal.at(day)
        event_id = chunk.new_id(at)
        chunk.seen(c, day)
        cookies = chunk.cookies[c]
        self.rows.append({
            "workspace_id": chunk.workspace_id, "customer_id": chunk.customer_ids[c],
            "event_id": event_id, "message_id": f"{self.prefix}{len(self.rows):07d}",
            "type": kind, "name": name, "properties": props, "context": ctx,
            "anonymous_id": cookies[0] if cookies and ctx is _WEB else None,
            "user_id": chunk.user_ids[c] if user else None, "occurred_at": at, "received_at": at,
        })  # fmt: skip

    def product(self, sku: int) -> dict[str, Any]:
        # One shared (never mutated) dict per SKU, so it is serialized once per chunk.
        cached = self.products.get(sku)
        if cached is None:
            cat = self.chunk.catalogue
            cached = self.products[sku] = {
                "product_id": cat.sku[sku], "sku": cat.sku[sku], "name": cat.name[sku],
                "category": cat.category[sku], "brand": cat.brand[sku],
                "price": float(cat.price[sku]), "currency": "JPY",
            }  # fmt: skip
        return cached

    def added(self, sku: int) -> dict[str, Any]:
        cached = self.added_cache.get(sku)
        if cached is None:
            cached = self.added_cache[sku] = {**self.product(sku), "quantity": 1}
        return cached


def _order_events(w: _Writer, facts: OrderFacts) -> None:
    for k, (c, day, ch, sku) in enumerate(zip(
        facts.customer.tolist(), facts.day.tolist(), facts.channel.tolist(),
        facts.first_sku.tolist(), strict=True,
    )):  # fmt: skip
        if ch == 1:
            w.add(c, day - 15 * _MINUTE, "Store Visited", {"store_id": facts.store[k]}, ctx=_STORE)
        if ch != 0:
            continue
        if k % 2 == 0:
            w.add(c, day - 30 * _MINUTE, "Product Viewed", w.product(sku))
        w.add(c, day - 12 * _MINUTE, "Product Added", w.added(sku))
        w.add(c, day - 5 * _MINUTE, "Checkout Started", {"value": float(facts.total[k])})
        revenue = float(facts.total[k])
        completed = {"order_id": facts.ids[k], "revenue": revenue, "currency": "JPY"}
        w.add(c, day, "Order Completed", completed)


def _session_days(chunk: Chunk, facts: OrderFacts) -> tuple[np.ndarray, np.ndarray]:
    rng, n = chunk.rng, chunk.size
    orders = np.bincount(facts.customer, minlength=n)
    anonymous = chunk.kind == ANONYMOUS
    count = np.where(anonymous, 1 + rng.poisson(1.0, n), rng.poisson(0.5 + 0.3 * orders))
    owner = np.repeat(np.arange(n), count)
    span = np.where(anonymous, 30.0, 120.0 + 60.0 * orders)[owner]
    day = chunk.first_day[owner] - 3 + rng.random(len(owner)) * span
    day = np.clip(day, 0.0, chunk.cal.end_day - 10 * _MINUTE)
    return owner, day


def _sessions(w: _Writer, facts: OrderFacts) -> None:
    chunk = w.chunk
    rng, cat = chunk.rng, chunk.catalogue
    owner, day = _session_days(chunk, facts)
    m = len(owner)
    page = rng.integers(0, len(_PAGES), m).tolist()
    skus = rng.integers(0, len(cat), (m, 2)).tolist()
    views = (1 + (rng.random(m) < 0.3)).tolist()
    logged_in = (rng.random(m) < 0.5) & (chunk.kind[owner] != ANONYMOUS)
    added = (rng.random(m) < 0.18) & logged_in
    checkout = added & (rng.random(m) < 0.45)
    for s, (c, d) in enumerate(zip(owner.tolist(), day.tolist(), strict=True)):
        user = bool(logged_in[s])
        w.add(c, d, "Page Viewed", {"path": _PAGES[page[s]], "url": "https://shop.example.jp"
              + _PAGES[page[s]]}, kind="page", user=user)  # fmt: skip
        for v in range(views[s]):
            w.add(c, d + (v + 1) * _MINUTE, "Product Viewed", w.product(skus[s][v]), user=user)
        if added[s]:
            _abandon(w, c, d + 4 * _MINUTE, skus[s][0], bool(checkout[s]))


def _abandon(w: _Writer, c: int, day: float, sku: int, checkout: bool) -> None:
    chunk = w.chunk
    product = w.product(sku)
    w.add(c, day, "Product Added", w.added(sku))
    at = chunk.cal.at(day + 3 * _MINUTE)
    if checkout:
        w.add(c, day + 3 * _MINUTE, "Checkout Started", {"value": product["price"]})
    chunk.table("carts").append({
        "workspace_id": chunk.workspace_id, "customer_id": chunk.customer_ids[c],
        "cart_id": f"cart-{chunk.number:05d}-{len(chunk.table('carts')):06d}",
        "status": "checkout_started" if checkout else "open",
        "items": [w.added(sku)], "value": product["price"], "currency": "JPY",
        "order_id": None, "checkout_started_at": at if checkout else None, "updated_at": at,
    })  # fmt: skip


def _call_centre(w: _Writer) -> None:
    chunk = w.chunk
    rng = chunk.rng
    callers = np.flatnonzero((chunk.kind != ANONYMOUS) & (rng.random(chunk.size) < 0.06))
    for c in callers.tolist():
        span = max(chunk.cal.end_day - chunk.first_day[c], 1.0)
        for _ in range(1 + int(rng.random() < 0.3)):
            day = float(chunk.first_day[c] + rng.random() * span * 0.999)
            reason = _CALL_REASONS[int(rng.integers(len(_CALL_REASONS)))]
            props = {"reason": reason, "duration_sec": int(rng.integers(60, 900))}
            w.add(c, day, "Call Center Contact", props, ctx=_CALL)


def build_activity(chunk: Chunk, facts: OrderFacts) -> None:
    """Append ``events`` and ``carts`` rows for the chunk's orders, sessions and calls."""
    w = _Writer(chunk)
    _order_events(w, facts)
    _sessions(w, facts)
    _call_centre(w)
