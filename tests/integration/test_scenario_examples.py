"""The ready-made scenarios in examples/scenarios/ load, check and save on a demo shop."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kizuna.api import build_app
from kizuna.content.library import save_template
from kizuna.content.spec import load_template_text
from kizuna.demo import DemoOptions, generate_demo_data
from kizuna.documents import read_text
from kizuna.scenarios.checks import check_scenario, load_scenario_text
from kizuna.segments.definition import load_spec
from kizuna.segments.report import workspace_scope
from kizuna.store.operation_log import Actor
from kizuna.store.scenarios import get_scenario, publish_scenario, save_scenario
from kizuna.store.segments import save_segment
from kizuna.store.workspaces import create_write_key

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
SCENARIOS = sorted(EXAMPLES.glob("*.yaml"))
ACTOR = Actor("test", "pytest")


def _track_back_in_stock(db, workspace_id, user_id):
    """What the shop's restock hook sends for a customer who asked to be told."""
    with db.write() as conn:
        key = create_write_key(conn, workspace_id, "shop", db.clock.now())
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    event = {"userId": user_id, "event": "Back In Stock",
             "properties": {"product_id": "P-0001", "sku": "P-0001", "name": "美容液",
                            "price": 4980, "url": "https://shop.example.jp/p/1"}}  # fmt: skip
    with TestClient(build_app(db)) as client:
        assert client.post("/v1/track", json=event, headers=auth).status_code == 200


@pytest.fixture
def demo(db):
    """A small demo shop with the examples' segments and templates saved."""
    summary = generate_demo_data(db, DemoOptions(customers=300, seed=3, workspace="demo",
                                                 chunk_size=300))  # fmt: skip
    with workspace_scope(db, "demo", write=True) as scope:
        for path in sorted((EXAMPLES / "segments").glob("*.yaml")):
            save_segment(scope, load_spec(read_text(path)), "test")
        for path in sorted((EXAMPLES / "templates").glob("*.yaml")):
            save_template(scope, load_template_text(read_text(path)), "test")
    return summary.workspace


def test_there_is_a_scenario_for_each_use_case():
    keys = {load_scenario_text(read_text(path)).key for path in SCENARIOS}
    assert keys == {"welcome-series", "cart-abandonment", "browse-abandonment", "back-in-stock",
                    "post-purchase-f2", "win-back", "birthday", "loyalty-tier-up"}  # fmt: skip


def test_every_example_checks_saves_and_publishes_on_the_demo_shop(db, demo):
    with workspace_scope(db, "demo") as scope:
        before = check_scenario(
            scope, load_scenario_text(read_text(EXAMPLES / "back-in-stock.yaml"))
        )
    # Until the shop sends its first Back In Stock event, the name is unknown (as documented).
    assert [(p.code, p.field) for p in before] == [("unknown_event", "trigger.event")]
    _track_back_in_stock(db, demo.workspace_id, "C00000001")
    for path in SCENARIOS:
        spec = load_scenario_text(read_text(path))
        with workspace_scope(db, "demo", write=True) as scope:
            assert check_scenario(scope, spec) == [], path.name
            saved = save_scenario(scope, spec, "test")
            assert publish_scenario(scope, spec.key, ACTOR) == 1
            assert get_scenario(scope, spec.key).status == "live"
        assert saved.draft == spec and saved.status == "draft"


def test_the_cart_example_reminds_twice_without_a_discount():
    spec = load_scenario_text(read_text(EXAMPLES / "cart-abandonment.yaml"))
    waits = [n.duration.delta().total_seconds() / 3600 for n in spec.nodes if n.type == "wait"]
    assert waits == [1, 23]  # 1 h, then 24 h after the checkout
    assert spec.goal is not None and spec.goal.event == "Order Completed"
    sends = {n.template for n in spec.nodes if n.type == "send"}
    assert sends == {"cart-reminder-1", "cart-reminder-2", "cart-reminder-line"}
    for key in sends:
        template = load_template_text(read_text(EXAMPLES / "templates" / f"{key}.yaml"))
        text = f"{template.subject or ''}{template.body}"
        assert not any(word in text for word in ("クーポン", "割引", "OFF", "％")), key
