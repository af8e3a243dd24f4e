"""Orders files: one row per line item, grouped into orders as the rows stream past."""

from __future__ import annotations

from typing import Any

from kizuna.domain.records import LineItem, OrderRecord
from kizuna.ingest.files._convert import Accepted, Outcome, Rejected, build, identifiers, synonym
from kizuna.ingest.files._mapping import ColumnMap
from kizuna.ingest.files._values import RowError, flag, ident, integer, number, when

__all__ = ["OrderAssembler"]

_AMOUNTS = ("subtotal", "shipping", "tax", "total", "refunded")


class OrderAssembler:
    """Groups consecutive rows with the same order id into one OrderRecord."""

    def __init__(self, cm: ColumnMap, tz: str) -> None:
        self._cm, self._tz = cm, tz
        self._order_id: str | None = None
        self._head: dict[str, Any] = {}
        self._lines: list[int] = []
        self._items: list[LineItem] = []
        self._errors: dict[int, str] = {}

    def feed(self, line: int, values: dict[str, Any]) -> list[Outcome]:
        """Add a row; returns the previous order once a new order id starts."""
        order_id = ident(values.get("order_id"))
        if order_id is None:
            where = self._cm.header_of("order_id")
            return [Rejected({line: f"column '{where}' (order_id): required, but blank"})]
        done = self.finish() if order_id != self._order_id else []
        if not self._lines:
            self._order_id, self._head = order_id, values
        self._lines.append(line)
        try:
            item = self._item(values)
        except RowError as exc:
            self._errors[line] = exc.reason
        else:
            if item is not None:
                self._items.append(item)
        return done

    def finish(self) -> list[Outcome]:
        """Close the open order (if any) and return its outcome."""
        if not self._lines:
            return []
        lines, errors, order_id = self._lines, self._errors, self._order_id
        outcome: Outcome
        try:
            if errors:
                raise RowError("")
            outcome = Accepted(lines, self._order(self._head))
        except RowError as exc:
            if not errors:
                errors = {lines[0]: exc.reason}
            first = min(errors)
            note = f"order '{order_id}' rejected because line {first} was: {errors[first]}"
            outcome = Rejected({n: errors.get(n, note) for n in lines})
        self._order_id, self._head, self._lines, self._items, self._errors = None, {}, [], [], {}
        return [outcome]

    def _item(self, v: dict[str, Any]) -> LineItem | None:
        sku = ident(v.get("sku"))
        if sku is None:
            return None
        h = self._cm.header_of
        data: dict[str, Any] = {
            "sku": sku, "product_id": ident(v.get("product_id")),
            "product_name": ident(v.get("product_name")), "category": ident(v.get("category")),
            "brand": ident(v.get("brand")), "coupon": ident(v.get("item_coupon")),
        }  # fmt: skip
        for name in ("quantity", "returned_quantity"):
            data[name] = integer(v.get(name), h(name), name)
        for name in ("unit_price", "discount"):
            data[name] = number(v.get(name), h(name), name)
        data["is_sale"] = flag(v.get("is_sale"), h("is_sale"), "is_sale")
        return build(LineItem, {k: x for k, x in data.items() if x is not None}, self._cm)

    def _order(self, v: dict[str, Any]) -> OrderRecord:
        h, tz = self._cm.header_of, self._tz
        data: dict[str, Any] = {
            "order_id": self._order_id, "customer": identifiers(v, self._cm),
            "items": self._items, "coupon": ident(v.get("coupon")),
            "store_id": ident(v.get("store_id")), "currency": ident(v.get("currency")),
            "channel": synonym("channel", v.get("channel")),
            "status": synonym("status", v.get("status")),
            "discount": number(v.get("order_discount"), h("order_discount"), "order_discount"),
        }  # fmt: skip
        for name in ("ordered_at", "cancelled_at", "returned_at"):
            data[name] = when(v.get(name), h(name), name, tz)
        if data["ordered_at"] is None:
            raise RowError(f"column '{h('ordered_at')}' (ordered_at): required, but blank")
        for name in _AMOUNTS:
            data[name] = number(v.get(name), h(name), name)
        return build(OrderRecord, {k: x for k, x in data.items() if x is not None}, self._cm)
