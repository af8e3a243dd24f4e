"""Snapshots of the SQL each node type compiles to, on SQLite and on PostgreSQL.

A change to the compiler that changes the SQL shows up here as a diff to review.
Regenerate after an intended change with ``KIZUNA_UPDATE_SNAPSHOTS=1``.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from kizuna.segments.compiler import CompileContext, compile_counts, compile_segment
from kizuna.segments.definition import parse_condition
from kizuna.store.workspaces import Workspace

SNAPSHOTS = Path(__file__).parent.parent / "snapshots" / "segments"
WORKSPACE = Workspace(
    uuid.UUID("00000000-0000-7000-8000-000000000001"),
    "shop",
    "Shop",
    "production",
    "shop",
    "Asia/Tokyo",
    datetime(2026, 1, 1, tzinfo=UTC),
)
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)

CASES: dict[str, dict[str, Any]] = {
    "and": {
        "type": "and",
        "conditions": [
            {"type": "trait", "trait": "gender", "op": "eq", "value": "female"},
            {"type": "birthday", "month": 5},
        ],
    },
    "or": {
        "type": "or",
        "conditions": [
            {"type": "trait", "trait": "city", "op": "contains", "value": "市"},
            {"type": "trait", "trait": "email", "op": "exists"},
        ],
    },
    "not": {
        "type": "not",
        "condition": {"type": "trait", "trait": "prefecture", "op": "in", "value": ["東京都"]},
    },
    "trait_attribute": {
        "type": "trait",
        "trait": "attributes.skin_type",
        "op": "in",
        "value": ["dry", 3, True],
    },
    "trait_relative_date": {
        "type": "trait",
        "trait": "registered_at",
        "op": "older_than_days",
        "value": 30,
    },
    "trait_date_attribute": {
        "type": "trait",
        "trait": "attributes.anniversary",
        "op": "within_next_days",
        "value": 7,
    },
    "birthday": {"type": "birthday", "within_next_days": 7},
    "location": {"type": "location", "regions": ["関西"], "prefectures": ["Tokyo"]},
    "channel_reachable": {"type": "channel", "channel": "email"},
    "channel_line": {"type": "channel", "channel": "line", "state": "reachable"},
    "channel_suppressed": {"type": "channel", "channel": "sms", "state": "suppressed"},
    "event": {
        "type": "event",
        "name": "Product Viewed",
        "at_least": 3,
        "within": {"days": 30},
        "where": [
            {"property": "category", "value": "スキンケア"},
            {"property": "price", "op": "gte", "value": 3000},
        ],
    },
    "event_not_performed": {
        "type": "event",
        "name": "Checkout Started",
        "at_most": 0,
        "within": {"since": "2026-11-01"},
    },
    "event_time": {
        "type": "event_time",
        "name": "Product Viewed",
        "which": "first",
        "op": "before",
        "value": "2026-01-01",
    },
    "orders_count": {"type": "orders", "within": {"days": 90}, "op": "eq", "value": 0},
    "orders_total": {
        "type": "orders",
        "measure": "total",
        "op": "between",
        "value": [10000, 50000],
        "channel": ["online"],
    },
    "orders_aov": {"type": "orders", "measure": "average_value", "op": "gte", "value": 5000},
    "order_date": {"type": "order_date", "which": "last", "op": "within_last_days", "value": 30},
    "bought": {
        "type": "bought",
        "categories": ["スキンケア"],
        "brands": ["Kizuna"],
        "within": {"days": 365},
    },
    "price_type": {"type": "price_type", "buyer": "full_price", "within": {"days": 365}},
    "metric_segment": {
        "type": "metric",
        "metric": "rfm_segment",
        "op": "in",
        "value": ["champions"],
    },
    "metric_clv": {"type": "metric", "metric": "clv", "op": "gt", "value": 30000},
    "metric_next_order": {
        "type": "metric",
        "metric": "expected_next_order_at",
        "op": "within_next_days",
        "value": 14,
    },
    "segment": {"type": "segment", "segment": "vip"},
    "bucket": {"type": "bucket", "buckets": 100, "start": 0, "end": 9, "salt": "spring"},
}
SEGMENTS = {"vip": parse_condition({"type": "metric", "metric": "m_score", "op": "eq", "value": 5})}
DIALECTS: dict[str, Dialect] = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}


def _render(name: str, dialect: str) -> str:
    ctx = CompileContext(WORKSPACE, NOW, dialect, SEGMENTS)
    statement = compile_segment(parse_condition(CASES[name]), ctx)
    compiled = statement.compile(dialect=DIALECTS[dialect])
    params = "\n".join(f"-- {key} = {value!r}" for key, value in sorted(compiled.params.items()))
    return f"{compiled}\n{params}\n"


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_sql_matches_snapshot(name: str, dialect: str) -> None:
    path = SNAPSHOTS / f"{name}.{dialect}.sql"
    rendered = _render(name, dialect)
    if os.environ.get("KIZUNA_UPDATE_SNAPSHOTS"):
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}; run with KIZUNA_UPDATE_SNAPSHOTS=1"
    assert rendered == path.read_text(encoding="utf-8")


def test_every_node_type_has_a_snapshot() -> None:
    tags = {case["type"] for case in CASES.values()}
    tags |= {c["type"] for case in CASES.values() for c in case.get("conditions", [])}
    assert tags >= {
        "and",
        "or",
        "not",
        "trait",
        "birthday",
        "location",
        "channel",
        "event",
        "event_time",
        "orders",
        "order_date",
        "bought",
        "price_type",
        "metric",
        "segment",
        "bucket",
    }


_TABLE_REFERENCE = re.compile(
    r"(?:FROM|JOIN) (?:customers|events|orders|order_items|consents|identities|suppressions"
    r"|customer_metrics)\b"
)


def test_the_workspace_filter_reaches_every_table() -> None:
    """Every FROM of every node's SQL is filtered by the workspace (the compiler adds it)."""
    ctx = CompileContext(WORKSPACE, NOW, "postgresql", SEGMENTS)
    for name, case in CASES.items():
        compiled = compile_segment(parse_condition(case), ctx).compile(
            dialect=DIALECTS["postgresql"]
        )
        text = str(compiled)
        tables = len(_TABLE_REFERENCE.findall(text))
        filters = text.count(".workspace_id = %(workspace_id_")
        assert filters >= tables, name
        assert all(
            v == WORKSPACE.workspace_id
            for k, v in compiled.params.items()
            if k.startswith("workspace_id")
        )


def test_counts_compile_one_statement_per_dialect() -> None:
    for dialect in DIALECTS:
        ctx = CompileContext(WORKSPACE, NOW, dialect, SEGMENTS)
        sql = str(
            compile_counts(parse_condition(CASES["event"]), ctx).compile(dialect=DIALECTS[dialect])
        )
        assert sql.count("SELECT count(*) AS customers") == 1
        assert "reachable_push" in sql and "suppressed_email" in sql
