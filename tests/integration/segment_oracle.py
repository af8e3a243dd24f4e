"""A brute-force Python evaluation of segment definitions, to check the SQL compiler against.

It reads every table of one workspace into plain Python and evaluates a condition
customer by customer, written from the language's documentation rather than from
the compiler: what counts as a purchase, how windows and dates bound, how a JSON
value of another kind never matches. Only the pure helpers that *define* ranges,
buckets, birthdays and place names are shared with the compiler.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.domain.buckets import bucket_of
from kizuna.domain.regions import PREFECTURES, find_prefecture, find_region, prefecture_names
from kizuna.segments.compiler import CompileContext
from kizuna.segments.compiler._context import Builder
from kizuna.segments.compiler._dates import Range, date_range, local_date_text, window_range
from kizuna.segments.compiler._profile import birthday_days
from kizuna.segments.definition import Condition, PropertyFilter
from kizuna.store.tables import (
    consents,
    customer_metrics,
    customers,
    events,
    identities,
    order_items,
    orders,
    suppressions,
)

NAMED = {"email": "email_hash", "sms": "phone_hash"}
KINDS = {"line": "line_user_id", "push": "device_token"}


@dataclass
class Shop:
    """One workspace's rows, grouped by customer."""

    customers: dict[uuid.UUID, dict[str, Any]]
    events: dict[uuid.UUID, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    purchases: dict[uuid.UUID, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    lines: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    consents: dict[tuple[uuid.UUID, str], str] = field(default_factory=dict)
    addresses: dict[tuple[uuid.UUID, str], list[bytes]] = field(
        default_factory=lambda: defaultdict(list)
    )
    suppressed: set[tuple[str, bytes]] = field(default_factory=set)
    metrics: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)


def _rows(conn: Connection, table: sa.Table, workspace_id: uuid.UUID) -> list[dict[str, Any]]:
    query = sa.select(table).where(table.c.workspace_id == workspace_id)
    return [dict(r._mapping) for r in conn.execute(query)]


def load_shop(conn: Connection, workspace_id: uuid.UUID) -> Shop:
    """Read everything a definition can look at."""
    shop = Shop({r["customer_id"]: r for r in _rows(conn, customers, workspace_id)})
    for r in _rows(conn, events, workspace_id):
        shop.events[r["customer_id"]].append(r)
    for r in _rows(conn, orders, workspace_id):
        shop.purchases[r["customer_id"]].append(r)
    for r in _rows(conn, order_items, workspace_id):
        shop.lines[r["order_id"]].append(r)
    for r in _rows(conn, consents, workspace_id):
        shop.consents[(r["customer_id"], r["channel"])] = r["status"]
    for r in _rows(conn, identities, workspace_id):
        shop.addresses[(r["customer_id"], r["kind"])].append(r["value_hash"])
    shop.suppressed = {
        (r["channel"], r["address_hash"]) for r in _rows(conn, suppressions, workspace_id)
    }
    shop.metrics = {r["customer_id"]: r for r in _rows(conn, customer_metrics, workspace_id)}
    return shop


class Oracle:
    """Evaluates conditions for every live customer of a shop."""

    def __init__(self, shop: Shop, ctx: CompileContext) -> None:
        self.shop, self.ctx = shop, ctx
        self.zone = ctx.workspace.time_zone

    def members(self, condition: Condition) -> set[uuid.UUID]:
        """The ids of live customers satisfying ``condition``."""
        return {
            cid
            for cid, row in self.shop.customers.items()
            if row["merged_into"] is None and self.holds(condition, cid)
        }

    def holds(self, node: Condition, cid: uuid.UUID) -> bool:
        """Whether one customer satisfies ``node``."""
        return bool(getattr(self, f"_{node.type}")(node, cid))

    # --- tree ---------------------------------------------------------------------
    def _and(self, node: Any, cid: uuid.UUID) -> bool:
        return all(self.holds(c, cid) for c in node.conditions)

    def _or(self, node: Any, cid: uuid.UUID) -> bool:
        return any(self.holds(c, cid) for c in node.conditions)

    def _not(self, node: Any, cid: uuid.UUID) -> bool:
        return not self.holds(node.condition, cid)

    def _segment(self, node: Any, cid: uuid.UUID) -> bool:
        return self.holds(self.ctx.segments[node.segment], cid)

    def _bucket(self, node: Any, cid: uuid.UUID) -> bool:
        return node.start <= bucket_of(cid, node.salt, node.buckets) <= node.end

    # --- profile ------------------------------------------------------------------
    def _dates(self, op: str, value: Any, moment: datetime | None) -> bool:
        if op in ("exists", "not_exists"):
            return (moment is not None) == (op == "exists")
        return date_range(op, value, self.ctx.now, self.zone, "value").holds(moment)

    def _trait(self, node: Any, cid: uuid.UUID) -> bool:
        row = self.shop.customers[cid]
        if node.trait.startswith("attributes."):
            stored = _dig(row["attributes"], node.trait.split(".")[1:])
            if node.op in ("before", "after", "between") or node.op.endswith("_days"):
                bounds = date_range(node.op, node.value, self.ctx.now, self.zone, "value")
                return isinstance(stored, str) and _text_in(stored, bounds, self.zone)
            return compare_value(stored, node.op, node.value)
        if node.trait in ("registered_at", "first_seen_at", "last_seen_at"):
            return self._dates(node.op, node.value, row[node.trait])
        if f"{node.trait}_enc" in row:
            return (row[f"{node.trait}_enc"] is not None) == (node.op == "exists")
        return compare_value(row[node.trait], node.op, node.value)

    def _birthday(self, node: Any, cid: uuid.UUID) -> bool:
        return self.shop.customers[cid]["birth_md"] in birthday_days(node, Builder(self.ctx))

    def _location(self, node: Any, cid: uuid.UUID) -> bool:
        chosen = [find_prefecture(n) for n in node.prefectures]
        regions = [find_region(n) for n in node.regions]
        chosen += [p for p in PREFECTURES if p.region in regions]
        names = {n for p in chosen if p for n in prefecture_names(p)}
        return self.shop.customers[cid]["prefecture"] in names

    def _metric(self, node: Any, cid: uuid.UUID) -> bool:
        row = self.shop.metrics.get(cid)
        value = None if row is None else row[node.metric]
        if node.metric == "expected_next_order_at":
            return self._dates(node.op, node.value, value)
        return compare_value(value, node.op, node.value)

    # --- channels -----------------------------------------------------------------
    def _addresses(self, cid: uuid.UUID, channel: str) -> list[bytes]:
        if channel in NAMED:
            value = self.shop.customers[cid][NAMED[channel]]
            return [value] if value is not None else []
        return self.shop.addresses.get((cid, KINDS[channel]), [])

    def _channel(self, node: Any, cid: uuid.UUID) -> bool:
        status = self.shop.consents.get((cid, node.channel))
        addresses = self._addresses(cid, node.channel)
        free = [a for a in addresses if (node.channel, a) not in self.shop.suppressed]
        return {
            "opted_in": status == "opted_in",
            "opted_out": status == "opted_out",
            "has_address": bool(addresses),
            "suppressed": len(free) < len(addresses),
            "reachable": status == "opted_in" and bool(free),
        }[node.state]

    # --- behaviour ------------------------------------------------------------------
    def _matching_events(self, node: Any, cid: uuid.UUID, window: Range) -> list[datetime]:
        return [
            e["occurred_at"]
            for e in self.shop.events.get(cid, [])
            if e["name"] == node.name
            and window.holds(e["occurred_at"])
            and all(_property_holds(e["properties"], f) for f in node.where)
        ]

    def _event(self, node: Any, cid: uuid.UUID) -> bool:
        window = window_range(node.within, self.ctx.now, self.zone, "within")
        n = len(self._matching_events(node, cid, window))
        if node.at_least is None and node.at_most is None:
            return n >= 1
        low = node.at_least if node.at_least is not None else 0
        return n >= low and (node.at_most is None or n <= node.at_most)

    def _event_time(self, node: Any, cid: uuid.UUID) -> bool:
        times = self._matching_events(
            node, cid, Range(None, window_range(None, self.ctx.now, self.zone, "").end)
        )
        if not times:
            return False
        return self._dates(node.op, node.value, min(times) if node.which == "first" else max(times))

    # --- purchases ------------------------------------------------------------------
    def _purchases(self, cid: uuid.UUID, within: Any) -> list[dict[str, Any]]:
        window = window_range(within, self.ctx.now, self.zone, "within")
        return [
            o
            for o in self.shop.purchases.get(cid, [])
            if o["status"] != "cancelled"
            and o["total"] - o["refunded"] > 0
            and window.holds(o["ordered_at"])
        ]

    def _orders(self, node: Any, cid: uuid.UUID) -> bool:
        bought = [
            o
            for o in self._purchases(cid, node.within)
            if not node.channel or o["channel"] in node.channel
        ]
        total = sum(o["total"] - o["refunded"] for o in bought)
        average = total / len(bought) if bought else None
        measure = {"count": len(bought), "total": total, "average_value": average}[node.measure]
        return compare_value(measure, node.op, node.value)

    def _order_date(self, node: Any, cid: uuid.UUID) -> bool:
        times = [o["ordered_at"] for o in self._purchases(cid, None)]
        if not times:
            return False
        return self._dates(node.op, node.value, min(times) if node.which == "first" else max(times))

    def _net_lines(self, cid: uuid.UUID, within: Any) -> list[tuple[dict[str, Any], float, int]]:
        kept = []
        for o in self._purchases(cid, within):
            for line in self.shop.lines.get(o["order_id"], []):
                units = line["quantity"] - line["returned_quantity"]
                gross = line["quantity"] * line["unit_price"] - line["discount"]
                revenue = gross * units / line["quantity"] if line["quantity"] else 0
                if units > 0 and revenue > 0:
                    kept.append((line, revenue, units))
        return kept

    def _bought(self, node: Any, cid: uuid.UUID) -> bool:
        tests = [("category", node.categories), ("brand", node.brands), ("sku", node.skus)]
        return any(
            all(not values or (line[col] or "(none)") in values for col, values in tests)
            for line, _, _ in self._net_lines(cid, node.within)
        )

    def _price_type(self, node: Any, cid: uuid.UUID) -> bool:
        kept = self._net_lines(cid, node.within)
        if not kept:
            return False
        share = sum(r for line, r, _ in kept if line["is_sale"]) / sum(r for _, r, _ in kept)
        pb = "full_price" if share <= 0.2 else "sale" if share >= 0.8 else "mixed"
        return pb == node.buyer


def _dig(document: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(document, dict) or key not in document:
            return None
        document = document[key]
    return document


def _text_in(stored: str, bounds: Range, zone: str) -> bool:
    low = bounds.start is None or stored >= local_date_text(bounds.start, zone)
    return low and (bounds.end is None or stored < local_date_text(bounds.end, zone))


def _same_kind(stored: Any, value: Any) -> bool:
    if isinstance(value, bool) or isinstance(stored, bool):
        return isinstance(value, bool) and isinstance(stored, bool)
    if isinstance(value, int | float):
        return isinstance(stored, int | float)
    return isinstance(stored, str)


def compare_value(stored: Any, op: str, value: Any) -> bool:
    """``stored op value`` as the language defines it (other kinds never match)."""
    if op in ("exists", "not_exists"):
        return (stored is not None and isinstance(stored, str | int | float | bool)) == (
            op == "exists"
        )
    if op in ("ne", "not_in"):
        return not compare_value(stored, "eq" if op == "ne" else "in", value)
    if op == "in":
        return any(compare_value(stored, "eq", v) for v in value)
    if op == "between":
        return compare_value(stored, "gte", value[0]) and compare_value(stored, "lte", value[1])
    if stored is None or not _same_kind(stored, value if op != "contains" else ""):
        return False
    if op == "contains":
        return str(value) in stored
    return {
        "eq": stored == value,
        "gt": stored > value,
        "gte": stored >= value,
        "lt": stored < value,
        "lte": stored <= value,
    }[op]


def _property_holds(properties: dict[str, Any], f: PropertyFilter) -> bool:
    return compare_value(_dig(properties, f.property.split(".")), f.op, f.value)
