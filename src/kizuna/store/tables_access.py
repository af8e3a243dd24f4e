"""Tables of the console's users: accounts, workspace roles, sessions, API tokens, allow-lists.

Staff accounts are not customers: their e-mail address is stored lower-cased in
clear (it is the sign-in name and must be unique), and masked wherever it is
logged. Secrets never rest in clear: passwords as argon2id hashes, session ids,
CSRF tokens and API tokens as SHA-256 digests (each is 256 random bits, so a
plain digest cannot be reversed by guessing).

Users are global (one account may work in several workspaces); what they may do
is per workspace, in ``memberships``.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.security.permissions import ROLES
from kizuna.store.tables import metadata
from kizuna.store.types import UTCDateTime

__all__ = ["api_tokens", "ip_allowlists", "memberships", "sessions", "users"]

_ROLE_CHECK = "role in (" + ", ".join(f"'{r}'" for r in ROLES) + ")"


def _doc(
    meaning: str, updated: str, *, personal: bool = False, protection: str | None = None
) -> dict[str, object]:
    # Read by the data dictionary generator (``kizuna docs data``, kizuna/docs/dictionary.py).
    info: dict[str, object] = {"meaning": meaning, "updated": updated, "personal": personal}
    if protection is not None:
        info["protection"] = protection
    return info


def _table(meaning: str, updated: str) -> dict[str, object]:
    return {"area": "governance", "meaning": meaning, "updated": updated}


users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.Uuid, primary_key=True, info=_doc("account id", "at creation")),
    sa.Column(
        "email",
        sa.String(320),
        nullable=False,
        unique=True,
        info=_doc(
            "sign-in name, trimmed and lower-cased (staff, not customers; masked in logs)",
            "at creation",
            personal=True,
            protection="masked",
        ),
    ),
    sa.Column(
        "display_name",
        sa.String(200),
        nullable=False,
        info=_doc("name shown in the console", "by an administrator", personal=True),
    ),
    # IMPORTANT: an argon2id hash (PHC string); NULL means the account signs in with tokens only.
    sa.Column(
        "password_hash",
        sa.String(200),
        info=_doc("argon2id hash of the password", "on password change or rehash"),
    ),
    sa.Column(
        "failed_attempts",
        sa.Integer,
        nullable=False,
        default=0,
        info=_doc("failed sign-ins in a row", "on each sign-in"),
    ),
    sa.Column(
        "locked_until",
        UTCDateTime,
        info=_doc("sign-in refused until then after repeated failures", "on lock-out"),
    ),
    sa.Column("created_at", UTCDateTime, nullable=False, info=_doc("when created", "once")),
    sa.Column(
        "disabled_at",
        UTCDateTime,
        info=_doc("set when the account may no longer sign in", "by an administrator"),
    ),
    info=_table(
        "console and API accounts (staff, not customers)",
        "by administrators (CLI or API); on each sign-in",
    ),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("workspace_id", sa.Uuid, primary_key=True, info=_doc("workspace", "on grant")),
    sa.Column("user_id", sa.Uuid, primary_key=True, info=_doc("account", "on grant")),
    sa.Column(
        "role",
        sa.String(32),
        nullable=False,
        info=_doc("administrator | scenario_designer | content_designer | analyst", "on grant"),
    ),
    sa.Column(
        "personal_data",
        sa.Boolean,
        nullable=False,
        default=False,
        info=_doc("may see and export customers' personal data in clear", "on grant"),
    ),
    sa.Column("created_at", UTCDateTime, nullable=False, info=_doc("first granted", "once")),
    sa.Column("updated_at", UTCDateTime, nullable=False, info=_doc("last changed", "on grant")),
    sa.CheckConstraint(_ROLE_CHECK, name="role"),
    sa.Index(None, "user_id"),
    info=_table(
        "each account's role per workspace, and whether it sees personal data in clear",
        "when an administrator grants or revokes a role",
    ),
)

sessions = sa.Table(
    "sessions",
    metadata,
    # IMPORTANT: only the SHA-256 of the session cookie and of the CSRF token are stored.
    sa.Column(
        "session_hash",
        sa.LargeBinary(32),
        primary_key=True,
        info=_doc("SHA-256 of the session cookie's value", "at sign-in"),
    ),
    sa.Column("user_id", sa.Uuid, nullable=False, index=True, info=_doc("account", "at sign-in")),
    sa.Column(
        "csrf_hash",
        sa.LargeBinary(32),
        nullable=False,
        info=_doc("SHA-256 of the session's CSRF token", "at sign-in"),
    ),
    sa.Column("created_at", UTCDateTime, nullable=False, info=_doc("signed in at", "once")),
    sa.Column(
        "expires_at",
        UTCDateTime,
        nullable=False,
        info=_doc("the session ends then at the latest", "at sign-in"),
    ),
    sa.Column(
        "last_seen_at",
        UTCDateTime,
        nullable=False,
        info=_doc("last request (to the minute); idle sessions end", "on use"),
    ),
    sa.Column(
        "ip", sa.String(64), info=_doc("address signed in from", "at sign-in", personal=True)
    ),
    info=_table(
        "signed-in console sessions", "at sign-in and sign-out; last use at most once a minute"
    ),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.Uuid, primary_key=True, info=_doc("token id", "at creation")),
    sa.Column(
        "user_id",
        sa.Uuid,
        nullable=False,
        index=True,
        info=_doc("the account the token acts as", "at creation"),
    ),
    sa.Column("name", sa.String(200), nullable=False, info=_doc("what it is for", "at creation")),
    sa.Column(
        "prefix",
        sa.String(16),
        nullable=False,
        info=_doc("first characters, to recognize a token in lists", "at creation"),
    ),
    # IMPORTANT: only a SHA-256 of the token is stored; the token is shown once at creation.
    sa.Column(
        "token_hash",
        sa.LargeBinary(32),
        nullable=False,
        unique=True,
        info=_doc("SHA-256 of the token", "at creation"),
    ),
    sa.Column("created_at", UTCDateTime, nullable=False, info=_doc("created at", "once")),
    sa.Column("last_used_at", UTCDateTime, info=_doc("last use (to the minute)", "on use")),
    sa.Column("revoked_at", UTCDateTime, info=_doc("no longer accepted from then", "on revoke")),
    info=_table(
        "personal API tokens, acting as their account",
        "on create and revoke; last use at most once a minute",
    ),
)

ip_allowlists = sa.Table(
    "ip_allowlists",
    metadata,
    sa.Column("workspace_id", sa.Uuid, primary_key=True, info=_doc("workspace", "on allow")),
    sa.Column(
        "cidr",
        sa.String(64),
        primary_key=True,
        info=_doc(
            "network allowed to use the console and admin API (none: all)", "on allow / deny"
        ),
    ),
    sa.Column("note", sa.String(200), info=_doc("why it is allowed", "on allow")),
    sa.Column("created_at", UTCDateTime, nullable=False, info=_doc("allowed since", "once")),
    info=_table(
        "networks allowed to use a workspace's console and admin API",
        "when an administrator allows or removes a network",
    ),
)
