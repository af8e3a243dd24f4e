"""The one small protocol every channel module implements.

The send pipeline (``kizuna.delivery``) decides *whether* and *what* to send;
a channel only hands rendered messages to its provider and says, per message,
what the provider answered. Channels never read the store and never decide on
consent, caps or retries.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

__all__ = ["ChannelSender", "Content", "Handover", "Outcome", "Outgoing", "ProviderConfig"]


@dataclass(frozen=True, slots=True)
class Content:
    """A rendered message: what each channel needs, the rest left empty."""

    text: str = ""  # email text part; SMS, LINE and push text
    subject: str | None = None  # email subject, push title
    html: str | None = None  # email HTML part
    payload: Mapping[str, Any] = field(default_factory=dict)  # LINE objects, push data, webhook


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready for its provider, addressed in clear (decrypted just before)."""

    message_id: uuid.UUID
    idempotency_key: str
    workspace_id: uuid.UUID
    customer_id: uuid.UUID
    channel: str
    address: str  # email address, E.164 phone, LINE user id, device token or webhook URL
    purpose: str  # marketing | transactional
    content: Content
    # Extra headers the pipeline decided on (email: List-Unsubscribe, List-Unsubscribe-Post,
    # Feedback-ID); the channel adds them and, for email, signs them.
    headers: Mapping[str, str] = field(default_factory=dict)


class Outcome(StrEnum):
    """What the provider's answer means for one message."""

    SENT = "sent"  # accepted (also: already accepted before, e.g. LINE 409)
    RETRY = "retry"  # transient: try again later (429, 5xx, timeouts)
    FAILED = "failed"  # permanent for this message (4xx, rejected content)
    UNREACHABLE = "unreachable"  # the address is dead (FCM UNREGISTERED, invalid number)


@dataclass(frozen=True, slots=True)
class Handover:
    """The provider's answer for one message."""

    message_id: uuid.UUID
    outcome: Outcome
    provider_message_id: str | None = None
    detail: str | None = None  # the provider's error, verbatim
    retry_after: float | None = None  # seconds, when the provider said so


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """A workspace's settings for one channel: non-secret settings and decrypted secrets."""

    channel: str
    provider: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, Any] = field(default_factory=dict)


class ChannelSender(Protocol):
    """A provider connection that hands batches of messages over."""

    provider: str
    max_batch: int  # how many messages one call to ``send`` may take

    def send(self, batch: Sequence[Outgoing]) -> list[Handover]:
        """Hand ``batch`` to the provider; one Handover per message, in any order.

        Network errors become RETRY handovers, never exceptions, so one bad
        connection does not lose a batch's bookkeeping.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
