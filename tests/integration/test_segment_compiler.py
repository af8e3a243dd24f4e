"""Compiled segments agree with a brute-force Python evaluation on a random demo shop.

Every node type is exercised on its own, then random trees of AND / OR / NOT over
leaves whose values are drawn from the shop's own data (so they match someone).
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kizuna.analytics.metrics import refresh_customer_metrics
from kizuna.demo import DemoOptions, generate_demo_data
from kizuna.errors import InvalidInput
from kizuna.segments.compiler import CompileContext, compile_counts, compile_segment
from kizuna.segments.definition import Condition, load_spec, parse_condition
from kizuna.store.database import Database
from kizuna.store.scope import Scope
from kizuna.store.segments import save_segment
from kizuna.store.tables import events, order_items
from kizuna.store.workspaces import Workspace, get_workspace
from tests.integration.segment_oracle import Oracle, Shop, load_shop


@pytest.fixture
def demo(db: Database) -> tuple[Database, Workspace, Shop]:
    """A demo shop of 400 customers with metrics; its rows read into Python."""
    generate_demo_data(db, DemoOptions(customers=400, seed=11, workspace="demo", chunk_size=200))
    with db.read() as conn:
        workspace = get_workspace(conn, "demo")
    refresh_customer_metrics(db, workspace)
    with db.read() as conn:
        shop = load_shop(conn, workspace.workspace_id)
    return db, workspace, shop


def _compiled(db: Database, ctx: CompileContext, condition: Condition) -> set[uuid.UUID]:
    with db.read() as conn:
        return set(conn.execute(compile_segment(condition, ctx)).scalars())


def _context(
    db: Database, workspace: Workspace, segments: dict[str, Condition] | None = None
) -> CompileContext:
    return CompileContext(workspace, db.clock.now(), db.dialect, segments or {})


def _values(db: Database, workspace: Workspace) -> dict[str, list[Any]]:
    with db.read() as conn:
        mine = events.c.workspace_id == workspace.workspace_id
        names = sorted(conn.execute(sa.select(events.c.name).where(mine).distinct()).scalars())
        props = conn.execute(
            sa.select(events.c.name, events.c.properties)
            .where(mine, events.c.type == "track")
            .limit(400)
        ).all()
        lines = order_items.c
        cats = sorted(
            conn.execute(
                sa.select(lines.category)
                .where(lines.workspace_id == workspace.workspace_id)
                .distinct()
            ).scalars()
        )
        brands = sorted(
            conn.execute(
                sa.select(lines.brand)
                .where(lines.workspace_id == workspace.workspace_id)
                .distinct()
            ).scalars()
        )
        skus = sorted(
            conn.execute(
                sa.select(lines.sku).where(lines.workspace_id == workspace.workspace_id).limit(30)
            ).scalars()
        )
    filters = [
        (name, key, value)
        for name, properties in props
        for key, value in properties.items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
    ]
    return {
        "names": [n for n in names if n],
        "filters": filters,
        "categories": [c for c in cats if c],
        "brands": [b for b in brands if b],
        "skus": skus,
    }


NODE_CASES: list[dict[str, Any]] = [
    {"type": "trait", "trait": "gender", "op": "eq", "value": "female"},
    {"type": "trait", "trait": "gender", "op": "ne", "value": "female"},
    {"type": "trait", "trait": "prefecture", "op": "in", "value": ["東京都", "大阪府"]},
    {"type": "trait", "trait": "city", "op": "contains", "value": "市"},
    {"type": "trait", "trait": "membership_rank", "op": "exists"},
    {"type": "trait", "trait": "membership_rank", "op": "not_in", "value": ["gold"]},
    {"type": "trait", "trait": "email", "op": "exists"},
    {"type": "trait", "trait": "phone", "op": "not_exists"},
    {"type": "trait", "trait": "registered_at", "op": "older_than_days", "value": 365},
    {"type": "trait", "trait": "registered_at", "op": "within_last_days", "value": 90},
    {
        "type": "trait",
        "trait": "last_seen_at",
        "op": "between",
        "value": ["2025-01-01", "2025-12-31"],
    },
    {"type": "trait", "trait": "first_seen_at", "op": "before", "value": "2025-06-01"},
    {"type": "trait", "trait": "attributes.acquisition", "op": "eq", "value": "instagram"},
    {"type": "trait", "trait": "attributes.source", "op": "exists"},
    {"type": "birthday", "within_next_days": 30},
    {"type": "birthday", "month": 2},
    {"type": "location", "regions": ["関東"]},
    {"type": "location", "regions": ["関西"], "prefectures": ["北海道"]},
    {"type": "channel", "channel": "email"},
    {"type": "channel", "channel": "email", "state": "suppressed"},
    {"type": "channel", "channel": "line", "state": "reachable"},
    {"type": "channel", "channel": "line", "state": "has_address"},
    {"type": "channel", "channel": "sms", "state": "opted_out"},
    {"type": "channel", "channel": "push", "state": "opted_in"},
    {"type": "orders"},
    {"type": "orders", "within": {"days": 90}, "op": "eq", "value": 0},
    {"type": "orders", "measure": "total", "op": "gte", "value": 20000},
    {"type": "orders", "measure": "average_value", "op": "between", "value": [3000, 8000]},
    {
        "type": "orders",
        "channel": ["store"],
        "within": {"since": "2025-04-01", "until": "2026-03-31"},
    },
    {"type": "order_date", "which": "first", "op": "within_last_days", "value": 180},
    {"type": "order_date", "which": "last", "op": "older_than_days", "value": 120},
    {"type": "price_type", "buyer": "sale"},
    {"type": "price_type", "buyer": "full_price", "within": {"days": 365}},
    {"type": "metric", "metric": "rfm_segment", "op": "in", "value": ["champions", "loyal"]},
    {"type": "metric", "metric": "r_score", "op": "gte", "value": 4},
    {"type": "metric", "metric": "clv", "op": "gt", "value": 10000},
    {"type": "metric", "metric": "p_alive", "op": "lt", "value": 0.5},
    {"type": "metric", "metric": "expected_next_order_at", "op": "within_next_days", "value": 60},
    {"type": "bucket", "start": 0, "end": 49},
    {"type": "bucket", "buckets": 10, "start": 3, "end": 3, "salt": "spring-sale"},
    {"type": "not", "condition": {"type": "orders"}},
    {
        "type": "or",
        "conditions": [{"type": "birthday", "month": 4}, {"type": "channel", "channel": "line"}],
    },
]


def _check(
    db: Database,
    workspace: Workspace,
    shop: Shop,
    data: dict[str, Any],
    segments: dict[str, Condition] | None = None,
) -> int:
    condition = parse_condition(data)
    ctx = _context(db, workspace, segments)
    expected = Oracle(shop, ctx).members(condition)
    assert _compiled(db, ctx, condition) == expected, data
    return len(expected)


def test_every_node_type_agrees_with_python(demo: tuple[Database, Workspace, Shop]) -> None:
    db, workspace, shop = demo
    sizes = [_check(db, workspace, shop, case) for case in NODE_CASES]
    # The cases are not vacuous: most select someone and most leave someone out.
    live = sum(1 for row in shop.customers.values() if row["merged_into"] is None)
    assert sum(0 < n < live for n in sizes) >= len(NODE_CASES) * 0.7


def test_behaviour_leaves_drawn_from_the_data_agree(demo: tuple[Database, Workspace, Shop]) -> None:
    db, workspace, shop = demo
    values = _values(db, workspace)
    rng = random.Random(3)
    for _ in range(12):
        name, key, value = rng.choice(values["filters"])
        _check(
            db,
            workspace,
            shop,
            {
                "type": "event",
                "name": name,
                "where": [{"property": key, "value": value}],
                "at_least": rng.choice([1, 2, 3]),
                "within": {"days": rng.choice([30, 180, 720])},
            },
        )
        _check(
            db, workspace, shop, {"type": "event", "name": name, "at_most": rng.choice([0, 1, 4])}
        )
        _check(
            db,
            workspace,
            shop,
            {
                "type": "event_time",
                "name": name,
                "which": rng.choice(["first", "last"]),
                "op": "within_last_days",
                "value": rng.choice([30, 365]),
            },
        )
        _check(
            db,
            workspace,
            shop,
            {
                "type": "bought",
                "categories": [rng.choice(values["categories"])],
                "within": {"days": 730},
            },
        )
        _check(
            db,
            workspace,
            shop,
            {
                "type": "bought",
                "brands": [rng.choice(values["brands"])],
                "skus": rng.sample(values["skus"], 5),
            },
        )


def _leaf(rng: random.Random, values: dict[str, Any]) -> dict[str, Any]:
    if rng.random() < 0.5:
        return dict(rng.choice(NODE_CASES))
    name, key, value = rng.choice(values["filters"])
    return {
        "type": "event",
        "name": name,
        "where": [{"property": key, "value": value}] if rng.random() < 0.5 else [],
        "at_least": rng.choice([None, 1, 2]),
        "at_most": rng.choice([None, 3, 10]),
        "within": rng.choice([None, {"days": 60}, {"days": 400}]),
    }


def _tree(rng: random.Random, values: dict[str, Any], depth: int) -> dict[str, Any]:
    if depth == 0 or rng.random() < 0.3:
        return _leaf(rng, values)
    kind = rng.choice(["and", "or", "not"])
    if kind == "not":
        return {"type": "not", "condition": _tree(rng, values, depth - 1)}
    return {
        "type": kind,
        "conditions": [_tree(rng, values, depth - 1) for _ in range(rng.randint(2, 3))],
    }


def test_random_trees_agree_with_python(demo: tuple[Database, Workspace, Shop]) -> None:
    db, workspace, shop = demo
    values = _values(db, workspace)
    rng = random.Random(20261123)
    for _ in range(30):
        _check(db, workspace, shop, _tree(rng, values, 3))


def test_segment_references_are_inlined(demo: tuple[Database, Workspace, Shop]) -> None:
    db, workspace, shop = demo
    segments = {
        "buyers": parse_condition({"type": "orders"}),
        "kanto_buyers": parse_condition(
            {
                "type": "and",
                "conditions": [
                    {"type": "segment", "segment": "buyers"},
                    {"type": "location", "regions": ["関東"]},
                ],
            }
        ),
    }
    n = _check(
        db,
        workspace,
        shop,
        {"type": "not", "condition": {"type": "segment", "segment": "kanto_buyers"}},
        segments,
    )
    assert n > 0


def test_counts_break_down_by_channel(demo: tuple[Database, Workspace, Shop]) -> None:
    db, workspace, shop = demo
    ctx = _context(db, workspace)
    condition = parse_condition({"type": "orders"})
    with db.read() as conn:
        row = conn.execute(compile_counts(condition, ctx)).one()._mapping
    oracle = Oracle(shop, ctx)
    members = oracle.members(condition)
    assert row["customers"] == len(members)
    for channel in ("email", "line", "sms", "push"):
        for state in ("reachable", "opted_in", "has_address", "suppressed"):
            expected = oracle.members(
                parse_condition(
                    {
                        "type": "and",
                        "conditions": [
                            {"type": "orders"},
                            {"type": "channel", "channel": channel, "state": state},
                        ],
                    }
                )
            )
            assert row[f"{state}_{channel}"] == len(expected), (channel, state)
    assert 0 < row["reachable_email"] < row["customers"]


def test_restricting_to_customers_evaluates_only_them(
    demo: tuple[Database, Workspace, Shop],
) -> None:
    db, workspace, shop = demo
    condition = parse_condition(
        {
            "type": "and",
            "conditions": [
                {"type": "orders", "within": {"days": 365}},
                {"type": "channel", "channel": "email"},
            ],
        }
    )
    everyone = _compiled(db, _context(db, workspace), condition)
    some = sorted(shop.customers)[:40]
    ctx = CompileContext(workspace, db.clock.now(), db.dialect, customer_ids=some)
    assert _compiled(db, ctx, condition) == everyone & set(some)


def test_workspace_filter_is_added_by_the_compiler(
    demo: tuple[Database, Workspace, Shop], db: Database
) -> None:
    _, workspace, _ = demo
    generate_demo_data(db, DemoOptions(customers=100, seed=5, workspace="other", chunk_size=100))
    with db.read() as conn:
        other = get_workspace(conn, "other")
    condition = parse_condition(
        {
            "type": "or",
            "conditions": [{"type": "orders"}, {"type": "not", "condition": {"type": "orders"}}],
        }
    )
    mine = _compiled(db, _context(db, workspace), condition)
    theirs = _compiled(db, _context(db, other), condition)
    assert mine and theirs and not mine & theirs


@pytest.mark.parametrize(
    ("data", "path", "code"),
    [
        (
            {"type": "trait", "trait": "registered_at", "op": "before", "value": 30},
            "value",
            "invalid_date",
        ),
        ({"type": "location", "prefectures": ["Atlantis"]}, "prefectures[0]", "unknown_prefecture"),
        (
            {
                "type": "and",
                "conditions": [{"type": "orders"}, {"type": "segment", "segment": "nope"}],
            },
            "conditions[1].segment",
            "unknown_segment",
        ),
        ({"type": "trait", "trait": "gender", "op": "gt", "value": 3}, "value", "type_mismatch"),
    ],
)
def test_compiling_bad_nodes_names_the_path(
    demo: tuple[Database, Workspace, Shop], data: dict[str, Any], path: str, code: str
) -> None:
    db, workspace, _ = demo
    with pytest.raises(InvalidInput) as caught:
        compile_segment(parse_condition(data), _context(db, workspace))
    problem = caught.value.problems[0]
    assert (problem.code, problem.field) == (code, path)


def test_the_example_segments_save_and_count_on_the_demo_shop(
    demo: tuple[Database, Workspace, Shop],
) -> None:
    db, workspace, shop = demo
    examples = sorted((Path(__file__).parents[2] / "examples" / "segments").glob("*.yaml"))
    assert len(examples) >= 3
    with db.write() as conn:
        scope = Scope(conn, db.cipher, workspace.workspace_id, db.clock.now())
        for path in examples:
            saved = save_segment(scope, load_spec(path.read_text(encoding="utf-8")), "test")
            _check(db, workspace, shop, saved.condition.model_dump(mode="json"))
