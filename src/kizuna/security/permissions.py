"""Permissions, roles and what each role may do in a workspace.

The set is small and fixed; every API route declares exactly one of them (or says
it is public), and the role-matrix test walks the app to hold that true.

===================  =====================================================================
permission           allows
===================  =====================================================================
workspace.admin      members and their roles, the IP allow-list
audit.read           the operation log
privacy.manage       data-subject requests (disclose, correct, stop use, erase)
customers.read       customer profiles and timelines, personal data masked
personal_data.read   personal data in clear: reveals, clear exports and previews (logged)
segments.read        segments, counts, 4R reports, masked previews and exports
segments.write       save, validate and archive segments
scenarios.read       scenarios, versions and per-node statistics
scenarios.write      save and validate drafts, simulate them on history
scenarios.publish    publish, pause, resume and archive scenarios
campaigns.read       campaigns and their results
campaigns.write      create and edit campaigns
campaigns.publish    approve, schedule and cancel campaigns
templates.read       templates, blocks, masked previews
templates.write      save, validate and archive templates and blocks
delivery.read        delivery rules, providers (never their secrets), seeds, the message log
delivery.admin       change rules, providers and seeds; apply bounce and complaint feedback
messages.send        queue messages to customers (transactional sends from a shop)
messages.test        test sends to the seed list
analytics.read       analyses and plots
analytics.refresh    recompute stored customer metrics (RFM, CLV)
===================  =====================================================================

Ingestion is not a permission a person holds: only write keys ingest, and write
keys can do nothing else.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "PERMISSIONS",
    "PERSONAL_DATA",
    "ROLES",
    "ROLE_PERMISSIONS",
    "permissions_of",
]

PERSONAL_DATA: Final = "personal_data.read"

PERMISSIONS: Final = frozenset(
    {
        "workspace.admin",
        "audit.read",
        "privacy.manage",
        "customers.read",
        PERSONAL_DATA,
        "segments.read",
        "segments.write",
        "scenarios.read",
        "scenarios.write",
        "scenarios.publish",
        "campaigns.read",
        "campaigns.write",
        "campaigns.publish",
        "templates.read",
        "templates.write",
        "delivery.read",
        "delivery.admin",
        "messages.send",
        "messages.test",
        "analytics.read",
        "analytics.refresh",
    }
)

ROLES: Final = ("administrator", "scenario_designer", "content_designer", "analyst")

_READS = frozenset(p for p in PERMISSIONS if p.endswith(".read")) - {
    PERSONAL_DATA,
    "audit.read",
}

ROLE_PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    # Personal data in clear is never part of a role: it is granted per member on top.
    "administrator": PERMISSIONS - {PERSONAL_DATA},
    "scenario_designer": _READS
    | {
        "segments.write",
        "scenarios.write",
        "scenarios.publish",
        "campaigns.write",
        "campaigns.publish",
        "messages.test",
        "analytics.refresh",
    },
    "content_designer": frozenset(
        {"templates.read", "templates.write", "delivery.read", "messages.test"}
    ),
    "analyst": _READS | {"analytics.refresh"},
}


def permissions_of(role: str, *, personal_data: bool) -> frozenset[str]:
    """What a member with ``role`` may do; ``personal_data`` adds ``personal_data.read``.

    Raises ``KeyError`` for an unknown role (roles are checked when granted).
    """
    granted = ROLE_PERMISSIONS[role]
    return granted | {PERSONAL_DATA} if personal_data else granted
