"""The definition language: parsing, the checks that reject bad definitions, dependencies."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from kizuna.errors import InvalidInput
from kizuna.segments.checks import Vocabulary, check_condition, dependencies
from kizuna.segments.compiler import CompileContext
from kizuna.segments.definition import condition_schema, load_spec, parse_condition
from kizuna.store.workspaces import Workspace

WORKSPACE = Workspace(
    uuid.uuid4(),
    "shop",
    "Shop",
    "production",
    "shop",
    "Asia/Tokyo",
    datetime(2026, 1, 1, tzinfo=UTC),
)
CTX = CompileContext(WORKSPACE, datetime(2026, 11, 23, tzinfo=UTC), "postgresql")
VOCAB = Vocabulary(
    events=frozenset({"Review Posted"}),
    attributes=frozenset({"skin_type"}),
    segments={
        "a": parse_condition({"type": "segment", "segment": "b"}),
        "b": parse_condition({"type": "orders"}),
    },
)


def _problems(data: dict[str, Any], key: str | None = None) -> list[tuple[str, str | None]]:
    with pytest.raises(InvalidInput) as caught:
        check_condition(parse_condition(data), VOCAB, CTX, key=key)
    return [(p.code, p.field) for p in caught.value.problems]


def test_shape_errors_name_the_node_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_condition(
            {
                "type": "and",
                "conditions": [
                    {"type": "orders"},
                    {"type": "event", "name": "Product Viewed", "within": {"days": 0}},
                    {"type": "frobnicate"},
                    {
                        "type": "not",
                        "condition": {"type": "trait", "trait": "gender", "op": "resembles"},
                    },
                ],
            }
        )
    fields = [p.field for p in caught.value.problems]
    assert fields == ["conditions[1].within.days", "conditions[2]", "conditions[3].condition.op"]
    assert "expected one of" in caught.value.problems[1].message


def test_unknown_names_are_rejected_with_their_paths() -> None:
    problems = _problems(
        {
            "type": "or",
            "conditions": [
                {"type": "trait", "trait": "shoe_size", "op": "eq", "value": "24"},
                {"type": "trait", "trait": "attributes.hair", "op": "eq", "value": "long"},
                {"type": "event", "name": "Teleported"},
                {"type": "segment", "segment": "nobody"},
                {"type": "metric", "metric": "rfm_segment", "op": "eq", "value": "royalty"},
            ],
        }
    )
    assert problems == [
        ("unknown_trait", "conditions[0].trait"),
        ("unknown_trait", "conditions[1].trait"),
        ("unknown_event", "conditions[2].name"),
        ("unknown_segment", "conditions[3].segment"),
        ("unknown_rfm_segment", "conditions[4].value"),
    ]


def test_known_names_pass() -> None:
    check_condition(
        parse_condition(
            {
                "type": "and",
                "conditions": [
                    {"type": "trait", "trait": "attributes.skin_type", "op": "eq", "value": "dry"},
                    {"type": "event", "name": "Review Posted"},
                    {"type": "event", "name": "Checkout Started"},  # a standard e-commerce event
                    {"type": "segment", "segment": "a"},
                ],
            }
        ),
        VOCAB,
        CTX,
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"type": "trait", "trait": "registered_at", "op": "before", "value": 30},
            ("type_mismatch", "value"),
        ),
        (
            {
                "type": "trait",
                "trait": "registered_at",
                "op": "within_last_days",
                "value": "2026-01-01",
            },
            ("type_mismatch", "value"),
        ),
        (
            {"type": "trait", "trait": "registered_at", "op": "contains", "value": "x"},
            ("type_mismatch", "op"),
        ),
        (
            {"type": "trait", "trait": "email", "op": "contains", "value": "@gmail"},
            ("encrypted_trait", "op"),
        ),
        ({"type": "trait", "trait": "prefecture", "op": "gt", "value": 3}, ("type_mismatch", "op")),
        (
            {"type": "metric", "metric": "clv", "op": "after", "value": "2026-01-01"},
            ("type_mismatch", "op"),
        ),
        (
            {"type": "metric", "metric": "clv", "op": "gt", "value": "lots"},
            ("type_mismatch", "value"),
        ),
        (
            {"type": "metric", "metric": "expected_next_order_at", "op": "before", "value": 7},
            ("type_mismatch", "value"),
        ),
        (
            {"type": "trait", "trait": "gender", "op": "in", "value": "female"},
            ("invalid_value", "value"),
        ),
        ({"type": "trait", "trait": "gender", "op": "eq"}, ("missing_value", "value")),
        ({"type": "location", "regions": ["Narnia"]}, ("unknown_region", "regions[0]")),
    ],
)
def test_types_and_operators_are_checked(data: dict[str, Any], expected: tuple[str, str]) -> None:
    assert _problems(data) == [expected]


def test_cycles_are_rejected_when_saved() -> None:
    # Saving b as "member of a" closes the loop a → b → a.
    problems = _problems(
        {"type": "and", "conditions": [{"type": "orders"}, {"type": "segment", "segment": "a"}]},
        key="b",
    )
    assert problems == [("segment_cycle", "conditions[1].segment")]


def test_dependencies_name_what_can_change_membership() -> None:
    condition = parse_condition(
        {
            "type": "and",
            "conditions": [
                {"type": "event", "name": "Product Viewed", "within": {"days": 30}},
                {"type": "channel", "channel": "email"},
                {"type": "segment", "segment": "a"},
            ],
        }
    )
    assert dependencies(condition, VOCAB.segments) == {
        "event:Product Viewed",
        "time",
        "consent",
        "traits",
        "orders",
        "segment:a",
        "segment:b",
    }
    static = parse_condition({"type": "trait", "trait": "gender", "op": "eq", "value": "male"})
    assert dependencies(static, {}) == {"traits"}


def test_specs_load_from_yaml_and_json_with_line_numbers() -> None:
    spec = load_spec("key: dormant\nname: 休眠予備軍\nrank: 2\ncondition:\n  type: orders\n")
    assert (spec.key, spec.rank, spec.condition.type) == ("dormant", 2, "orders")
    with pytest.raises(InvalidInput) as caught:
        load_spec("key: x\nname: y\ncondition: {type: [\n", "yaml")
    assert caught.value.problems[0].line is not None
    with pytest.raises(InvalidInput) as caught:
        load_spec('{"key": "Bad Key", "name": "y", "condition": {"type": "orders"}}', "json")
    assert caught.value.problems[0].field == "key"


def test_the_schema_lists_every_node_type() -> None:
    schema = condition_schema()
    assert set(schema["discriminator"]["mapping"]) >= {"and", "event", "orders", "bucket"}


def test_the_compiler_pulls_in_no_web_framework() -> None:
    modules = "kizuna.segments.compiler, kizuna.segments.checks"
    code = f"import sys, {modules}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not {"fastapi", "starlette", "typer", "httpx", "uvicorn"} & set(out.stdout.split())
