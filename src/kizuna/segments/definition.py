"""The segment definition language: a typed tree of conditions, parsed once at the edge.

A definition is a tree of AND / OR / NOT over leaf conditions, each a Pydantic model
tagged by ``type`` (a discriminated union, so a JSON Schema describes it and an
editor can complete it)::

    type: and
    conditions:
      - {type: event, name: Product Viewed, where: [{property: category, value: スキンケア}],
         at_least: 3, within: {days: 30}}
      - {type: not, condition: {type: orders, within: {days: 90}}}
      - {type: channel, channel: email}

Leaves: ``trait``, ``birthday``, ``location`` (demographic and geographic);
``channel`` (consent and reachability); ``event`` and ``event_time`` (behaviour);
``orders``, ``order_date``, ``bought`` and ``price_type`` (purchases, PB);
``metric`` (what analytics stores per customer: RFM, CLV, P(alive)); ``segment``
(membership of another segment, inlined) and ``bucket`` (a deterministic random
split). This module checks shape only; :mod:`kizuna.segments.checks` checks names
against a workspace (unknown traits, events, segments, cycles, value types).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from kizuna.errors import InvalidInput, Problem

__all__ = [
    "AllOf",
    "AnyOf",
    "Birthday",
    "Bought",
    "Bucket",
    "ChannelState",
    "Condition",
    "DateOp",
    "EventCondition",
    "EventTime",
    "Location",
    "MetricCondition",
    "Not",
    "OrderDate",
    "Orders",
    "PriceType",
    "PropertyFilter",
    "Scalar",
    "SegmentRef",
    "SegmentSpec",
    "TraitCondition",
    "Window",
    "condition_schema",
    "load_spec",
    "parse_condition",
    "parse_spec",
    "problems_from",
]

Scalar = str | int | float | bool
ValueOp = Literal["eq", "ne", "in", "not_in", "contains", "gt", "gte", "lt", "lte", "between"]
PresenceOp = Literal["exists", "not_exists"]
# Relative and absolute comparisons for anything holding a date or a time.
DateOp = Literal[
    "before", "after", "between", "within_last_days", "older_than_days", "within_next_days"
]
NUMBER_OPS = frozenset({"gt", "gte", "lt", "lte", "between"})
DAY_OPS = frozenset({"within_last_days", "older_than_days", "within_next_days"})


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Node):
    """A time window: the last ``days`` days, or from ``since`` to ``until`` (either open)."""

    days: int | None = Field(default=None, gt=0, le=36_600)
    since: datetime | date | None = None
    until: datetime | date | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Window:
        if self.days is not None and (self.since is not None or self.until is not None):
            raise ValueError("give either days or since/until, not both")
        if self.days is None and self.since is None and self.until is None:
            raise ValueError("give days, or since and/or until")
        return self


class PropertyFilter(_Node):
    """A test on one event property (a dotted path into ``properties``)."""

    property: str = Field(min_length=1, max_length=200)
    op: Literal[ValueOp, PresenceOp] = "eq"
    value: Scalar | list[Scalar] | None = None


class AllOf(_Node):
    """Every condition holds (AND)."""

    type: Literal["and"]
    conditions: list[Condition] = Field(min_length=1)


class AnyOf(_Node):
    """At least one condition holds (OR)."""

    type: Literal["or"]
    conditions: list[Condition] = Field(min_length=1)


class Not(_Node):
    """The condition does not hold."""

    type: Literal["not"]
    condition: Condition


class TraitCondition(_Node):
    """A profile trait compared with a value, or a date trait compared with today.

    ``trait`` is a built-in (``gender``, ``prefecture``, ``city``, ``membership_rank``,
    ``registered_at``, ``first_seen_at``, ``last_seen_at``; personal ones such as
    ``email`` allow only ``exists`` / ``not_exists``) or ``attributes.KEY``.
    """

    type: Literal["trait"]
    trait: str = Field(min_length=1, max_length=200)
    op: Literal[ValueOp, PresenceOp, DateOp]
    value: Scalar | list[Scalar] | None = None


class Birthday(_Node):
    """The birthday falls in the next ``within_next_days`` days (today counts) or in ``month``."""

    type: Literal["birthday"]
    within_next_days: int | None = Field(default=None, ge=0, le=366)
    month: int | None = Field(default=None, ge=1, le=12)

    @model_validator(mode="after")
    def _one_form(self) -> Birthday:
        if (self.within_next_days is None) == (self.month is None):
            raise ValueError("give exactly one of within_next_days and month")
        return self


class Location(_Node):
    """Lives in one of ``prefectures`` or ``regions`` (関東, 関西 …; Japanese or English)."""

    type: Literal["location"]
    prefectures: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> Location:
        if not self.prefectures and not self.regions:
            raise ValueError("name at least one prefecture or region")
        return self


class ChannelState(_Node):
    """Consent and reachability on one channel.

    ``reachable`` (the default): opted in, and at least one address on the channel
    that is not suppressed. The parts alone: ``opted_in``, ``opted_out``,
    ``has_address``, ``suppressed`` (an address on the suppression list).
    """

    type: Literal["channel"]
    channel: Literal["email", "line", "sms", "push"]
    state: Literal["reachable", "opted_in", "opted_out", "has_address", "suppressed"] = "reachable"


class EventCondition(_Node):
    """Performed ``name`` at least / at most N times within a window, with property filters.

    With neither bound it means "at least once"; ``at_most: 0`` means "did not perform".
    """

    type: Literal["event"]
    name: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list)
    at_least: int | None = Field(default=None, ge=0)
    at_most: int | None = Field(default=None, ge=0)
    within: Window | None = None

    @model_validator(mode="after")
    def _bounds(self) -> EventCondition:
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError("at_least is greater than at_most")
        return self


class EventTime(_Node):
    """When ``name`` was first or last performed, compared with a date or with today."""

    type: Literal["event_time"]
    name: str = Field(min_length=1, max_length=200)
    which: Literal["first", "last"] = "last"
    where: list[PropertyFilter] = Field(default_factory=list)
    op: DateOp
    value: Scalar | list[Scalar]


class Orders(_Node):
    """Purchases (net of cancellations and refunds) in a window: count, total or AOV.

    ``measure`` defaults to ``count`` with ``op: gte`` and ``value: 1`` ("ordered").
    """

    type: Literal["orders"]
    measure: Literal["count", "total", "average_value"] = "count"
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "between"] = "gte"
    value: float | list[float] = 1
    within: Window | None = None
    channel: list[Literal["online", "store", "marketplace"]] = Field(default_factory=list)


class OrderDate(_Node):
    """The first or last purchase date compared with a date or with today."""

    type: Literal["order_date"]
    which: Literal["first", "last"] = "last"
    op: DateOp
    value: Scalar | list[Scalar]


class Bought(_Node):
    """Bought (kept, after returns) something of these categories, brands or SKUs."""

    type: Literal["bought"]
    categories: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)
    skus: list[str] = Field(default_factory=list)
    within: Window | None = None

    @model_validator(mode="after")
    def _something(self) -> Bought:
        if not (self.categories or self.brands or self.skus):
            raise ValueError("name at least one category, brand or sku")
        return self


class PriceType(_Node):
    """PB class by the sale share of line revenue: ``full_price``, ``mixed`` or ``sale``."""

    type: Literal["price_type"]
    buyer: Literal["full_price", "mixed", "sale"]
    within: Window | None = None


class MetricCondition(_Node):
    """A stored customer metric: RFM scores and segment, CLV, P(alive), next order date."""

    type: Literal["metric"]
    metric: Literal[
        "r_score", "f_score", "m_score", "rfm_segment", "recency_days", "frequency",
        "monetary", "p_alive", "expected_purchases", "clv", "expected_next_order_at",
    ]  # fmt: skip
    op: Literal[ValueOp, PresenceOp, DateOp]
    value: Scalar | list[Scalar] | None = None


class SegmentRef(_Node):
    """Is a member of another segment (by its key); evaluated from its definition."""

    type: Literal["segment"]
    segment: str = Field(min_length=1, max_length=64)


class Bucket(_Node):
    """A deterministic random bucket: ``hash(salt, customer) mod buckets`` in ``[start, end]``."""

    type: Literal["bucket"]
    buckets: int = Field(default=100, ge=2, le=1_000_000)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    salt: str = Field(default="", max_length=100)

    @model_validator(mode="after")
    def _in_range(self) -> Bucket:
        if not self.start <= self.end < self.buckets:
            raise ValueError("need 0 <= start <= end < buckets")
        return self


Condition = Annotated[
    AllOf | AnyOf | Not | TraitCondition | Birthday | Location | ChannelState | EventCondition
    | EventTime | Orders | OrderDate | Bought | PriceType | MetricCondition | SegmentRef | Bucket,
    Field(discriminator="type"),
]  # fmt: skip

for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()

_ADAPTER: TypeAdapter[Condition] = TypeAdapter(Condition)


class SegmentSpec(_Node):
    """A segment as a marketer saves it: a key, a name, a priority and its condition tree."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    rank: int | None = Field(default=None, ge=1, le=1000)  # 4R Rank: 1 is the top priority
    condition: Condition


