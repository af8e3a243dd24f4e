"""A small shop for campaign tests: opted-in customers, templates, segments, a null channel."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from kizuna.campaigns.definition import parse_campaign
from kizuna.content.library import save_template
from kizuna.content.spec import parse_template_spec
from kizuna.delivery.settings import save_delivery_settings
from kizuna.segments.definition import parse_spec
from kizuna.store.campaigns import save_campaign
from kizuna.store.providers import configure_provider
from kizuna.store.segments import save_segment
from kizuna.store.tables import customers, messages
from kizuna.store.tables_campaigns import campaign_recipients
from kizuna.store.types import new_id
from tests.delivery.test_tracking import SETTINGS, make_customer

TEMPLATES = [
    {"key": "spring-a", "channel": "email", "name": "春A", "subject": "春のセール",
     "body": "{{ last_name | default('お客') }}様、春のセールです。"},
    {"key": "spring-b", "channel": "email", "name": "春B", "subject": "春のセール開催中",
     "body": "{{ last_name | default('お客') }}様、最大50%オフ。"},
    {"key": "broken", "channel": "email", "name": "壊れ", "subject": "x",
     "body": "{{ 100 // (0 if (email | default('')).startswith('c') else 1) }}"},
    {"key": "spring-line", "channel": "line", "name": "春LINE", "body": "春のセールです。"},
]  # fmt: skip
EVERYONE = {"type": "trait", "trait": "email", "op": "exists"}
NOBODY = {"type": "and", "conditions": [EVERYONE, {**EVERYONE, "op": "not_exists"}]}
SEGMENTS = {"buyers": EVERYONE, "nobody": NOBODY,
            "all": {"type": "trait", "trait": "last_seen_at", "op": "exists"}}  # fmt: skip

SPRING: dict[str, Any] = {
    "key": "spring", "name": "春のセール", "segment": "buyers", "channel": "email",
    "variants": [{"key": "A", "template": "spring-a", "weight": 50},
                 {"key": "B", "template": "spring-b", "weight": 50}],
    "control_percent": 10,
}  # fmt: skip


def build_shop(scope_factory, clock, customers_: int = 3) -> list[uuid.UUID]:
    """Customers c0@… opted in to email, templates, segments, delivery rules, a null provider."""
    with scope_factory() as scope:  # templates first: checked on the documented sample
        save_delivery_settings(scope.conn, scope.workspace_id, SETTINGS)
        for t in TEMPLATES:
            save_template(scope, parse_template_spec(t), "test")
    ids = [make_customer(scope_factory, clock, f"c{i}@example.jp") for i in range(customers_)]
    with scope_factory() as scope:
        for key, condition in SEGMENTS.items():
            save_segment(scope, parse_spec({"key": key, "name": key, "condition": condition}), "t")
        configure_provider(scope, "email", "null", {})
    return ids


def set_segment(scope_factory, key: str, condition: dict[str, Any]) -> None:
    """Save (or replace) a segment."""
    with scope_factory() as scope:
        save_segment(scope, parse_spec({"key": key, "name": key, "condition": condition}), "t")


def add_bare_customers(scope_factory, n: int) -> None:
    """``n`` customers with no address or consent (a large audience, inserted at once)."""
    with scope_factory() as scope:
        rows = [{"workspace_id": scope.workspace_id, "customer_id": new_id(), "attributes": {},
                 "first_seen_at": scope.now, "last_seen_at": scope.now, "updated_at": scope.now}
                for _ in range(n)]  # fmt: skip
        scope.conn.execute(customers.insert(), rows)


def save(scope_factory, spec: dict[str, Any]) -> Any:
    """Save a campaign definition."""
    with scope_factory() as scope:
        return save_campaign(scope, parse_campaign(spec), "test")


def recipients(db) -> list[dict[str, Any]]:
    """Every frozen recipient."""
    with db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(campaign_recipients))]


def campaign_messages(db) -> list[dict[str, Any]]:
    """Every campaign message in the outbox / log."""
    with db.read() as conn:
        query = sa.select(messages).where(messages.c.source_kind == "campaign")
        return [dict(r._mapping) for r in conn.execute(query)]
