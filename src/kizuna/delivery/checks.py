"""The send-time gate: may this message go now, later, or never — and why.

Checked when the message is about to leave, not when it was queued, so an
opt-out, a bounce or a cap reached in between always wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kizuna.delivery.rules import cap_frees_at, cap_reached, in_global_control, quiet_until
from kizuna.delivery.settings import DeliverySettings
from kizuna.store.addresses import Address
from kizuna.store.messages import MessageRecord
from kizuna.store.send_gates import GateFacts

__all__ = ["Verdict", "judge"]

_NEEDS_ADDRESS = frozenset({"email", "sms", "line", "push"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """``send``, ``skip`` (never; ``reason`` names the rule) or ``defer`` (to ``not_before``)."""

    action: str
    reason: str | None = None
    not_before: datetime | None = None


SEND = Verdict("send")


def judge(
    message: MessageRecord,
    address: Address | None,
    facts: GateFacts,
    settings: DeliverySettings,
    *,
    environment: str,
    time_zone: str,
    sent: list[tuple[str, datetime]],
    now: datetime,
) -> Verdict:
    """Apply every rule to one message, in the order a marketer would explain them."""
    channel = message.channel
    if message.source_kind == "test":
        # Test sends go to staff seed addresses only, never to the customer.
        ok = address is not None and (channel, address.hash) in facts.seeds
        return SEND if ok else Verdict("skip", "not_a_seed_address")
    if channel in _NEEDS_ADDRESS and address is None:
        return Verdict("skip", "no_address")
    if address is not None and address.hash in facts.suppressed:
        return Verdict("skip", f"suppressed:{facts.suppressed[address.hash]}")
    if environment == "development" and (
        address is None or (channel, address.hash) not in facts.seeds
    ):
        return Verdict("skip", "development_workspace")
    if message.purpose != "marketing" or channel == "webhook":
        return SEND
    if message.source_kind in ("scenario", "campaign") and in_global_control(
        message.customer_id, settings
    ):  # a safety net: scenarios and campaigns hold these customers out already
        return Verdict("skip", "global_control")
    status = facts.consent.get((message.customer_id, channel))
    if status != "opted_in":
        return Verdict("skip", "opted_out" if status == "opted_out" else "no_consent")
    if message.topic and message.topic in facts.left_topics.get(message.customer_id, ()):
        return Verdict("skip", f"topic_unsubscribed:{message.topic}")
    cap = cap_reached(settings.frequency_caps, channel, sent, now)
    if cap is not None:
        reason = f"frequency_cap:{cap.max_messages}/{cap.days:g}d:{cap.channel}"
        if message.params.get("on_cap") == "defer":  # the scenario said: wait for room
            return Verdict("defer", reason, cap_frees_at(cap, sent, now))
        return Verdict("skip", reason)
    until = quiet_until(settings.quiet_hours, channel, now, time_zone)
    if until is not None:
        return Verdict("defer", "quiet_hours", until)
    return SEND
