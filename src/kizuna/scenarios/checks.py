"""Reading and checking scenario definitions: every problem names its node and the reason.

:func:`parse_scenario` and :func:`load_scenario_text` check shape (a file's problems
carry their line). :func:`check_scenario` checks a parsed definition against a
workspace, and :func:`scenario_problems` does the same against names given to it
(no store), so the rules are testable alone:

- the graph: ``start`` and every ``next`` / ``yes`` / ``no`` / ``timeout_next`` /
  path target name a node; node ids are unique; every node is reachable from
  ``start``; no loop lacks a wait (``wait``, ``wait_until`` or ``wait_for``), since a
  run in such a loop would spin without end; a split's weights add up to 100;
- the names: templates exist on the node's channel, topics are the workspace's,
  trigger / goal / wait_for events have been received (or are standard e-commerce
  events), segments exist, a date trigger names a date trait;
- the conditions (entry filter, branches) pass the segment checker.

A node's problems sit under ``nodes.<id>`` (``nodes.remind.template``,
``nodes.vip-check.condition.conditions[0].name``); :func:`kizuna.documents.line_of`
finds such a path in a file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from kizuna.delivery.settings import load_delivery_settings
from kizuna.documents import load_mapping, locate
from kizuna.errors import InvalidInput, Problem
from kizuna.scenarios.definition import (
    Branch,
    DateTrigger,
    EventMatch,
    EventTrigger,
    Node,
    ScenarioSpec,
    ScheduleTrigger,
    SegmentTrigger,
    Send,
    Split,
    Wait,
    WaitFor,
    WaitUntil,
    Webhook,
)
from kizuna.segments.checks import Vocabulary, check_condition
from kizuna.segments.compiler import CompileContext
from kizuna.segments.definition import Condition, EventCondition
from kizuna.store.scope import Scope
from kizuna.store.segments import compile_context, load_vocabulary
from kizuna.store.templates import get_templates

__all__ = [
    "ScenarioNames",
    "check_scenario",
    "graph_problems",
    "load_scenario_text",
    "node_targets",
    "parse_scenario",
    "scenario_names",
    "scenario_problems",
    "scenario_schema",
]

_WAITS = (Wait, WaitUntil, WaitFor)
# The dates the engine's calendar can read (kizuna.scenarios.calendar); a date attribute
# would need it to learn one first.
_DATES = frozenset({"birthday", "last_order", "first_order", "registered_at"})


@dataclass(frozen=True)
class ScenarioNames:
    """What a scenario may name in a workspace, and how to compile its conditions."""

    vocabulary: Vocabulary  # event names, attribute keys, segments (by key)
    compile: CompileContext
    templates: Mapping[str, str]  # template key -> channel
    topics: frozenset[str]


# --- Reading -----------------------------------------------------------------------------


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario definition (for editors and the API docs)."""
    return ScenarioSpec.model_json_schema()


_ABSENT = object()


def _error_path(loc: tuple[int | str, ...], data: object) -> str:
    """A Pydantic error location as a path through ``data``, nodes named by their ids.

    A discriminated union puts the tag it tried (``send``, ``and``) into the location;
    it is left out, as is any union member label after a plain value.
    """
    text, here, tagged = "", data, False
    for part in loc:
        if isinstance(part, int):
            item = here[part] if isinstance(here, list) and part < len(here) else _ABSENT
            node_id = item.get("id") if isinstance(item, dict) else None
            named = text == "nodes" and isinstance(node_id, str) and node_id
            text = f"nodes.{node_id}" if named else f"{text}[{part}]"
            here, tagged = item, False
        elif isinstance(here, dict) and not tagged and here.get("type") == part:
            tagged = True
        elif here is _ABSENT or isinstance(here, dict | list):
            text = f"{text}.{part}" if text else part
            here = here.get(part, _ABSENT) if isinstance(here, dict) else _ABSENT
            tagged = False
    return text


def parse_scenario(data: object) -> ScenarioSpec:
    """Parse a definition (a mapping); ``InvalidInput`` names each bad field's path."""
    try:
        return ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(
                f"invalid_{error['type']}",
                error["msg"].removeprefix("Value error, "),
                _error_path(error["loc"], data) or None,
            )
            for error in exc.errors(include_url=False)
        ]
        raise InvalidInput(problems) from None


def load_scenario_text(text: str, fmt: Literal["yaml", "json"] = "yaml") -> ScenarioSpec:
    """Read a definition from YAML or JSON text; problems carry their path and line."""
    data = load_mapping(text, fmt, "key, name, trigger, start and nodes")
    try:
        return parse_scenario(data)
    except InvalidInput as exc:
        raise InvalidInput(locate(exc.problems, text)) from None


# --- The graph ---------------------------------------------------------------------------


def _at(node_id: str, name: str = "") -> str:
    return f"nodes.{node_id}.{name}" if name else f"nodes.{node_id}"


