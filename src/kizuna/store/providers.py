"""Which provider serves each channel of a workspace, with its settings and encrypted secrets."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.channels.base import ProviderConfig
from kizuna.channels.registry import open_channel
from kizuna.errors import NotFound
from kizuna.security.pii import PiiCipher
from kizuna.store.scope import Scope
from kizuna.store.tables import channel_providers
from kizuna.store.upsert import upsert

__all__ = [
    "ProviderState",
    "configure_provider",
    "list_providers",
    "load_provider",
    "load_provider_state",
    "record_provider_health",
]


def configure_provider(
    scope: Scope,
    channel: str,
    provider: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, Any] | None = None,
) -> None:
    """Set the provider of a channel; secrets (passwords, tokens, keys) are stored encrypted."""
    # Opening a channel checks its settings and secrets (no network call): bad ones are
    # refused when saved, naming the field, not at send time.
    open_channel(ProviderConfig(channel, provider, dict(settings), dict(secrets or {}))).close()
    row = {
        "workspace_id": scope.workspace_id, "channel": channel, "provider": provider,
        "settings": dict(settings),
        "secrets_enc": scope.cipher.encrypt(orjson.dumps(dict(secrets)).decode())
        if secrets else None,
        "paused_until": None, "error_streak": 0, "updated_at": scope.now,
    }  # fmt: skip
    upsert(scope.conn, channel_providers, [row], ["workspace_id", "channel"])


def _config(cipher: PiiCipher, row: sa.Row[Any]) -> ProviderConfig:
    secrets = orjson.loads(cipher.decrypt(row.secrets_enc)) if row.secrets_enc else {}
    return ProviderConfig(row.channel, row.provider, dict(row.settings), secrets)


def load_provider(scope: Scope, channel: str) -> ProviderConfig:
    """The decrypted provider configuration of one channel; NotFound when none is set."""
    row = scope.conn.execute(
        sa.select(channel_providers).where(
            channel_providers.c.workspace_id == scope.workspace_id,
            channel_providers.c.channel == channel,
        )
    ).first()
    if row is None:
        raise NotFound(f"no provider configured for {channel}")
    return _config(scope.cipher, row)


@dataclass(frozen=True, slots=True)
class ProviderState:
    """A channel's provider with its health, as the send pipeline needs it."""

    config: ProviderConfig
    updated_at: datetime
    paused_until: datetime | None
    error_streak: int


def load_provider_state(scope: Scope, channel: str) -> ProviderState | None:
    """The provider of ``channel`` with its health; None when the channel has none."""
    row = scope.conn.execute(
        sa.select(channel_providers).where(
            channel_providers.c.workspace_id == scope.workspace_id,
            channel_providers.c.channel == channel,
        )
    ).first()
    if row is None:
        return None
    return ProviderState(
        _config(scope.cipher, row), row.updated_at, row.paused_until, row.error_streak
    )


def list_providers(conn: Connection, workspace_id: uuid.UUID) -> list[dict[str, Any]]:
    """Each configured channel without its secrets: provider, settings, health."""
    rows = conn.execute(
        sa.select(
            channel_providers.c.channel,
            channel_providers.c.provider,
            channel_providers.c.settings,
            channel_providers.c.paused_until,
            channel_providers.c.error_streak,
        )
        .where(channel_providers.c.workspace_id == workspace_id)
        .order_by(channel_providers.c.channel)
    )
    return [dict(r._mapping) for r in rows]


def record_provider_health(
    conn: Connection,
    workspace_id: uuid.UUID,
    channel: str,
    errors: int,
    paused_until: datetime | None,
) -> None:
    """Store a channel's error streak and pause (0 errors clears the pause)."""
    conn.execute(
        channel_providers.update()
        .where(
            channel_providers.c.workspace_id == workspace_id,
            channel_providers.c.channel == channel,
        )
        .values(error_streak=errors, paused_until=paused_until)
    )
