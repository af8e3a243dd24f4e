"""Erase: remove a person's personal data and keep the anonymous facts reports add up from.

What happens, in one transaction, to the customer and the records merged into it:

* **Profile**: every ``*_enc`` and ``*_hash`` column, the shop's customer id, city,
  birthday month-day and free-form attributes are cleared. Gender, prefecture,
  membership rank and the dates stay: alone they name no one, and RFMD by region
  and the other reports read them. The row and its id stay.
* **Identities** (their hashes are personal) and **topic preferences** are deleted,
  as are pending scenario inbox items.
* **Events, orders, order lines, carts, subscriptions, messages, scenario runs,
  segment membership and stored metrics stay** under the same, now anonymous, id,
  so revenue, counts, RFM, deciles, cohorts and scenario statistics stay true.
  Their free text and JSON are scrubbed (:mod:`.scrub`): personal keys, the
  identifying context keys (ip, traits, location, device) and every known value of
  the person; events lose their ``user_id`` / ``anonymous_id``; messages their
  address hash. Keys that must stay unique (idempotency keys such as
  ``welcome:C200``, event message ids, run keys) become a keyed hash when they
  hold a known value. Orders keep the shop's order number: a later update or
  return from the shop must find the same order, or revenue would count twice.
* **Consent**: every channel is set ``opted_out``; the erase request on record is the
  evidence of that decision (an evidence row would only hold the person's data
  longer). Consent **evidence is not deleted while the law needs it**:
  the Specified Electronic Mail Act asks for it until one month (the workspace's
  ``evidence_retention_months``) after the last send. Rows already past that are
  deleted now; the rest keep their address hash and IP as proof and are deleted
  by the retention purge when due (an erased customer's evidence always
  qualifies then). Known values in their free text are scrubbed now.
* **Suppressions**: complaint and blacklist entries of the person's addresses
  keep the address hash and reason (the person refused mail; without the
  hash Kizuna could not honour that if the address is imported again) but lose
  the customer link and note. Hard-bounce entries are deleted: they record a
  mailbox fault, not a wish, and no law asks to keep them.
* Active scenario runs exit (``erased``); segment membership is re-evaluated.

After the commit, SQLite is compacted (``VACUUM`` and a WAL checkpoint) so no old
copy of a value survives in free pages or the write-ahead log; on PostgreSQL old
row versions stay in the table files until autovacuum reuses the space, and in
WAL archives and backups until they expire. The record and the log keep the
customer id and row counts only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from kizuna.errors import Conflict
from kizuna.privacy.requests import RequestContext, finish_request, open_request
from kizuna.privacy.retention import purge_evidence
from kizuna.privacy.scrub import CONTEXT_IDENTIFYING, Redactor
from kizuna.privacy.settings import load_privacy_settings
from kizuna.privacy.stop import exit_runs
from kizuna.store.customers import PII_TRAITS
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor
from kizuna.store.privacy import (
    PrivacyRequest,
    address_hashes,
    customer_group,
    is_erased,
    known_values,
)
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import CUSTOMER_CHANGED, enqueue_changes
from kizuna.store.tables import (
    carts,
    consent_events,
    consents,
    customers,
    events,
    identities,
    messages,
    preferences,
    scenario_inbox,
    scenario_runs,
    suppressions,
)

__all__ = ["Erasure", "compact_sqlite", "erase_customer"]

_BATCH = 1_000
_KEPT_SUPPRESSIONS = ("complaint", "blacklist")
_PROFILE_CLEARED: dict[str, Any] = {
    **dict.fromkeys(PII_TRAITS.values()),
    "email_hash": None,
    "phone_hash": None,
    "shop_customer_id": None,
    "city": None,
    "birth_md": None,
    "attributes": {},
}
_NOT_PERSONAL_IN_PROPERTIES = frozenset({"name"})  # product, page and screen names


@dataclass(frozen=True, slots=True)
class Erasure:
    """The recorded request, and whether SQLite's files were compacted (None: PostgreSQL)."""

    request: PrivacyRequest
    compacted: bool | None


Fix = Callable[[Any], Any]