def node_targets(node: Node) -> list[tuple[str, str]]:
    """Where ``node`` may go next, each with the field naming it (``yes``, ``paths[1].next``)."""
    if isinstance(node, Branch):
        return [("yes", node.yes), ("no", node.no)]
    if isinstance(node, WaitFor):
        return [("next", node.next), ("timeout_next", node.timeout_next)]
    if isinstance(node, Split):
        return [(f"paths[{i}].next", path.next) for i, path in enumerate(node.paths)]
    following = getattr(node, "next", None)
    return [("next", following)] if isinstance(following, str) else []


def _duplicates(spec: ScenarioSpec) -> list[Problem]:
    counts = Counter(node.id for node in spec.nodes)
    problems = []
    for node_id in (i for i, n in counts.items() if n > 1):
        places = [str(index) for index, node in enumerate(spec.nodes) if node.id == node_id]
        message = (
            f"node id {node_id!r} is used {counts[node_id]} times (nodes[{', '.join(places)}])"
        )
        problems.append(Problem("duplicate_node", message, _at(node_id)))
    return problems


def _targets(spec: ScenarioSpec, nodes: Mapping[str, Node]) -> list[Problem]:
    problems = []
    if spec.start not in nodes:
        message = f"start names {spec.start!r}, which is not a node of this scenario"
        problems.append(Problem("unknown_node", message, "start"))
    for node in nodes.values():
        for name, target in node_targets(node):
            if target not in nodes:
                message = (
                    f"node {node.id!r} goes to {target!r}, which is not a node of this scenario"
                )
                problems.append(Problem("unknown_node", message, _at(node.id, name)))
    return problems


def _unreachable(spec: ScenarioSpec, nodes: Mapping[str, Node]) -> list[Problem]:
    if spec.start not in nodes:
        return []  # reported as an unknown start; everything would look unreachable
    seen, pending = {spec.start}, [spec.start]
    while pending:
        for _, target in node_targets(nodes[pending.pop()]):
            if target in nodes and target not in seen:
                seen.add(target)
                pending.append(target)
    return [
        Problem(
            "unreachable_node", f"node {n!r} cannot be reached from start {spec.start!r}", _at(n)
        )
        for n in nodes
        if n not in seen
    ]


def _components(graph: Mapping[str, list[str]]) -> Iterator[list[str]]:
    """Strongly connected components (Tarjan's algorithm, iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    for root in graph:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        work = [(root, iter(graph[root]))]
        while work:
            node, successors = work[-1]
            for following in successors:
                if following not in index:
                    index[following] = low[following] = len(index)
                    stack.append(following)
                    work.append((following, iter(graph[following])))
                    break
                if following in stack:
                    low[node] = min(low[node], index[following])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    cut = stack.index(node)
                    yield stack[cut:]
                    del stack[cut:]


def _loop(component: list[str], graph: Mapping[str, list[str]]) -> list[str]:
    """One loop inside a strongly connected component, from its first node back to it."""
    inside, path = set(component), [component[0]]
    while True:
        following = next(n for n in graph[path[-1]] if n in inside)
        if following in path:
            return [*path[path.index(following) :], following]
        path.append(following)


def _waitless_loops(nodes: Mapping[str, Node]) -> list[Problem]:
    # Waits break a loop in time; a loop through none of them would spin without end.
    moving = {n: node for n, node in nodes.items() if not isinstance(node, _WAITS)}
    graph = {n: [t for _, t in node_targets(node) if t in moving] for n, node in moving.items()}
    problems = []
    for component in _components(graph):
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        order = sorted(component, key=list(nodes).index)
        loop = " → ".join(repr(n) for n in _loop(order, graph))
        message = (
            f"nodes {loop} form a loop without a wait: a run would never stop; "
            "put a wait, wait_until or wait_for on the loop"
        )
        problems.append(Problem("cycle_without_wait", message, _at(order[0])))
    return problems


def _splits(nodes: Mapping[str, Node]) -> list[Problem]:
    problems = []
    for node in nodes.values():
        if isinstance(node, Split) and (total := sum(p.weight for p in node.paths)) != 100:
            message = f"the weights of split {node.id!r} add up to {total}, not 100"
            problems.append(Problem("split_weights", message, _at(node.id, "paths")))
    return problems


def graph_problems(spec: ScenarioSpec) -> list[Problem]:
    """Problems of the node graph alone: ids, targets, reachability, loops, split weights."""
    nodes: dict[str, Node] = {}
    for node in spec.nodes:
        nodes.setdefault(node.id, node)  # a duplicate is reported; the first one counts
    return (
        _duplicates(spec)
        + _targets(spec, nodes)
        + _unreachable(spec, nodes)
        + _waitless_loops(nodes)
        + _splits(nodes)
    )


# --- Names and conditions ----------------------------------------------------------------


def _condition(condition: Condition, at: str, names: ScenarioNames) -> list[Problem]:
    """The segment checker's problems of ``condition``, their paths under ``at``."""
    try:
        check_condition(condition, names.vocabulary, names.compile)
    except InvalidInput as exc:
        return [
            Problem(p.code, p.message, f"{at}.{p.field}" if p.field else at, p.line)
            for p in exc.problems
        ]
    return []


