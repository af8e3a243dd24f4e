"""Local servers that speak the providers' documented HTTP protocols, for channel tests.

Each module runs one provider (``line_server``, ``twilio_server``, ``fcm_server``,
``webhook_server``) on a free loopback port, validates requests the way the
real API does, records what it accepted, and can be told to answer errors for
chosen recipients. ``outgoing`` builds the messages the channels take.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from kizuna.channels.base import Content, Outgoing

__all__ = ["WORKSPACE", "outgoing"]

WORKSPACE = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


def outgoing(
    address: str,
    *,
    channel: str,
    text: str = "",
    subject: str | None = None,
    payload: Mapping[str, Any] | None = None,
    key: str | None = None,
    purpose: str = "marketing",
    headers: Mapping[str, str] | None = None,
) -> Outgoing:
    """One message ready for a channel, with fresh ids unless ``key`` is given."""
    message_id = uuid.uuid4()
    return Outgoing(
        message_id=message_id,
        idempotency_key=key or f"test:{message_id}",
        workspace_id=WORKSPACE,
        customer_id=uuid.uuid4(),
        channel=channel,
        address=address,
        purpose=purpose,
        content=Content(text=text, subject=subject, payload=dict(payload or {})),
        headers=dict(headers or {}),
    )