def _rewrite(
    scope: Scope, table: sa.Table, key: str, fixes: Mapping[str, Fix], customer_id: uuid.UUID
) -> int:
    """Apply ``fixes`` (column -> new value from old) to one customer's rows, in key order."""
    t, names, changed = table.c, list(fixes), 0
    owned = [t.workspace_id == scope.workspace_id, t.customer_id == customer_id]
    update = (
        table.update()
        .where(*owned, t[key] == sa.bindparam("b_key"))
        .values({n: sa.bindparam(f"v_{n}") for n in names})
    )
    last: Any = None
    while True:
        query = sa.select(t[key], *(t[n] for n in names)).where(*owned)
        if last is not None:
            query = query.where(t[key] > last)
        rows = scope.conn.execute(query.order_by(t[key]).limit(_BATCH)).all()
        batch = []
        for row in rows:
            new = {n: fixes[n](row._mapping[n]) for n in names}
            if any(new[n] != row._mapping[n] for n in names):
                batch.append({"b_key": row[0], **{f"v_{n}": v for n, v in new.items()}})
        if batch:
            scope.conn.execute(update, batch)
        changed += len(batch)
        if len(rows) < _BATCH:
            return changed
        last = rows[-1][0]


def _rekeyer(scope: Scope, redactor: Redactor) -> Fix:
    """Keys that must stay unique (idempotency keys, message ids): a keyed hash if personal."""

    def rekey(value: str | None) -> str | None:
        """``value``, or a keyed hash of it when it holds a known personal value."""
        if value is None or redactor.text(value) == value:
            return value
        # IMPORTANT: keyed, so "welcome:C200" cannot be recovered by hashing guessed ids.
        return "erased:" + scope.hash("erased key", value).hex()[:40]

    return rekey


def _scrub(scope: Scope, group: list[uuid.UUID], redactor: Redactor) -> dict[str, int]:
    doc, text, rekey = redactor.doc, redactor.text, _rekeyer(scope, redactor)
    event_fixes: dict[str, Fix] = {
        "properties": lambda d: doc(d, keep=_NOT_PERSONAL_IN_PROPERTIES),
        "context": lambda d: doc(d, drop=CONTEXT_IDENTIFYING),
        "message_id": rekey,
    }
    plans: list[tuple[sa.Table, str, dict[str, Fix]]] = [
        (events, "event_id", event_fixes),
        (messages, "message_id", {"params": doc, "reason": text, "idempotency_key": rekey}),
        (scenario_runs, "run_id", {"context": doc, "run_key": rekey}),
        (carts, "cart_id", {"items": doc}),
        (consent_events, "consent_event_id", {"source": text, "wording": text, "method": text}),
    ]
    counts: dict[str, int] = {}
    for table, key, fixes in plans:
        counts[f"{table.name}_scrubbed"] = sum(
            _rewrite(scope, table, key, fixes, cid) for cid in group
        )
    return counts


def _owned(table: sa.Table, scope: Scope, group: list[uuid.UUID]) -> list[sa.ColumnElement[bool]]:
    return [table.c.workspace_id == scope.workspace_id, table.c.customer_id.in_(group)]


def _detach(scope: Scope, group: list[uuid.UUID]) -> dict[str, int]:
    """Set-based changes: identifiers out of events and messages, links and rows deleted."""
    conn = scope.conn
    done = {
        "events_detached": conn.execute(
            events.update()
            .where(*_owned(events, scope, group))
            .values(user_id=None, anonymous_id=None)
        ).rowcount,
        "messages_detached": conn.execute(
            messages.update().where(*_owned(messages, scope, group)).values(address_hash=None)
        ).rowcount,
    }
    for table in (identities, preferences, scenario_inbox):
        done[f"{table.name}_deleted"] = conn.execute(
            table.delete().where(*_owned(table, scope, group))
        ).rowcount
    return done


