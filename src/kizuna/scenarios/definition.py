"""The scenario language: a versioned, typed graph of nodes behind one trigger.

A scenario names how customers enter (``trigger`` and ``entry``), what ends a run
early (``goal`` and ``exits``), and a graph of ``nodes`` from ``start``. Each node
names the node(s) after it by id. Conditions reuse the segment language
(:mod:`kizuna.segments.definition`), so "is a VIP" means the same in a segment, a
branch and an entry filter. Times of day are in the workspace's time zone.

Example (cart abandonment)::

    key: cart-abandonment
    name: カゴ落ちリマインド
    priority: 10
    trigger: {type: event, event: Checkout Started,
              where: [{property: value, op: gte, value: 5000}]}
    entry: {reentry: every_time, key_property: cart_id}
    goal: {event: Order Completed}
    holdout_percent: 10
    start: wait-1h
    nodes:
      - {id: wait-1h, type: wait, duration: {hours: 1}, next: remind}
      - {id: remind, type: send, channel: email, template: cart-reminder, next: wait-24h}
      - {id: wait-24h, type: wait, duration: {hours: 24}, next: remind-again}
      - {id: remind-again, type: send, channel: line, template: cart-line, next: done}
      - {id: done, type: exit}
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kizuna.segments.definition import Condition, PropertyFilter

__all__ = [
    "ApiTrigger",
    "Branch",
    "DateTrigger",
    "Duration",
    "Entry",
    "EventMatch",
    "EventTrigger",
    "ExitNode",
    "Exits",
    "Node",
    "ScenarioSpec",
    "ScheduleTrigger",
    "SegmentTrigger",
    "Send",
    "Split",
    "SplitPath",
    "Trigger",
    "UpdateProfile",
    "Wait",
    "WaitFor",
    "WaitUntil",
    "Webhook",
]

NodeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Part):
    """A length of time; the parts add up (``{days: 1, hours: 12}``)."""

    days: int = Field(default=0, ge=0, le=3660)
    hours: int = Field(default=0, ge=0, le=87_840)
    minutes: int = Field(default=0, ge=0, le=5_270_400)

    @model_validator(mode="after")
    def _positive(self) -> Duration:
        if self.delta() <= timedelta(0):
            raise ValueError("a duration must be longer than zero")
        return self

    def delta(self) -> timedelta:
        """As a timedelta."""
        return timedelta(days=self.days, hours=self.hours, minutes=self.minutes)


class EventMatch(_Part):
    """An event by name, with property filters (all must hold)."""

    event: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list)


# --- Triggers ----------------------------------------------------------------------------


class EventTrigger(EventMatch):
    """Enter when the customer performs an event (e.g. Checkout Started with value ≥ 5,000)."""

    type: Literal["event"]


class SegmentTrigger(_Part):
    """Enter when the customer enters (or exits) a segment."""

    type: Literal["segment"]
    segment: str = Field(min_length=1, max_length=64)
    change: Literal["entered", "exited"] = "entered"


class DateTrigger(_Part):
    """Enter on a date: the birthday, N days after the last order, or a date trait."""

    type: Literal["date"]
    date: Literal["birthday", "last_order", "first_order", "registered_at"] | str
    offset_days: int = Field(default=0, ge=-366, le=3660)  # e.g. 30: 30 days after the date
    at: time = time(10, 0)  # local time of day the run starts


class ScheduleTrigger(_Part):
    """Enter a whole segment at once, at a time (a scheduled batch entry)."""

    type: Literal["schedule"]
    segment: str = Field(min_length=1, max_length=64)
    at: datetime


class ApiTrigger(_Part):
    """Enter when an API call asks (``POST …/scenarios/{key}/runs``)."""

    type: Literal["api"]


Trigger = Annotated[
    EventTrigger | SegmentTrigger | DateTrigger | ScheduleTrigger | ApiTrigger,
    Field(discriminator="type"),
]


class Entry(_Part):
    """Who may enter, and how often."""

    filter: Condition | None = None  # a segment condition the customer must meet at entry
    reentry: Literal["once", "every_time", "after_days"] = "once"
    reentry_days: int | None = Field(default=None, gt=0, le=3660)  # with after_days
    # One run per value of this trigger-event property (one run per cart, per order);
    # without it a customer has at most one active run of the scenario.
    key_property: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _days(self) -> Entry:
        if (self.reentry == "after_days") != (self.reentry_days is not None):
            raise ValueError("reentry_days goes with reentry: after_days, and only with it")
        return self


class Exits(_Part):
    """What ends a run early, besides the goal."""

    on_opt_out: bool = True  # the customer opted out of the channel the next send uses
    on_blacklist: bool = True
    on_frequency_cap: bool = False  # exit instead of skipping a capped send
    no_response_after_sends: int | None = Field(default=None, gt=0, le=100)


# --- Nodes -------------------------------------------------------------------------------


class _Node(_Part):
    id: NodeId
    label: str | None = Field(default=None, max_length=200)


class Wait(_Node):
    """Wait for a duration."""

    type: Literal["wait"]
    duration: Duration
    next: NodeId


class WaitUntil(_Node):
    """Wait until a local time of day (on one of ``weekdays``, when given)."""

    type: Literal["wait_until"]
    time: time
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=list
    )
    next: NodeId


class WaitFor(_Node):
    """Wait for an event or a segment change, at most ``timeout``; branch on which came first."""

    type: Literal["wait_for"]
    event: EventMatch | None = None
    segment: str | None = Field(default=None, min_length=1, max_length=64)
    change: Literal["entered", "exited"] = "entered"
    timeout: Duration
    next: NodeId  # it happened
    timeout_next: NodeId  # it did not, in time

    @model_validator(mode="after")
    def _one(self) -> WaitFor:
        if (self.event is None) == (self.segment is None):
            raise ValueError("wait_for needs exactly one of event or segment")
        return self


class Branch(_Node):
    """Go ``yes`` when the customer meets the condition now, else ``no``."""

    type: Literal["branch"]
    condition: Condition
    yes: NodeId
    no: NodeId


class SplitPath(_Part):
    """One path of a random split."""

    weight: int = Field(ge=0, le=100)
    next: NodeId
    label: str | None = Field(default=None, max_length=64)  # the variant's name (A, B …)


class Split(_Node):
    """A/B/n: each run takes one path at random by weight (weights sum to 100)."""

    type: Literal["split"]
    paths: list[SplitPath] = Field(min_length=2, max_length=10)


class Send(_Node):
    """Send a template on a channel."""

    type: Literal["send"]
    channel: Literal["email", "line", "sms", "push"]
    template: str = Field(min_length=1, max_length=64)
    purpose: Literal["marketing", "transactional"] = "marketing"
    topic: str | None = Field(default=None, max_length=64)
    # When a frequency cap is reached at send time: skip this message, or hold it until
    # the cap allows (exits.on_frequency_cap ends the run instead).
    when_capped: Literal["skip", "defer"] = "skip"
    next: NodeId | None = None  # None: the run completes after sending


class UpdateProfile(_Node):
    """Set free attributes on the customer (``attributes.KEY``) and add or remove tags."""

    type: Literal["update"]
    attributes: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    add_tags: list[str] = Field(default_factory=list)
    remove_tags: list[str] = Field(default_factory=list)
    next: NodeId | None = None


class Webhook(_Node):
    """Call a webhook (a signed JSON POST through the delivery pipeline)."""

    type: Literal["webhook"]
    template: str | None = Field(default=None, max_length=64)  # a webhook template, or
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")  # the provider's URL
    next: NodeId | None = None


class ExitNode(_Node):
    """End the run."""

    type: Literal["exit"]


Node = Annotated[
    Wait | WaitUntil | WaitFor | Branch | Split | Send | UpdateProfile | Webhook | ExitNode,
    Field(discriminator="type"),
]


class ScenarioSpec(_Part):
    """A whole scenario definition, as saved and versioned."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    priority: int = Field(default=0, ge=-1000, le=1000)  # higher wins a contested customer
    trigger: Trigger
    entry: Entry = Entry()
    goal: EventMatch | None = None
    exits: Exits = Exits()
    holdout_percent: float = Field(default=0, ge=0, le=90)
    start: NodeId
    nodes: list[Node] = Field(min_length=1)
