"""Scenario definitions: shape, graph and name checks, each naming the node and the reason."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, time
from typing import Any

import pytest

from kizuna.documents import line_of
from kizuna.errors import InvalidInput
from kizuna.scenarios.checks import (
    ScenarioNames,
    load_scenario_text,
    parse_scenario,
    scenario_problems,
    scenario_schema,
)
from kizuna.segments.checks import Vocabulary
from kizuna.segments.compiler import CompileContext
from kizuna.segments.definition import parse_condition
from kizuna.store.workspaces import Workspace

WORKSPACE = Workspace(uuid.uuid4(), "shop", "Shop", "production", "shop", "Asia/Tokyo",
                      datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
NAMES = ScenarioNames(
    vocabulary=Vocabulary(
        events=frozenset({"Back In Stock"}),
        attributes=frozenset({"renewal_date"}),
        segments={"vip": parse_condition({"type": "orders", "op": "gte", "value": 5})},
    ),
    compile=CompileContext(WORKSPACE, datetime(2026, 4, 1, tzinfo=UTC), "sqlite"),
    templates={"cart-reminder": "email", "cart-line": "line", "crm-hook": "webhook"},
    topics=frozenset({"sale"}),
)
CART: dict[str, Any] = {
    "key": "cart-abandonment",
    "name": "カゴ落ち",
    "trigger": {"type": "event", "event": "Checkout Started",
                "where": [{"property": "value", "op": "gte", "value": 5000}]},
    "entry": {"reentry": "every_time", "key_property": "cart_id",
              "filter": {"type": "channel", "channel": "email"}},
    "goal": {"event": "Order Completed"},
    "start": "wait-1h",
    "nodes": [
        {"id": "wait-1h", "type": "wait", "duration": {"hours": 1}, "next": "vip-check"},
        {"id": "vip-check", "type": "branch", "yes": "ab", "no": "remind",
         "condition": {"type": "and", "conditions": [{"type": "segment", "segment": "vip"}]}},
        {"id": "ab", "type": "split", "paths": [{"weight": 50, "next": "remind"},
                                                  {"weight": 50, "next": "line"}]},
        {"id": "remind", "type": "send", "channel": "email", "template": "cart-reminder",
         "topic": "sale", "next": "wait-order"},
        {"id": "line", "type": "send", "channel": "line", "template": "cart-line", "next": "done"},
        {"id": "wait-order", "type": "wait_for", "event": {"event": "Order Completed"},
         "timeout": {"days": 3}, "next": "done", "timeout_next": "hook"},
        {"id": "hook", "type": "webhook", "template": "crm-hook", "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}  # fmt: skip


def _with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(CART)
    data.update(changes)
    return data


def _node(data: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in data["nodes"] if n["id"] == node_id)


def _problems(data: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(p.code, p.field) for p in scenario_problems(parse_scenario(data), NAMES)]


def _messages(data: dict[str, Any]) -> list[str]:
    return [p.message for p in scenario_problems(parse_scenario(data), NAMES)]


def test_a_good_definition_has_no_problems() -> None:
    assert _problems(CART) == []
    loop = _with(start="again", nodes=[
        {"id": "again", "type": "send", "channel": "email", "template": "cart-reminder",
         "next": "pause"},
        {"id": "pause", "type": "wait_until", "time": "10:00", "weekdays": ["mon"],
         "next": "again"},
    ])  # fmt: skip
    assert _problems(loop) == []  # a loop through a wait is a weekly newsletter, not a spin


# --- The "Bad input": rejected with the node id and the reason --------------------


def test_an_unreachable_node_is_named() -> None:
    data = _with()
    data["nodes"].append({"id": "orphan", "type": "exit"})
    assert _problems(data) == [("unreachable_node", "nodes.orphan")]
    assert _messages(data) == ["node 'orphan' cannot be reached from start 'wait-1h'"]


def test_a_cycle_without_a_wait_is_named_with_its_loop() -> None:
    data = _with()
    _node(data, "line")["next"] = "vip-check"
    assert _problems(data) == [("cycle_without_wait", "nodes.vip-check")]
    (message,) = _messages(data)
    assert "'vip-check' → 'ab' → 'line' → 'vip-check'" in message and "without a wait" in message
    _node(data, "line")["next"] = "line"
    assert _problems(data) == [("cycle_without_wait", "nodes.line")]


def test_a_waitless_loop_is_found_beside_a_loop_through_a_wait() -> None:
    # a → w → a waits an hour each time round; a → b → a spins.
    data = _with(trigger={"type": "api"}, entry={}, goal=None, start="a", nodes=[
        {"id": "a", "type": "branch", "condition": {"type": "orders"}, "yes": "b", "no": "w"},
        {"id": "b", "type": "update", "add_tags": ["vip"], "next": "a"},
        {"id": "w", "type": "wait", "duration": {"hours": 1}, "next": "a"},
    ])  # fmt: skip
    assert _problems(data) == [("cycle_without_wait", "nodes.a")]
    _node(data, "b")["next"] = "w"
    assert _problems(data) == []


def test_a_missing_template_or_one_of_another_channel_is_named() -> None:
    data = _with()
    _node(data, "remind")["template"] = "cart-reminder-v2"
    _node(data, "line")["template"] = "cart-reminder"
    _node(data, "hook")["template"] = "cart-line"
    assert _problems(data) == [("unknown_template", "nodes.remind.template"),
                               ("template_channel", "nodes.line.template"),
                               ("template_channel", "nodes.hook.template")]  # fmt: skip
    first, second, third = _messages(data)
    assert first == "no template 'cart-reminder-v2' in this workspace (save it first)"
    assert second == "template 'cart-reminder' is for email, but node 'line' sends line"
    assert third == "template 'cart-line' is for line, but node 'hook' sends webhook"


def test_split_weights_must_add_up_to_100() -> None:
    data = _with()
    _node(data, "ab")["paths"][1]["weight"] = 40
    assert _problems(data) == [("split_weights", "nodes.ab.paths")]
    assert _messages(data) == ["the weights of split 'ab' add up to 90, not 100"]


def test_unknown_trigger_goal_and_wait_events_are_named() -> None:
    data = _with(trigger={"type": "event", "event": "Checkout Begun"}, goal={"event": "Purchase"})
    _node(data, "wait-order")["event"] = {"event": "Order Complete"}
    assert _problems(data) == [("unknown_event", "trigger.event"), ("unknown_event", "goal.event"),
                               ("unknown_event", "nodes.wait-order.event.event")]  # fmt: skip
    assert "Checkout Begun" in _messages(data)[0]
    custom = _with(trigger={"type": "event", "event": "Back In Stock"}, entry={})
    assert _problems(custom) == []  # received in this workspace, so known


# --- More graph rules ---------------------------------------------------------------------


def test_unknown_start_and_targets_name_the_field() -> None:
    data = _with(start="wait-2h")
    _node(data, "wait-order")["timeout_next"] = "nowhere"
    _node(data, "ab")["paths"][1]["next"] = "lin"
    _node(data, "vip-check")["no"] = "remnd"
    assert _problems(data) == [
        ("unknown_node", "start"),
        ("unknown_node", "nodes.vip-check.no"),
        ("unknown_node", "nodes.ab.paths[1].next"),
        ("unknown_node", "nodes.wait-order.timeout_next"),
    ]
    assert "node 'vip-check' goes to 'remnd', which is not a node" in _messages(data)[1]


def test_duplicate_node_ids_are_named() -> None:
    data = _with()
    data["nodes"].append({"id": "remind", "type": "exit"})
    assert _problems(data) == [("duplicate_node", "nodes.remind")]
    assert _messages(data) == ["node id 'remind' is used 2 times (nodes[3, 8])"]


# --- Names and conditions -----------------------------------------------------------------


def test_conditions_get_the_segment_checks_under_the_node_path() -> None:
    data = _with(entry={"filter": {"type": "trait", "trait": "shoe_size", "op": "eq", "value": 1}})
    _node(data, "vip-check")["condition"]["conditions"][0] = {"type": "segment", "segment": "vlp"}
    assert _problems(data) == [("unknown_trait", "entry.filter.trait"),
                               ("unknown_segment",
                                "nodes.vip-check.condition.conditions[0].segment")]  # fmt: skip


def test_unknown_segments_topics_and_dates_are_named() -> None:
    data = _with(trigger={"type": "segment", "segment": "vips"}, entry={})
    _node(data, "wait-order").update(event=None, segment="lapsed")
    _node(data, "remind")["topic"] = "sales"
    assert _problems(data) == [("unknown_segment", "trigger.segment"),
                               ("unknown_topic", "nodes.remind.topic"),
                               ("unknown_segment", "nodes.wait-order.segment")]  # fmt: skip
    batch = _with(trigger={"type": "schedule", "segment": "vip", "at": "2026-05-01T10:00:00+09:00"},
                  entry={})  # fmt: skip
    assert _problems(batch) == []
    dated = _with(trigger={"type": "date", "date": "registered_at", "offset_days": 365}, entry={})
    assert _problems(dated) == []
    for date in ("birthdate", "attributes.renewal_date"):  # the calendar reads no attributes yet
        typo = _with(trigger={"type": "date", "date": date, "offset_days": -3}, entry={})
        assert _problems(typo) == [("unknown_trait", "trigger.date")]


def test_key_property_needs_an_event_trigger() -> None:
    data = _with(trigger={"type": "api"})
    assert _problems(data) == [("invalid_entry", "entry.key_property")]


def test_trigger_property_filters_are_checked_as_event_filters() -> None:
    data = _with(trigger={"type": "event", "event": "Checkout Started",
                          "where": [{"property": "value", "op": "in", "value": 5000}]})  # fmt: skip
    problems = _problems(data)
    assert problems and all(field and field.startswith("trigger.where[0]") for _, field in problems)


# --- Reading ------------------------------------------------------------------------------

BAD_YAML = """\
key: cart
name: カゴ落ち
trigger: {type: event}
start: a
nodes:
  - {id: a, type: wait, duration: {hours: 0}, next: b}
  - id: b
    type: branch
    condition: {type: and, conditions: [{type: orders, within: {days: -1}}]}
    yes: c
    no: a
  - {id: c, type: send, channel: fax, template: x}
  - {id: d.e, type: planet}
