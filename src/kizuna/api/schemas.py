"""Response models of the read API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

__all__ = ["ProfileOut", "TimelineEntryOut", "TimelineOut"]


class ProfileOut(BaseModel):
    """A customer profile; personal traits masked unless ``reveal`` was asked and allowed."""

    customer_id: uuid.UUID
    shop_customer_id: str | None
    traits: dict[str, Any]
    attributes: dict[str, Any]
    identities: dict[str, list[str]]
    consents: dict[str, dict[str, Any]]
    first_seen_at: datetime
    last_seen_at: datetime
    order_count: int
    revenue: float
    merged_from: list[uuid.UUID]
    masked: bool


class TimelineEntryOut(BaseModel):
    """One entry of a customer's timeline."""

    at: datetime
    kind: str
    title: str
    detail: dict[str, Any]


class TimelineOut(BaseModel):
    """A customer's timeline, newest first, times in UTC and in the workspace's zone."""

    customer_id: uuid.UUID
    time_zone: str
    entries: list[TimelineEntryOut]
