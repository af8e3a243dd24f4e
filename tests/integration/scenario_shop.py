"""A small shop for scenario tests: opted-in customers, templates, delivery rules, helpers."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.content.library import save_template
from kizuna.content.spec import parse_template_spec
from kizuna.delivery.settings import save_delivery_settings
from kizuna.ingest.pipeline import ingest_transaction
from kizuna.ingest.segment import parse_batch
from kizuna.scenarios.definition import ScenarioSpec
from kizuna.scenarios.engine import ScenarioEngine
from kizuna.store.operation_log import Actor
from kizuna.store.providers import configure_provider
from kizuna.store.scenarios import publish_scenario, save_scenario
from kizuna.store.tables import messages, scenario_runs, scenario_steps
from tests.delivery.test_tracking import SETTINGS, make_customer

TEMPLATES = [
    {"key": "cart-reminder", "channel": "email", "name": "カゴ落ち",
     "subject": "お忘れではありませんか",
     "body": "{{ last_name | default('お客') }}様、カートに商品が残っています。"},
    {"key": "cart-line", "channel": "line", "name": "カゴ落ちLINE",
     "body": "カートに商品が残っています。"},
    {"key": "thanks", "channel": "email", "name": "お礼", "subject": "ありがとうございます",
     "body": "ご購入ありがとうございます。"},
]  # fmt: skip


def build_shop(scope_factory, clock, customers: int = 3) -> list[uuid.UUID]:
    """Customers c0@… c{n-1}@… opted in to email and LINE, the templates and delivery rules."""
    ids = [make_customer(scope_factory, clock, f"c{i}@example.jp", line=(i == 0))
           for i in range(customers)]  # fmt: skip
    with scope_factory() as scope:
        save_delivery_settings(scope.conn, scope.workspace_id, SETTINGS)
        for t in TEMPLATES:
            save_template(scope, parse_template_spec(t), "test")
        for channel in ("email", "line"):
            configure_provider(scope, channel, "null", {})
    return ids


def publish(scope_factory, spec: dict[str, Any]) -> None:
    """Save and publish a scenario."""
    with scope_factory() as scope:
        save_scenario(scope, ScenarioSpec.model_validate(spec), "test")
        publish_scenario(scope, spec["key"], Actor("test", "pytest"))


def track(db, workspace, email: str, event: str, properties: dict[str, Any] | None = None) -> None:
    """Ingest one Segment ``track`` event for the customer with this email."""
    stamp = db.clock.now().isoformat()
    who = {"type": "identify", "anonymousId": f"anon-{email}", "traits": {"email": email},
           "messageId": str(uuid.uuid4()), "timestamp": stamp}  # fmt: skip
    item = {"type": "track", "event": event, "properties": properties or {},
            "anonymousId": f"anon-{email}", "messageId": str(uuid.uuid4()),
            "timestamp": stamp}  # fmt: skip
    parsed = parse_batch({"batch": [who, item]}, db.clock.now())
    assert not parsed.problems, parsed.problems
    ingest_transaction(db, workspace.workspace_id, db.clock.now(), parsed.messages)


def run_engine(db) -> Any:
    """Tick the engine until nothing is due now."""
    return ScenarioEngine(db).run_until_idle()


def later(db, clock, delta: timedelta) -> Any:
    """Move the clock and run the engine."""
    clock.advance(delta)
    return run_engine(db)


def runs(db) -> list[dict[str, Any]]:
    """Every run, oldest first."""
    with db.read() as conn:
        rows = conn.execute(sa.select(scenario_runs).order_by(scenario_runs.c.entered_at,
                                                               scenario_runs.c.run_id))  # fmt: skip
        return [dict(r._mapping) for r in rows]


def intents(db) -> list[dict[str, Any]]:
    """Every send intent (message), in creation order."""
    with db.read() as conn:
        rows = conn.execute(sa.select(messages).order_by(messages.c.created_at,
                                                         messages.c.idempotency_key))  # fmt: skip
        return [dict(r._mapping) for r in rows]


def steps(db) -> list[tuple[str, str, str | None]]:
    """(node, outcome, detail) of every step, in order."""
    with db.read() as conn:
        rows = conn.execute(sa.select(scenario_steps.c.node_id, scenario_steps.c.outcome,
                                      scenario_steps.c.detail)
                            .order_by(scenario_steps.c.at, scenario_steps.c.run_id,
                                      scenario_steps.c.step))  # fmt: skip
        return [tuple(r) for r in rows]
