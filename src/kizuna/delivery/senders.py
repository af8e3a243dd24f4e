"""Open provider connections, kept between drains and reopened when settings change."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime

from kizuna.channels.base import ChannelSender
from kizuna.channels.registry import open_channel
from kizuna.store.providers import ProviderState

__all__ = ["SenderPool"]


class SenderPool:
    """One sender per (workspace, channel), replaced when its provider settings change."""

    def __init__(self) -> None:
        self._open: dict[tuple[uuid.UUID, str], tuple[datetime, ChannelSender]] = {}
        self._lock = threading.Lock()

    def sender(self, workspace_id: uuid.UUID, state: ProviderState) -> ChannelSender:
        """The open sender for this provider configuration."""
        key = (workspace_id, state.config.channel)
        with self._lock:
            found = self._open.get(key)
            if found is not None and found[0] == state.updated_at:
                return found[1]
            if found is not None:
                found[1].close()
            sender = open_channel(state.config)
            self._open[key] = (state.updated_at, sender)
            return sender

    def close(self) -> None:
        """Close every open sender."""
        with self._lock:
            for _, sender in self._open.values():
                sender.close()
            self._open.clear()
