"""Settings read once from the environment (``KIZUNA_*``).

``KIZUNA_HOME`` (default ``./kizuna-data``) holds the embedded SQLite store and
the generated encryption key; ``KIZUNA_DATABASE_URL`` points at PostgreSQL in
production; ``KIZUNA_SECRET_KEY`` supplies the PII key instead of the key file;
``KIZUNA_API_TOKEN`` the operator's API token instead of ``api.token``;
``KIZUNA_METRICS_REFRESH_HOURS`` (default 24, 0 = only on demand) how often
stored customer metrics (RFM, CLV) are recomputed; ``KIZUNA_SEGMENT_REFRESH_MINUTES``
(default 15, 0 = never by time) how often segments whose definitions read the clock
("no order in 90 days") are re-evaluated in full.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kizuna.errors import ConfigurationError

__all__ = ["DEFAULT_TIME_ZONE", "Settings", "load_settings"]

DEFAULT_TIME_ZONE = "Asia/Tokyo"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything Kizuna reads from its environment, resolved to concrete values."""

    home: Path
    database_url: str
    secret_key: str | None = field(default=None, repr=False)
    api_token: str | None = field(default=None, repr=False)
    time_zone: str = DEFAULT_TIME_ZONE
    host: str = "127.0.0.1"
    port: int = 8000
    metrics_refresh_hours: float = 24.0  # 0: stored customer metrics refresh only on demand
    segment_refresh_minutes: float = 15.0  # 0: segments reading the clock refresh only on demand

    @property
    def is_sqlite(self) -> bool:
        """True when the store is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment)."""
    env = dict(os.environ if environ is None else environ)
    home = Path(env.get("KIZUNA_HOME", "kizuna-data")).expanduser().resolve()
    database_url = env.get("KIZUNA_DATABASE_URL") or f"sqlite:///{home / 'kizuna.db'}"
    if database_url.startswith(("postgres://", "postgresql://")):
        # Use psycopg 3, the driver we pin, whatever scheme the operator wrote.
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
    return Settings(
        home=home,
        database_url=database_url,
        secret_key=env.get("KIZUNA_SECRET_KEY") or None,
        api_token=env.get("KIZUNA_API_TOKEN") or None,
        time_zone=env.get("KIZUNA_TIME_ZONE", DEFAULT_TIME_ZONE),
        host=env.get("KIZUNA_HOST", "127.0.0.1"),
        port=_number(env, "KIZUNA_PORT", int, "8000"),
        metrics_refresh_hours=_number(env, "KIZUNA_METRICS_REFRESH_HOURS", float, "24"),
        segment_refresh_minutes=_number(env, "KIZUNA_SEGMENT_REFRESH_MINUTES", float, "15"),
    )


def _number(env: dict[str, str], name: str, kind: type[int] | type[float], default: str) -> Any:
    """A numeric setting; a value that is not a non-negative number names the variable."""
    text = env.get(name, default)
    try:
        value = kind(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigurationError(f"{name} must be a non-negative number, not {text!r}")
    return value
