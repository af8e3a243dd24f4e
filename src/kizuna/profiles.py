"""The profile service shared by the API, the CLI and the Python API."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from kizuna.security.masking import mask_trait, mask_traits
from kizuna.store.customers import PII_TRAITS
from kizuna.store.database import Database
from kizuna.store.profiles import (
    Profile,
    TimelineEntry,
    find_customer_id,
    read_profile,
    read_timeline,
)
from kizuna.store.workspaces import Workspace, get_workspace

__all__ = ["customer_profile", "customer_timeline", "profile_view"]

_PERSONAL = frozenset(PII_TRAITS)
_PERSONAL_IDENTITIES = {
    "email": "email",
    "phone": "phone",
    "line_user_id": "line_user_id",
    "device_token": "device_token",
}


def profile_view(profile: Profile, *, reveal: bool) -> dict[str, Any]:
    """A plain dict of the profile; personal values masked unless ``reveal``."""
    view = asdict(profile)
    view["masked"] = not reveal
    if reveal:
        return view
    view["traits"] = mask_traits(profile.traits, _PERSONAL)
    view["identities"] = {
        kind: [mask_trait(_PERSONAL_IDENTITIES[kind], v) or "" for v in values]
        if kind in _PERSONAL_IDENTITIES
        else values
        for kind, values in profile.identities.items()
    }
    return view


def customer_profile(db: Database, workspace: str, ref: str) -> tuple[Workspace, Profile]:
    """Find a customer by id, shop id, email or phone and read their profile."""
    with db.read() as conn:
        ws = get_workspace(conn, workspace)
        customer_id = find_customer_id(conn, db.cipher, ws.workspace_id, ref)
        return ws, read_profile(conn, db.cipher, ws.workspace_id, customer_id)


def customer_timeline(
    db: Database, workspace: str, ref: str, limit: int = 100
) -> tuple[Workspace, uuid.UUID, list[TimelineEntry]]:
    """The workspace, the customer's id and their events, orders and consents, newest first."""
    with db.read() as conn:
        ws = get_workspace(conn, workspace)
        customer_id = find_customer_id(conn, db.cipher, ws.workspace_id, ref)
        return ws, customer_id, read_timeline(conn, ws.workspace_id, customer_id, limit)
