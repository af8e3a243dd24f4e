"""Frequency caps and quiet hours: the workspace rules every marketing send obeys.

Pure functions over what was already sent, so the send pipeline (at send time)
and the scenario engine (to exit a run when the cap is reached) agree exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kizuna.delivery.settings import FrequencyCap, QuietHours

__all__ = ["cap_reached", "cap_window", "quiet_until"]


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