def condition_schema() -> dict[str, Any]:
    """The JSON Schema of a condition tree (for editors and the API docs)."""
    return _ADAPTER.json_schema()


def parse_condition(data: object, *, root: str = "") -> Condition:
    """Parse a condition tree; raises ``InvalidInput`` naming each bad node's path."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise InvalidInput(problems_from(exc, root)) from None


def parse_spec(data: object) -> SegmentSpec:
    """Parse a segment spec (a mapping); raises ``InvalidInput`` naming each bad field's path."""
    try:
        return SegmentSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(problems_from(exc)) from None


def load_spec(text: str, fmt: Literal["yaml", "json"] = "yaml") -> SegmentSpec:
    """Read a segment spec from YAML or JSON text; syntax errors name their line."""
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(Problem("invalid_json", exc.msg, line=exc.lineno)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InvalidInput(Problem("invalid_yaml", str(exc).splitlines()[0], line=line)) from None
    if not isinstance(data, dict):
        raise InvalidInput(Problem("invalid_spec", "expected a mapping with key, name, condition"))
    return parse_spec(data)


_TAGS = frozenset(
    ("and", "or", "not", "trait", "birthday", "location", "channel", "event", "event_time",
     "orders", "order_date", "bought", "price_type", "metric", "segment", "bucket")
)  # fmt: skip


def problems_from(exc: ValidationError, root: str = "") -> list[Problem]:
    """Pydantic errors as Problems with paths like ``conditions[2].within.days``."""
    problems = []
    for error in exc.errors(include_url=False):
        path = _path(error["loc"], root)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "union_tag_invalid":
            message = f"unknown condition type; expected one of {', '.join(sorted(_TAGS))}"
        problems.append(Problem(f"invalid_{error['type']}", message, path or None))
    return problems


def _path(loc: tuple[int | str, ...], root: str) -> str:
    text = root
    for index, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in _TAGS and _follows_union(loc, index):
            continue  # the discriminator's tag names the branch Pydantic tried, not a field
        else:
            text += f".{part}" if text else part
    return text


def _follows_union(loc: tuple[int | str, ...], index: int) -> bool:
    before = loc[index - 1] if index else None
    return index == 0 or isinstance(before, int) or before == "condition"