def _event(match: EventMatch, at: str, names: ScenarioNames) -> list[Problem]:
    # As an event condition, so the name and the property filters get the segment checks.
    condition = EventCondition(type="event", name=match.event, where=match.where)
    problems = []
    for p in _condition(condition, at, names):
        field = p.field or at
        problems.append(Problem(p.code, p.message, field.replace(f"{at}.name", f"{at}.event", 1)))
    return problems


def _segment(key: str, at: str, names: ScenarioNames) -> list[Problem]:
    if key in names.vocabulary.segments:
        return []
    return [Problem("unknown_segment", f"no segment {key!r} in this workspace", at)]


def _trigger(spec: ScenarioSpec, names: ScenarioNames) -> list[Problem]:
    trigger = spec.trigger
    if isinstance(trigger, EventTrigger):
        return _event(trigger, "trigger", names)
    if isinstance(trigger, SegmentTrigger | ScheduleTrigger):
        return _segment(trigger.segment, "trigger.segment", names)
    if isinstance(trigger, DateTrigger) and trigger.date not in _DATES:
        message = f"{trigger.date!r} is not a date a trigger can use: {', '.join(sorted(_DATES))}"
        return [Problem("unknown_trait", message, "trigger.date")]
    return []


def _entry(spec: ScenarioSpec, names: ScenarioNames) -> list[Problem]:
    problems = []
    if spec.entry.filter is not None:
        problems += _condition(spec.entry.filter, "entry.filter", names)
    if spec.entry.key_property is not None and not isinstance(spec.trigger, EventTrigger):
        message = "key_property names a property of the trigger event: it needs an event trigger"
        problems.append(Problem("invalid_entry", message, "entry.key_property"))
    return problems


def _template(node: Send | Webhook, names: ScenarioNames) -> list[Problem]:
    if node.template is None:
        return []
    channel = node.channel if isinstance(node, Send) else "webhook"
    found = names.templates.get(node.template)
    if found is None:
        message = f"no template {node.template!r} in this workspace (save it first)"
        return [Problem("unknown_template", message, _at(node.id, "template"))]
    if found != channel:
        message = f"template {node.template!r} is for {found}, but node {node.id!r} sends {channel}"
        return [Problem("template_channel", message, _at(node.id, "template"))]
    return []


def _node_names(node: Node, names: ScenarioNames) -> list[Problem]:
    if isinstance(node, Send | Webhook):
        problems = _template(node, names)
        if isinstance(node, Send) and node.topic is not None and node.topic not in names.topics:
            known = ", ".join(sorted(names.topics)) or "none yet (kizuna delivery settings)"
            message = f"no topic {node.topic!r} in the delivery settings; known: {known}"
            problems.append(Problem("unknown_topic", message, _at(node.id, "topic")))
        return problems
    if isinstance(node, Branch):
        return _condition(node.condition, _at(node.id, "condition"), names)
    if isinstance(node, WaitFor) and node.event is not None:
        return _event(node.event, _at(node.id, "event"), names)
    if isinstance(node, WaitFor) and node.segment is not None:
        return _segment(node.segment, _at(node.id, "segment"), names)
    return []


def scenario_problems(spec: ScenarioSpec, names: ScenarioNames) -> list[Problem]:
    """Every problem of ``spec`` given what the workspace holds; empty when it can be saved."""
    problems = graph_problems(spec) + _trigger(spec, names) + _entry(spec, names)
    if spec.goal is not None:
        problems += _event(spec.goal, "goal", names)
    for node in spec.nodes:
        problems += _node_names(node, names)
    return problems


def scenario_names(scope: Scope, spec: ScenarioSpec, *, fresh: bool = False) -> ScenarioNames:
    """What ``spec`` may name in the scope's workspace (templates: only those it names)."""
    wanted = [n.template for n in spec.nodes if isinstance(n, Send | Webhook) and n.template]
    templates = {key: t.channel for key, t in get_templates(scope, wanted).items()}
    topics = frozenset(t.key for t in load_delivery_settings(scope.conn, scope.workspace_id).topics)
    vocabulary = load_vocabulary(scope, fresh=fresh)
    return ScenarioNames(vocabulary, compile_context(scope), templates, topics)


def check_scenario(scope: Scope, spec: ScenarioSpec) -> list[Problem]:
    """Every problem of ``spec`` in the scope's workspace; empty when it can be saved."""
    problems = scenario_problems(spec, scenario_names(scope, spec))
    if any(p.code == "unknown_event" for p in problems):
        # Event names are cached for a minute; one may have arrived since.
        problems = scenario_problems(spec, scenario_names(scope, spec, fresh=True))
    return problems
