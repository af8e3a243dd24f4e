"""Which module speaks to which provider."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from kizuna.channels.base import ChannelSender, ProviderConfig
from kizuna.errors import InvalidInput, Problem

__all__ = ["PROVIDERS", "open_channel"]

# provider name -> (module, channels it can serve). Each module has
# ``open_channel(config: ProviderConfig) -> ChannelSender``.
PROVIDERS: dict[str, tuple[str, frozenset[str]]] = {
    "smtp": ("kizuna.channels.email", frozenset({"email"})),
    "line": ("kizuna.channels.line", frozenset({"line"})),
    "twilio": ("kizuna.channels.sms", frozenset({"sms"})),
    "fcm": ("kizuna.channels.push", frozenset({"push"})),
    "webhook": ("kizuna.channels.webhook", frozenset({"webhook"})),
    "null": ("kizuna.channels.null", frozenset({"email", "line", "sms", "push", "webhook"})),
}


def open_channel(config: ProviderConfig) -> ChannelSender:
    """Connect to the provider ``config`` names (modules load only when used)."""
    entry = PROVIDERS.get(config.provider)
    if entry is None or config.channel not in entry[1]:
        raise InvalidInput(
            [
                Problem(
                    "unknown_provider",
                    f"provider {config.provider!r} cannot serve channel {config.channel!r}; "
                    f"known: {', '.join(sorted(PROVIDERS))}",
                    field="provider",
                )
            ]
        )
    module = importlib.import_module(entry[0])
    opener = cast(Callable[[ProviderConfig], ChannelSender], module.open_channel)
    return opener(config)
