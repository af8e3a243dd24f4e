"""Provider settings and secrets, validated when a channel opens (no network needed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kizuna.errors import InvalidInput, Problem

__all__ = ["parse_settings", "require_secret"]

_Model = TypeVar("_Model", bound=BaseModel)


def parse_settings(model: type[_Model], data: object) -> _Model:
    """Validate a provider's settings; InvalidInput names each bad field."""
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise InvalidInput(
            [
                Problem(
                    "invalid_provider_setting",
                    str(e["msg"]),
                    field=".".join(["settings", *(str(p) for p in e["loc"])]),
                )
                for e in exc.errors()
            ]
        ) from exc


def require_secret(secrets: Mapping[str, Any], name: str) -> str:
    """A non-empty string secret; InvalidInput when it is missing."""
    value = secrets.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidInput(
            Problem("missing_provider_secret", f"secret {name!r} is required", f"secrets.{name}")
        )
    return value
