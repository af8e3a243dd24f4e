"""A workspace's delivery rules, kept in ``workspaces.settings['delivery']``.

Shared by the send pipeline and the scenario engine: frequency caps count
across every scenario and campaign, quiet hours apply to every marketing send.
"""

from __future__ import annotations

import uuid
from datetime import time
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Connection

from kizuna.errors import InvalidInput, NotFound, Problem
from kizuna.store.tables import workspaces

__all__ = [
    "DeliverySettings",
    "FrequencyCap",
    "QuietHours",
    "Sender",
    "Topic",
    "load_delivery_settings",
    "parse_delivery_settings",
    "save_delivery_settings",
]

CapChannel = Literal["any", "email", "line", "sms", "push", "webhook"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FrequencyCap(_Strict):
    """At most ``max_messages`` marketing messages per ``days`` on a channel (or any)."""

    channel: CapChannel = "any"
    max_messages: int = Field(gt=0)
    days: float = Field(gt=0)


class QuietHours(_Strict):
    """No marketing sends between ``start`` and ``end`` in the customer's local time."""

    start: time = time(21, 0)
    end: time = time(9, 0)
    channels: list[CapChannel] = ["any"]


class Sender(_Strict):
    """Who sends: the footer Japan's Specified Electronic Mail Act requires on marketing mail."""

    name: str = ""
    postal_address: str = ""
    contact: str = ""  # an email address or URL for enquiries
    unsubscribe_mailto: str = ""  # mailto target of List-Unsubscribe, when the shop has one


class Topic(_Strict):
    """A subject customers can subscribe to or leave in the preference centre."""

    key: str = Field(pattern=r"^[a-z0-9_][a-z0-9_-]{0,63}$")
    name_ja: str
    name_en: str


class DeliverySettings(_Strict):
    """Everything the pipeline reads about a workspace besides its providers."""

    public_url: str = "http://127.0.0.1:8000"  # where tracking and unsubscribe links point
    sender: Sender = Sender()
    frequency_caps: list[FrequencyCap] = []
    quiet_hours: QuietHours | None = None
    topics: list[Topic] = []
    soft_bounce_limit: int = Field(default=3, gt=0)  # soft bounces before an address is suppressed
    max_attempts: int = Field(default=6, gt=0)  # transient failures before a message is dead
    track_opens: bool = True
    track_clicks: bool = True
    # A share of customers kept from all marketing (scenarios and campaigns), the
    # baseline every send is measured against; drawn by a stable hash of the customer.
    global_control_percent: float = Field(default=0, ge=0, le=50)


def parse_delivery_settings(data: object) -> DeliverySettings:
    """Validate delivery settings; InvalidInput names each bad field."""
    try:
        return DeliverySettings.model_validate(data or {})
    except ValidationError as exc:
        raise InvalidInput(
            [
                Problem(
                    "invalid_setting",
                    str(e["msg"]),
                    field=".".join(str(p) for p in e["loc"]),
                )
                for e in exc.errors()
            ]
        ) from exc


def load_delivery_settings(conn: Connection, workspace_id: uuid.UUID) -> DeliverySettings:
    """A workspace's delivery settings (defaults where it set none)."""
    row = conn.execute(
        sa.select(workspaces.c.settings).where(workspaces.c.workspace_id == workspace_id)
    ).first()
    if row is None:
        raise NotFound(f"no workspace {workspace_id}")
    return parse_delivery_settings((row.settings or {}).get("delivery"))


def save_delivery_settings(
    conn: Connection, workspace_id: uuid.UUID, settings: DeliverySettings
) -> None:
    """Replace a workspace's delivery settings (other settings stay)."""
    row = conn.execute(
        sa.select(workspaces.c.settings).where(workspaces.c.workspace_id == workspace_id)
    ).first()
    if row is None:
        raise NotFound(f"no workspace {workspace_id}")
    merged = dict(row.settings or {})
    merged["delivery"] = settings.model_dump(mode="json")
    conn.execute(
        workspaces.update().where(workspaces.c.workspace_id == workspace_id).values(settings=merged)
    )
