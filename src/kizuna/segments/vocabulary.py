"""What a definition may name without asking the store: built-in traits, metrics, channels."""

from __future__ import annotations

from typing import Literal

from kizuna.store.messages import MESSAGE_EVENTS

__all__ = [
    "ATTRIBUTE_PREFIX",
    "DATE_TRAITS",
    "METRICS",
    "PERSONAL_TRAITS",
    "STANDARD_EVENTS",
    "TEXT_TRAITS",
    "MetricKind",
    "trait_kind",
]

ATTRIBUTE_PREFIX = "attributes."
TEXT_TRAITS = frozenset({"gender", "prefecture", "city", "membership_rank", "shop_customer_id"})
DATE_TRAITS = frozenset({"registered_at", "first_seen_at", "last_seen_at"})
# Stored encrypted: only whether they are present can be asked in SQL.
PERSONAL_TRAITS = frozenset(
    {"email", "phone", "last_name", "first_name", "last_name_kana", "first_name_kana",
     "postal_code", "address", "birthday"}
)  # fmt: skip

MetricKind = Literal["number", "text", "date"]
METRICS: dict[str, MetricKind] = {
    "r_score": "number", "f_score": "number", "m_score": "number", "recency_days": "number",
    "frequency": "number", "monetary": "number", "p_alive": "number",
    "expected_purchases": "number", "clv": "number", "rfm_segment": "text",
    "expected_next_order_at": "date",
}  # fmt: skip

# Segment-spec e-commerce events a shop sends (so a segment may name one before it arrives).
STANDARD_EVENTS = frozenset(
    {"Products Searched", "Product List Viewed", "Product Viewed", "Product Clicked",
     "Product Added", "Product Removed", "Cart Viewed", "Checkout Started",
     "Checkout Step Completed", "Payment Info Entered", "Order Completed", "Order Updated",
     "Order Refunded", "Order Cancelled", "Coupon Applied", "Product Added to Wishlist",
     "Product Reviewed", "Product Shared", "Signed Up", "Signed In"}
) | frozenset(MESSAGE_EVENTS)  # fmt: skip


def trait_kind(trait: str) -> Literal["text", "date", "personal", "attribute"] | None:
    """How a trait is stored, or ``None`` when it is not a trait at all."""
    if trait.startswith(ATTRIBUTE_PREFIX) and len(trait) > len(ATTRIBUTE_PREFIX):
        return "attribute"
    if trait in TEXT_TRAITS:
        return "text"
    if trait in DATE_TRAITS:
        return "date"
    if trait in PERSONAL_TRAITS:
        return "personal"
    return None
