"""Per-provider pacing: rate limits, retry back-off and pausing after repeated errors."""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

__all__ = ["PAUSE_AFTER", "RateLimiter", "backoff", "pause_for"]

PAUSE_AFTER = 5  # consecutive batches that failed entirely before a channel pauses


def backoff(
    attempts: int, retry_after: float | None = None, jitter: float | None = None
) -> timedelta:
    """How long to wait before attempt ``attempts + 1``: exponential from 30 s, at most 1 h.

    A provider's own Retry-After wins when it asks for longer. Jitter (0.8–1.2) spreads
    retries of different batches; pass one ``jitter`` for a whole batch so messages that
    went in one request (a LINE multicast) come back together under the same retry key.
    """
    base = min(30.0 * 2 ** max(attempts - 1, 0), 3600.0)
    wait = base * (jitter if jitter is not None else random.uniform(0.8, 1.2))
    return timedelta(seconds=max(wait, retry_after or 0.0))


def pause_for(error_streak: int) -> timedelta:
    """How long a channel pauses after ``error_streak`` failed batches (1 min, doubling, ≤ 1 h)."""
    return timedelta(minutes=min(2 ** max(error_streak - PAUSE_AFTER, 0), 60))


class RateLimiter:
    """Token buckets per (workspace, channel), from the provider's ``rate_per_second``.

    In-process: with several workers, give each a share of the provider's limit (the
    per-window limit, ``rate_per_window``, is counted in the database and is global).
    """

    def __init__(self) -> None:
        self._buckets: dict[tuple[object, str], tuple[float, datetime]] = {}
        self._lock = threading.Lock()

    def take(
        self, key: tuple[object, str], settings: Mapping[str, Any], wanted: int, now: datetime
    ) -> int:
        """How many of ``wanted`` messages may go now (the rest wait a moment)."""
        rate = float(settings.get("rate_per_second") or 0)
        if rate <= 0:
            return wanted
        with self._lock:
            tokens, at = self._buckets.get(key, (rate, now))
            tokens = min(rate, tokens + (now - at).total_seconds() * rate)
            granted = min(wanted, int(tokens))
            self._buckets[key] = (tokens - granted, now)
            return granted
