"""Frequency caps and quiet hours: the workspace rules every marketing send obeys.

Pure functions over what was already sent, so the send pipeline (at send time)
and the scenario engine (to exit a run when the cap is reached) agree exactly.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kizuna.delivery.settings import DeliverySettings, FrequencyCap, QuietHours
from kizuna.domain.buckets import bucket_of

__all__ = [
    "GLOBAL_CONTROL_SALT",
    "cap_frees_at",
    "cap_reached",
    "cap_window",
    "in_global_control",
    "quiet_until",
]

GLOBAL_CONTROL_SALT = "kizuna:global-control"


def _applies(rule_channels: Sequence[str], channel: str) -> bool:
    return "any" in rule_channels or channel in rule_channels


def cap_window(caps: Sequence[FrequencyCap]) -> timedelta:
    """How far back sends must be read to judge every cap."""
    return timedelta(days=max((c.days for c in caps), default=0))


def cap_reached(
    caps: Sequence[FrequencyCap],
    channel: str,
    sent: Sequence[tuple[str, datetime]],
    now: datetime,
) -> FrequencyCap | None:
    """The first cap one more ``channel`` message would break, given ``sent`` (channel, at)."""
    for cap in caps:
        if not _applies([cap.channel], channel):
            continue
        since = now - timedelta(days=cap.days)
        count = sum(1 for ch, at in sent if at >= since and _applies([cap.channel], ch))
        if count >= cap.max_messages:
            return cap
    return None


def cap_frees_at(
    cap: FrequencyCap, sent: Sequence[tuple[str, datetime]], now: datetime
) -> datetime:
    """When enough counted sends leave ``cap``'s window for one more message to fit."""
    since = now - timedelta(days=cap.days)
    counted = sorted(at for ch, at in sent if at >= since and _applies([cap.channel], ch))
    # One more fits once all but max_messages - 1 of them are older than the window.
    oldest_to_leave = counted[len(counted) - cap.max_messages]
    return oldest_to_leave + timedelta(days=cap.days)


def quiet_until(
    quiet: QuietHours | None, channel: str, now: datetime, time_zone: str
) -> datetime | None:
    """When the quiet hours around ``now`` end (UTC), or None when sending is allowed now."""
    if quiet is None or not _applies(quiet.channels, channel) or quiet.start == quiet.end:
        return None
    local = now.astimezone(ZoneInfo(time_zone))
    at = local.time().replace(tzinfo=None)
    overnight = quiet.start > quiet.end  # e.g. 21:00–09:00
    inside = (at >= quiet.start or at < quiet.end) if overnight else quiet.start <= at < quiet.end
    if not inside:
        return None
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(now.tzinfo)


def in_global_control(customer_id: uuid.UUID, settings: DeliverySettings) -> bool:
    """Whether the customer is in the workspace-wide control group (no marketing at all)."""
    share = settings.global_control_percent
    return share > 0 and bucket_of(customer_id, GLOBAL_CONTROL_SALT, 10_000) < share * 100
