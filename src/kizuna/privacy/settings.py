"""A workspace's privacy settings, kept in ``workspaces.settings['privacy']``.

``evidence_retention_months``: how long consent evidence is kept after the last
marketing send to the address (or after the consent ended, whichever is later).
Japan's Specified Electronic Mail Act asks for at least one month, so one is
the floor and the default; a shop may choose longer.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Connection

from kizuna.errors import InvalidInput, NotFound, Problem
from kizuna.store.tables import workspaces

__all__ = [
    "PrivacySettings",
    "load_privacy_settings",
    "parse_privacy_settings",
    "save_privacy_settings",
]


class PrivacySettings(BaseModel):
    """What a workspace decided about keeping consent evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    evidence_retention_months: int = Field(default=1, ge=1, le=120)


def parse_privacy_settings(data: object) -> PrivacySettings:
    """Validate privacy settings; InvalidInput names each bad field."""
    try:
        return PrivacySettings.model_validate(data or {})
    except ValidationError as exc:
        problems = [
            Problem("invalid_setting", str(e["msg"]), ".".join(str(p) for p in e["loc"]))
            for e in exc.errors()
        ]
        raise InvalidInput(problems) from exc


def _stored(conn: Connection, workspace_id: uuid.UUID) -> dict[str, object]:
    row = conn.execute(
        sa.select(workspaces.c.settings).where(workspaces.c.workspace_id == workspace_id)
    ).first()
    if row is None:
        raise NotFound(f"no workspace {workspace_id}")
    return dict(row.settings or {})


def load_privacy_settings(conn: Connection, workspace_id: uuid.UUID) -> PrivacySettings:
    """A workspace's privacy settings (defaults where it set none)."""
    return parse_privacy_settings(_stored(conn, workspace_id).get("privacy"))


def save_privacy_settings(
    conn: Connection, workspace_id: uuid.UUID, settings: PrivacySettings
) -> None:
    """Replace a workspace's privacy settings (its other settings stay)."""
    merged = _stored(conn, workspace_id)
    merged["privacy"] = settings.model_dump(mode="json")
    conn.execute(
        workspaces.update().where(workspaces.c.workspace_id == workspace_id).values(settings=merged)
    )
