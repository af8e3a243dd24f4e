"""A channel that accepts every message and sends nothing.

For development workspaces without a provider, tests of the pipeline, and the
delivery benchmark's "where does the time go" run. The message log still
records every message it accepts.
"""

from __future__ import annotations

from collections.abc import Sequence

from kizuna.channels.base import ChannelSender, Handover, Outcome, Outgoing, ProviderConfig

__all__ = ["NullChannel", "open_channel"]


class NullChannel:
    """Accepts everything; the provider id is the message id."""

    provider = "null"
    max_batch = 1000

    def send(self, batch: Sequence[Outgoing]) -> list[Handover]:
        """Accept every message."""
        return [Handover(m.message_id, Outcome.SENT, str(m.message_id)) for m in batch]

    def close(self) -> None:
        """Nothing to release."""


def open_channel(config: ProviderConfig) -> ChannelSender:
    """A null channel (it takes no settings)."""
    return NullChannel()