"""


def test_shape_problems_carry_the_node_id_path_and_line() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_scenario_text(BAD_YAML)
    found = [(p.field, p.line) for p in caught.value.problems]
    assert found == [
        ("trigger.event", 3),
        ("nodes.a.duration", 6),
        ("nodes.b.condition.conditions[0].within.days", 9),
        ("nodes.c.channel", 12),
        ("nodes.d.e", 13),
    ]
    codes = [p.code for p in caught.value.problems]
    assert codes[1] == "invalid_value_error" and codes[4] == "invalid_union_tag_invalid"
    assert "'wait_for'" in caught.value.problems[4].message


def test_yaml_reads_yes_no_and_times_as_written() -> None:
    text = BAD_YAML.replace("hours: 0", "hours: 1").replace("{type: event}", "{type: api}")
    text = text.replace("within: {days: -1}", "within: {days: 1}").replace("fax", "email")
    text = text.replace("  - {id: d.e, type: planet}\n", "  - {id: d.e, type: wait_until, "
                        "time: 10:00, next: a}\n")  # fmt: skip
    spec = load_scenario_text(text)
    branch = spec.nodes[1]
    assert branch.type == "branch" and (branch.yes, branch.no) == ("c", "a")
    assert spec.nodes[3].type == "wait_until" and spec.nodes[3].time == time(10, 0)


def test_syntax_errors_and_json_name_their_line() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_scenario_text("key: x\nname: [unclosed\n")
    assert caught.value.problems[0].code == "invalid_yaml" and caught.value.problems[0].line == 3
    with pytest.raises(InvalidInput) as caught:
        load_scenario_text('{"key": "x",\n "name": }', "json")
    assert caught.value.problems[0].code == "invalid_json" and caught.value.problems[0].line == 2
    with pytest.raises(InvalidInput) as caught:
        load_scenario_text("- a list\n")
    assert caught.value.problems[0].code == "invalid_spec"


def test_line_of_finds_nodes_by_id_even_with_dots() -> None:
    text = "nodes:\n  - id: a\n    next: a.b\n  - id: a.b\n    next: c\n"
    assert line_of(text, "nodes.a.b.next") == 5
    assert line_of(text, "nodes.a.next") == 3
    assert line_of(text, "nodes[1]") == 4
    assert line_of(text, "nodes.zz") == 2  # the list it is missing from
    assert line_of("{not yaml", "nodes") is None


def test_the_json_schema_describes_nodes_and_triggers() -> None:
    schema = scenario_schema()
    assert {"key", "trigger", "start", "nodes"} <= set(schema["properties"])
    assert {"Send", "WaitFor", "Split", "EventTrigger"} <= set(schema["$defs"])
