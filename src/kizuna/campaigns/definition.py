"""The campaign language: segment, channel, content variants, control group, schedule, goal.

Example::

    key: spring-sale
    name: 春のセール
    segment: active-buyers
    channel: email
    topic: sale
    variants:
      - {key: A, template: spring-a, weight: 50}
      - {key: B, template: spring-b, weight: 50}
    control_percent: 10
    schedule: {kind: local_time, date: 2026-04-03, local_time: "10:00"}
    window_days: 7

:func:`parse_campaign` and :func:`load_campaign_text` check the shape (a file's
problems carry their line); :func:`campaign_problems` checks the names against a
workspace: the segment exists, every template exists for the channel, the topic is
one of the delivery settings'. A problem's ``field`` is its path
(``variants[1].template``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kizuna.delivery.settings import load_delivery_settings
from kizuna.documents import load_mapping, locate
from kizuna.errors import InvalidInput, Problem
from kizuna.store.scope import Scope
from kizuna.store.segments import segment_conditions
from kizuna.store.templates import get_templates

__all__ = [
    "CampaignSpec",
    "Goal",
    "Schedule",
    "Variant",
    "campaign_problems",
    "campaign_schema",
    "load_campaign_text",
    "parse_campaign",
    "send_instant",
]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Part):
    """One content variant: a template, drawn for a share of the audience by weight."""

    key: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    template: str = Field(min_length=1, max_length=64)
    weight: float = Field(default=1, gt=0, le=1_000_000)


class Schedule(_Part):
    """When it sends: ``now`` (once approved), ``at`` a time, or at a local time on a date.

    ``at`` without a zone is read in the workspace's zone; ``local_time`` is
    ``HH:MM`` on ``date`` in the workspace's zone.
    """

    kind: Literal["now", "at", "local_time"] = "now"
    at: dt.datetime | None = None
    local_time: dt.time | None = None
    date: dt.date | None = None

    @model_validator(mode="after")
    def _fields(self) -> Schedule:
        if self.kind == "at" and (self.at is None or self.local_time or self.date):
            raise ValueError("schedule kind 'at' needs 'at' (and neither local_time nor date)")
        if self.kind == "local_time" and (self.local_time is None or self.date is None):
            raise ValueError("schedule kind 'local_time' needs local_time (HH:MM) and date")
        if self.kind == "local_time" and self.at is not None:
            raise ValueError("schedule kind 'local_time' takes local_time and date, not 'at'")
        if self.kind == "now" and (self.at or self.local_time or self.date):
            raise ValueError("schedule kind 'now' takes no time")
        return self


class Goal(_Part):
    """A goal event counted as a conversion (instead of a placed order)."""

    event: str = Field(min_length=1, max_length=200)


class CampaignSpec(_Part):
    """A whole campaign definition, as saved."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    segment: str = Field(min_length=1, max_length=64)
    channel: Literal["email", "line", "sms", "push"]
    purpose: Literal["marketing", "transactional"] = "marketing"
    topic: str | None = Field(default=None, max_length=64)
    variants: list[Variant] = Field(min_length=1, max_length=10)
    control_percent: float = Field(default=10, ge=0, le=50)
    schedule: Schedule = Schedule()
    goal: Goal | None = None  # None: any placed order
    window_days: int = Field(default=7, ge=1, le=365)
    click_window_days: int = Field(default=7, ge=0, le=90)
    open_window_days: int = Field(default=3, ge=0, le=90)
    delivery_window_days: int = Field(default=3, ge=0, le=90)

    @model_validator(mode="after")
    def _unique_variants(self) -> CampaignSpec:
        keys = [v.key for v in self.variants]
        duplicated = sorted({k for k in keys if keys.count(k) > 1})
        if duplicated:
            raise ValueError(f"variant keys must be unique: {', '.join(duplicated)} repeated")
        return self

    def variant(self, key: str) -> Variant:
        """The variant with this key; ``InvalidInput`` when there is none."""
        for v in self.variants:
            if v.key == key:
                return v
        known = ", ".join(v.key for v in self.variants)
        raise InvalidInput(Problem("unknown_variant", f"no variant {key!r}; known: {known}",
                                   "variant"))  # fmt: skip


def campaign_schema() -> dict[str, Any]:
    """The JSON Schema of a campaign definition (for editors and the API docs)."""
    return CampaignSpec.model_json_schema()


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text = f"{text}[{part}]" if isinstance(part, int) else (f"{text}.{part}" if text else part)
    return text


def parse_campaign(data: object) -> CampaignSpec:
    """Parse a definition (a mapping); ``InvalidInput`` names each bad field's path."""
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(f"invalid_{e['type']}", e["msg"].removeprefix("Value error, "),
                    _path(e["loc"]) or None)
            for e in exc.errors(include_url=False)
        ]  # fmt: skip
        raise InvalidInput(problems) from None


def load_campaign_text(text: str, fmt: Literal["yaml", "json"] = "yaml") -> CampaignSpec:
    """Read a definition from YAML or JSON text; problems carry their path and line."""
    data = load_mapping(text, fmt, "key, name, segment, channel and variants")
    try:
        return parse_campaign(data)
    except InvalidInput as exc:
        raise InvalidInput(locate(exc.problems, text)) from None


def campaign_problems(scope: Scope, spec: CampaignSpec) -> list[Problem]:
    """Every name in ``spec`` the workspace lacks (segment, templates, topic); empty when fine."""
    problems = []
    if spec.segment not in segment_conditions(scope):
        problems.append(Problem("unknown_segment", f"no segment {spec.segment!r} in this "
                                "workspace (save it first)", "segment"))  # fmt: skip
    templates = get_templates(scope, [v.template for v in spec.variants])
    for i, v in enumerate(spec.variants):
        found = templates.get(v.template)
        where = f"variants[{i}].template"
        if found is None:
            message = f"no template {v.template!r} in this workspace (save it first)"
            problems.append(Problem("unknown_template", message, where))
        elif found.channel != spec.channel:
            message = f"template {v.template!r} is for {found.channel}, but the campaign sends "
            problems.append(Problem("template_channel", message + spec.channel, where))
    if spec.topic is not None:
        topics = {t.key for t in load_delivery_settings(scope.conn, scope.workspace_id).topics}
        if spec.topic not in topics:
            known = ", ".join(sorted(topics)) or "none yet (kizuna delivery settings)"
            message = f"no topic {spec.topic!r} in the delivery settings; known: {known}"
            problems.append(Problem("unknown_topic", message, "topic"))
    return problems


def send_instant(spec: CampaignSpec, now: dt.datetime, time_zone: str) -> dt.datetime:
    """When the campaign's messages are due (UTC); a zoneless ``at`` is in ``time_zone``."""
    schedule, zone = spec.schedule, ZoneInfo(time_zone)
    if schedule.kind == "at" and schedule.at is not None:
        at = schedule.at if schedule.at.tzinfo else schedule.at.replace(tzinfo=zone)
        return at.astimezone(dt.UTC)
    if schedule.kind == "local_time" and schedule.date and schedule.local_time:
        return dt.datetime.combine(schedule.date, schedule.local_time, tzinfo=zone).astimezone(
            dt.UTC
        )
    return now
