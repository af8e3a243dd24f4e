"""Composition root: builds the database, the HTTP app and workers. Nothing connects at import."""

from __future__ import annotations

from kizuna.clock import Clock, SystemClock
from kizuna.config import Settings, load_settings
from kizuna.security.keys import KeyLocation, open_cipher
from kizuna.store.database import Database
from kizuna.store.engine import make_engine
from kizuna.store.migrate import upgrade

__all__ = ["open_database"]


def open_database(
    settings: Settings | None = None, *, clock: Clock | None = None, migrate: bool = True
) -> Database:
    """Open the configured store (creating ``KIZUNA_HOME`` and the key on first run)."""
    settings = settings or load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    # The whole keyring: current key, keys being rotated out, the fixed lookup key.
    cipher = open_cipher(KeyLocation.from_settings(settings))
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    return Database(engine=engine, cipher=cipher, clock=clock or SystemClock())
