"""The record of data-subject requests (APPI): who asked what about which customer, and when.

Rows hold no personal data: the customer is named by Kizuna's id only, the
details by field names and row counts, never values. The id is kept after an
erasure on purpose: nothing links it to a person any more (identities, hashes
and ciphertexts are gone), and it is what lets the retention purge and a later
audit know that the record was erased.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.tables import metadata
from kizuna.store.types import JSONDoc, UTCDateTime

__all__ = ["REQUEST_KINDS", "privacy_requests"]

REQUEST_KINDS = ("disclose", "correct", "stop", "erase")
_KIND_CHECK = "kind in (" + ", ".join(f"'{k}'" for k in REQUEST_KINDS) + ")"


def _doc(meaning: str, updated: str, *, personal: bool = False) -> dict[str, object]:
    # Read by the data dictionary generator (``kizuna docs data``).
    return {"meaning": meaning, "updated": updated, "personal": personal}


privacy_requests = sa.Table(
    "privacy_requests",
    metadata,
    sa.Column("workspace_id", sa.Uuid, primary_key=True, info=_doc("workspace", "once")),
    sa.Column("request_id", sa.Uuid, primary_key=True, info=_doc("request id", "once")),
    sa.Column(
        "customer_id",
        sa.Uuid,
        info=_doc("the customer the request is about (Kizuna id only)", "once"),
    ),
    sa.Column(
        "kind",
        sa.String(16),
        nullable=False,
        info=_doc("disclose | correct | stop (use) | erase", "once"),
    ),
    sa.Column(
        "requested_by",
        sa.String(200),
        nullable=False,
        info=_doc("the operator who carried it out (user, token or OS account)", "once"),
    ),
    sa.Column("origin", sa.String(200), info=_doc("from where: IP address or cli", "once")),
    sa.Column("status", sa.String(16), nullable=False, info=_doc("completed", "on completion")),
    sa.Column("created_at", UTCDateTime, nullable=False, info=_doc("when received", "once")),
    sa.Column("completed_at", UTCDateTime, info=_doc("when carried out", "on completion")),
    sa.Column(
        "details",
        JSONDoc,
        nullable=False,
        info=_doc("what was done: field names, rows per table (never values)", "on completion"),
    ),
    sa.CheckConstraint(_KIND_CHECK, name="kind"),
    sa.Index(None, "workspace_id", "customer_id"),
    info={
        "area": "governance",
        "meaning": "data-subject requests (APPI) carried out: disclose, correct, stop use, "
        "erase; no personal data, the customer by Kizuna id only",
        "updated": "one row per request, by `kizuna privacy …` and /api/…/privacy/…; "
        "never changed afterwards",
    },
)
