"""One chunk of demo customers: their latent traits, ids and the row lists being built."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from kizuna.demo.behaviour import Calendar
from kizuna.demo.catalogue import Catalogue
from kizuna.security.pii import PiiCipher

__all__ = ["ANONYMOUS", "BUYER", "REGISTERED", "Chunk", "demo_uuid"]

ANONYMOUS, REGISTERED, BUYER = 0, 1, 2
_MASK48 = (1 << 48) - 1
_MASK62 = (1 << 62) - 1


def demo_uuid(ms: int, tag: int, serial: int) -> uuid.UUID:
    """A deterministic id in the version-7 layout that :func:`kizuna.store.types.new_id` uses."""
    value = (ms & _MASK48) << 80 | 0x7 << 76 | (tag & 0xFFF) << 64 | 0b10 << 62
    return uuid.UUID(int=value | (serial & _MASK62))


@dataclass(slots=True)
class Chunk:
    """Everything known about one chunk's customers while its rows are generated."""

    workspace_id: uuid.UUID
    now: datetime  # the time rows are "recorded" (updated_at, recorded_at)
    cipher: PiiCipher
    rng: np.random.Generator
    cal: Calendar
    catalogue: Catalogue
    seed: int
    number: int  # which chunk, from 0
    first: int  # global index of the chunk's first customer
    first_day: np.ndarray  # first contact (and, for buyers, first purchase), days since start
    kind: np.ndarray  # ANONYMOUS, REGISTERED or BUYER
    favourite: np.ndarray  # preferred category index
    customer_ids: list[uuid.UUID] = field(default_factory=list)
    user_ids: list[str | None] = field(default_factory=list)
    cookies: list[list[str]] = field(default_factory=list)
    seen_first: list[float] = field(default_factory=list)
    seen_last: list[float] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _serial: int = 0

    def __post_init__(self) -> None:
        start_ms = int(self.cal.start.timestamp() * 1000)
        self.customer_ids = [
            demo_uuid(start_ms + int(d * 86_400_000), self.seed, self.first + i)
            for i, d in enumerate(self.first_day.tolist())
        ]
        self.seen_first = self.first_day.tolist()
        self.seen_last = self.first_day.tolist()

    @property
    def size(self) -> int:
        """How many customers the chunk holds."""
        return len(self.first_day)

    def table(self, name: str) -> list[dict[str, Any]]:
        """The row list for table ``name``."""
        return self.rows.setdefault(name, [])

    def new_id(self, at: datetime) -> uuid.UUID:
        """A fresh deterministic id for a row created at ``at``."""
        self._serial += 1
        serial = 1 << 61 | self.number << 32 | self._serial
        return demo_uuid(int(at.timestamp() * 1000), self.seed, serial)

    def seen(self, index: int, day: float) -> None:
        """Widen a customer's first/last seen span to include ``day``."""
        if day < self.seen_first[index]:
            self.seen_first[index] = day
        elif day > self.seen_last[index]:
            self.seen_last[index] = day