def _suppressions(scope: Scope, group: list[uuid.UUID], hashes: set[bytes]) -> dict[str, int]:
    s = suppressions.c
    theirs = sa.or_(
        s.customer_id.in_(group), sa.and_(s.customer_id.is_(None), s.address_hash.in_(hashes))
    )
    where = [s.workspace_id == scope.workspace_id, theirs]
    deleted = scope.conn.execute(
        suppressions.delete().where(*where, s.reason.not_in(_KEPT_SUPPRESSIONS))
    ).rowcount
    kept = scope.conn.execute(
        suppressions.update().where(*where).values(customer_id=None, note=None)
    ).rowcount
    return {"suppressions_deleted": deleted, "suppressions_kept_as_hash": kept}


def _end_consents(scope: Scope, group: list[uuid.UUID]) -> int:
    """Opt out on every channel; the erase request itself is the evidence of this decision."""
    c = consents.c
    return int(
        scope.conn.execute(
            consents.update()
            .where(*_owned(consents, scope, group), c.status != "opted_out")
            .values(status="opted_out", changed_at=scope.now, updated_at=scope.now)
        ).rowcount
    )


def _anonymize(scope: Scope, group: list[uuid.UUID]) -> int:
    return int(
        scope.conn.execute(
            customers.update()
            .where(*_owned(customers, scope, group))
            .values(updated_at=scope.now, **_PROFILE_CLEARED)
        ).rowcount
    )


def _lock(scope: Scope, group: list[uuid.UUID]) -> None:
    """PostgreSQL: wait for ingest transactions writing these customers, and hold them off."""
    if scope.conn.dialect.name == "postgresql":  # SQLite has one writer at a time
        query = sa.select(customers.c.customer_id).where(*_owned(customers, scope, group))
        scope.conn.execute(query.order_by(customers.c.customer_id).with_for_update()).all()


def _erase(ctx: RequestContext) -> dict[str, Any]:
    scope, customer_id = ctx.scope, ctx.customer_id
    group = customer_group(scope, customer_id)
    _lock(scope, group)
    redactor = Redactor(known_values(scope, group))
    hashes = {h for found in address_hashes(scope, group).values() for h in found}
    details: dict[str, Any] = {"records": len(group)}
    details["runs_exited"] = exit_runs(scope, group, "erased")
    details["consents_ended"] = _end_consents(scope, group)
    details |= _suppressions(scope, group, hashes)
    details |= _scrub(scope, group, redactor)
    details |= _detach(scope, group)
    details["customers_anonymized"] = _anonymize(scope, group)
    months = load_privacy_settings(scope.conn, scope.workspace_id).evidence_retention_months
    details["evidence_deleted"] = purge_evidence(
        scope, months, customer_ids=group, assume_ended=True
    )
    details["evidence_kept"] = int(
        scope.conn.execute(
            sa.select(sa.func.count())
            .select_from(consent_events)
            .where(*_owned(consent_events, scope, group))
        ).scalar_one()
    )
    enqueue_changes(scope, dict.fromkeys(group, (CUSTOMER_CHANGED,)))
    return details


def compact_sqlite(db: Database) -> bool | None:
    """Rewrite the SQLite file without free pages and empty the WAL; None on PostgreSQL.

    Returns False when another connection kept the checkpoint from finishing
    (the WAL is then emptied by a later checkpoint).
    """
    if db.dialect != "sqlite":
        return None
    with db.engine.connect() as conn:
        raw: Any = conn.connection.driver_connection  # sqlite3.Connection, in autocommit
        # IMPORTANT: outside any transaction; VACUUM rebuilds every page, so no freed
        # cell of an erased row survives in the file.
        raw.execute("VACUUM")
        busy = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    return bool(busy == 0)


def erase_customer(db: Database, workspace: str, ref: str, *, actor: Actor) -> Erasure:
    """Erase the personal data of the customer ``ref`` names (see the module docstring).

    Raises ``NotFound`` for an unknown customer and ``Conflict`` when already erased.
    """
    with open_request(db, workspace, ref) as ctx:
        if is_erased(ctx.scope, ctx.customer_id):
            raise Conflict("this customer's personal data was already erased")
        request = finish_request(ctx, actor, "erase", _erase(ctx))
    return Erasure(request, compact_sqlite(db))
