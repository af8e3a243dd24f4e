"""The operator's API token, until users and roles arrive (governance issue).

``KIZUNA_API_TOKEN`` or ``$KIZUNA_HOME/api.token`` (generated on first run,
mode 0600) guards every read and admin route; ingestion uses write keys instead.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

__all__ = ["TOKEN_FILE_NAME", "load_or_create_api_token", "tokens_match"]

TOKEN_FILE_NAME = "api.token"  # noqa: S105 - a file name, not a secret


def load_or_create_api_token(home: Path, env_token: str | None = None) -> str:
    """Return the API token from the environment or the token file, creating the file once."""
    if env_token:
        return env_token
    path = home / TOKEN_FILE_NAME
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    home.mkdir(parents=True, exist_ok=True)
    token = "kza_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    return token


def tokens_match(given: str, expected: str) -> bool:
    """Constant-time comparison. IMPORTANT: never compare tokens with ``==``."""
    return hmac.compare_digest(given.encode(), expected.encode())
