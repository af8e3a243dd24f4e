"""Checks of a definition against a workspace, and what can change its membership.

:func:`check_condition` collects every problem with its node's path: an unknown
trait, attribute, event, RFM segment or segment; an operator that does not apply
(``gt`` on a prefecture, ``contains`` on an encrypted email); a date compared with a
number; segments nesting in a cycle. It then compiles the tree, which catches what
only compiling can (an unknown prefecture, a malformed date).

:func:`dependencies` names the *causes* after which a customer's membership may
change: ``event:<name>``, ``orders``, ``traits``, ``consent``, ``metrics`` and
``time`` (the definition reads the clock, so a scheduled refresh is needed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from kizuna.analytics.rfm_rules import DEFAULT_SEGMENT_RULES
from kizuna.errors import InvalidInput, Problem
from kizuna.segments.compiler import CompileContext, compile_segment
from kizuna.segments.definition import (
    DAY_OPS,
    NUMBER_OPS,
    AllOf,
    AnyOf,
    Birthday,
    Bought,
    ChannelState,
    Condition,
    EventCondition,
    EventTime,
    MetricCondition,
    Not,
    OrderDate,
    Orders,
    PriceType,
    SegmentRef,
    TraitCondition,
    Window,
)
from kizuna.segments.vocabulary import ATTRIBUTE_PREFIX, METRICS, STANDARD_EVENTS, trait_kind

__all__ = ["Vocabulary", "check_condition", "dependencies", "walk"]

_DATE_OPS = DAY_OPS | {"before", "after", "between"}
_PRESENCE = frozenset({"exists", "not_exists"})
_TEXT_OPS = frozenset({"eq", "ne", "in", "not_in", "contains"})


@dataclass(frozen=True)
class Vocabulary:
    """What a workspace holds: event names and attribute keys seen, and its segments."""

    events: frozenset[str] = frozenset()
    attributes: frozenset[str] = frozenset()
    segments: Mapping[str, Condition] = field(default_factory=dict)


def walk(node: Condition, where: str = "") -> Iterator[tuple[str, Condition]]:
    """Every node of the tree with its path (``conditions[1].condition``), root first."""
    yield where, node
    prefix = f"{where}." if where else ""
    if isinstance(node, AllOf | AnyOf):
        for index, child in enumerate(node.conditions):
            yield from walk(child, f"{prefix}conditions[{index}]")
    elif isinstance(node, Not):
        yield from walk(node.condition, f"{prefix}condition")


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _date_value(op: str, value: object, where: str) -> list[Problem]:
    path = _at(where, "value")
    if op in DAY_OPS:
        if isinstance(value, bool) or not isinstance(value, int):
            return [Problem("type_mismatch", f"{op} needs a whole number of days", path)]
        return []
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, bool | int | float) for v in values):
        return [Problem("type_mismatch", "compares a date with a number: give a date", path)]
    return []


def _trait(node: TraitCondition, where: str, vocab: Vocabulary) -> list[Problem]:
    kind = trait_kind(node.trait)
    op_at = _at(where, "op")
    if kind is None:
        return [Problem("unknown_trait", f"unknown trait {node.trait}", _at(where, "trait"))]
    if kind == "attribute" and node.trait[len(ATTRIBUTE_PREFIX) :] not in vocab.attributes:
        known = ", ".join(sorted(vocab.attributes)[:20]) or "none yet"
        message = f"no customer has attribute {node.trait}; known: {known}"
        return [Problem("unknown_trait", message, _at(where, "trait"))]
    if kind == "personal" and node.op not in _PRESENCE:
        return [
            Problem(
                "encrypted_trait", f"{node.trait} is encrypted: exists / not_exists only", op_at
            )
        ]
    if kind == "date" and node.op not in _DATE_OPS | _PRESENCE:
        return [
            Problem(
                "type_mismatch",
                f"{node.trait} is a date: use before, after, between, within_last_days …",
                op_at,
            )
        ]
    if kind == "text" and node.op not in _TEXT_OPS | _PRESENCE:
        return [Problem("type_mismatch", f"{node.trait} is text: {node.op} does not apply", op_at)]
    if node.op in _DATE_OPS and kind in ("date", "attribute"):
        return _date_value(node.op, node.value, where)
    return _needs_value(node.op, node.value, where)


def _needs_value(op: str, value: object, where: str) -> list[Problem]:
    if op in _PRESENCE:
        return (
            []
            if value is None
            else [Problem("invalid_value", f"{op} takes no value", _at(where, "value"))]
        )
    if value is None:
        return [Problem("missing_value", f"{op} needs a value", _at(where, "value"))]
    if op in ("in", "not_in") and not isinstance(value, list):
        return [Problem("invalid_value", f"{op} needs a list of values", _at(where, "value"))]
    if op in NUMBER_OPS and any(
        isinstance(v, str) for v in (value if isinstance(value, list) else [value])
    ):
        return [Problem("type_mismatch", f"{op} compares numbers; got text", _at(where, "value"))]
    return []


def _metric(node: MetricCondition, where: str) -> list[Problem]:
    kind = METRICS[node.metric]
    op_at = _at(where, "op")
    if kind == "date":
        if node.op not in _DATE_OPS | _PRESENCE:
            return [Problem("type_mismatch", f"{node.metric} is a date", op_at)]
        return _date_value(node.op, node.value, where) if node.op in _DATE_OPS else []
    if node.op in _DATE_OPS:
        return [Problem("type_mismatch", f"{node.metric} is not a date", op_at)]
    if kind == "text":
        known = {rule.key for rule in DEFAULT_SEGMENT_RULES.rules}
        values = node.value if isinstance(node.value, list) else [node.value]
        unknown = [str(v) for v in values if v is not None and v not in known]
        if unknown:
            listed = ", ".join(sorted(known))
            message = f"unknown RFM segment {', '.join(unknown)}; known: {listed}"
            return [Problem("unknown_rfm_segment", message, _at(where, "value"))]
    elif isinstance(node.value, str):
        return [
            Problem("type_mismatch", f"{node.metric} is a number; got text", _at(where, "value"))
        ]
    return _needs_value(node.op, node.value, where)


def _event_name(name: str, where: str, vocab: Vocabulary) -> list[Problem]:
    if name in vocab.events or name in STANDARD_EVENTS:
        return []
    return [
        Problem("unknown_event", f"no event named {name!r} has been received", _at(where, "name"))
    ]


def _node_problems(node: Condition, where: str, vocab: Vocabulary) -> list[Problem]:
    if isinstance(node, TraitCondition):
        return _trait(node, where, vocab)
    if isinstance(node, MetricCondition):
        return _metric(node, where)
    if isinstance(node, EventCondition):
        return _event_name(node.name, where, vocab)
    if isinstance(node, EventTime):
        return _event_name(node.name, where, vocab) + _date_value(node.op, node.value, where)
    if isinstance(node, OrderDate):
        return _date_value(node.op, node.value, where)
    if isinstance(node, SegmentRef) and node.segment not in vocab.segments:
        return [Problem("unknown_segment", f"no segment {node.segment}", _at(where, "segment"))]
    return []


def _cycle(
    key: str | None, condition: Condition, segments: Mapping[str, Condition]
) -> Problem | None:
    def visit(node: Condition, chain: tuple[str, ...], where: str) -> Problem | None:
        for path, child in walk(node, where):
            if not isinstance(child, SegmentRef):
                continue
            if child.segment in chain:
                loop = " → ".join((*chain, child.segment))
                return Problem(
                    "segment_cycle", f"segments refer to each other: {loop}", _at(path, "segment")
                )
            inner = segments.get(child.segment)
            found = inner and visit(inner, (*chain, child.segment), where)
            if found:
                return Problem(found.code, found.message, _at(path, "segment"))
        return None

    return visit(condition, (key,) if key else (), "")


def check_condition(
    condition: Condition, vocab: Vocabulary, ctx: CompileContext, key: str | None = None
) -> None:
    """Raise ``InvalidInput`` listing every problem of ``condition`` (saved under ``key``)."""
    segments = {**vocab.segments, **({key: condition} if key else {})}
    problems = [p for where, node in walk(condition) for p in _node_problems(node, where, vocab)]
    cycle = _cycle(key, condition, segments)
    if cycle is not None:
        problems.append(cycle)
    if problems:
        raise InvalidInput(problems)
    compile_segment(condition, CompileContext(ctx.workspace, ctx.now, ctx.dialect, segments))


def _window_reads_clock(window: Window | None) -> bool:
    return window is not None and window.days is not None


def _node_causes(node: Condition) -> set[str]:
    causes: set[str] = set()
    if isinstance(node, EventCondition | EventTime):
        causes.add(f"event:{node.name}")
    elif isinstance(node, Orders | OrderDate | Bought | PriceType):
        causes.add("orders")
    elif isinstance(node, TraitCondition | Birthday) or node.type == "location":
        causes.add("traits")
    elif isinstance(node, ChannelState):
        causes |= {"consent", "traits"}  # an identify may add the address
    elif isinstance(node, MetricCondition):
        causes.add("metrics")
    op = getattr(node, "op", None)
    window = getattr(node, "within", None)
    if isinstance(node, Birthday) or op in DAY_OPS or _window_reads_clock(window):
        causes.add("time")
    return causes


def dependencies(condition: Condition, segments: Mapping[str, Condition]) -> frozenset[str]:
    """Causes after which membership may change (referenced segments' causes included)."""
    causes: set[str] = set()
    pending, seen = [condition], set()
    while pending:
        for _, node in walk(pending.pop()):
            causes |= _node_causes(node)
            if isinstance(node, SegmentRef) and node.segment not in seen:
                seen.add(node.segment)
                if node.segment in segments:
                    pending.append(segments[node.segment])
                causes.add(f"segment:{node.segment}")
    return frozenset(causes)
