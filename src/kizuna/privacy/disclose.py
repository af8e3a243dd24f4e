"""Disclose: everything Kizuna holds about one person, as JSON plus one CSV per table.

The bundle has the profile in clear (decrypted by the store), identifiers,
consent state and the evidence of every decision (with the address it covered),
suppressions of their addresses, topic preferences, events, orders and their
lines, carts, subscriptions, messages with their statuses, scenario runs,
segment memberships, stored metrics, merges, earlier requests and the record of
third-party provision (:mod:`.provision`). Times are UTC (the workspace's zone
is named in the bundle). Lookup hashes are replaced by the address they stand for.

IMPORTANT: the disclosure is a view of personal data in clear; it is recorded as
a request and written to the operation log with the customer's id, in the same
transaction that reads the data.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kizuna.privacy.provision import PROVISION_NOTES, provision_records
from kizuna.privacy.requests import RequestContext, finish_request, open_request
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor
from kizuna.store.privacy import (
    PrivacyRequest,
    address_hashes,
    addresses_of,
    decrypted_identities,
    list_requests,
)
from kizuna.store.profiles import read_profile
from kizuna.store.scope import Scope
from kizuna.store.tables import (
    carts,
    consent_events,
    consents,
    customer_merges,
    customer_metrics,
    events,
    messages,
    order_items,
    orders,
    preferences,
    scenario_runs,
    scenarios,
    segment_members,
    segments,
    subscriptions,
    suppressions,
)

__all__ = ["BUNDLE_FORMAT", "Disclosure", "disclose_customer"]

BUNDLE_FORMAT = "kizuna-disclosure/1"
_HIDDEN = frozenset({"workspace_id", "customer_id"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MESSAGE_COLUMNS = (
    "message_id",
    "channel",
    "purpose",
    "topic",
    "template_key",
    "source_kind",
    "source_id",
    "step",
    "variant",
    "status",
    "reason",
    "attempts",
    "provider",
    "created_at",
    "sent_at",
    "delivered_at",
)

Table = tuple[list[str], list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Disclosure:
    """The bundle (plain JSON values) and the request that produced it."""

    bundle: dict[str, Any]
    request: PrivacyRequest

    @property
    def filename(self) -> str:
        """A file name for the download."""
        return f"disclosure-{self.bundle['customer_id']}.zip"

    def tables(self) -> dict[str, Table]:
        """Each table of the bundle as (columns, rows), profile and provision included."""
        found: dict[str, Table] = {"profile": _profile_table(self.bundle["profile"])}
        for name, table in self.bundle["tables"].items():
            found[name] = (table["columns"], table["rows"])
        found["third_party_provision"] = (
            list(self.bundle["third_party_provision"]["columns"]),
            self.bundle["third_party_provision"]["records"],
        )
        return found

    def to_zip(self) -> bytes:
        """``disclosure.json``, ``README.txt`` and one CSV per table, in a zip archive."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in self._files().items():
                archive.writestr(name, data)
        return buffer.getvalue()

    def write_directory(self, path: Path) -> list[Path]:
        """Write the same files into ``path`` (created if missing); returns them."""
        path.mkdir(parents=True, exist_ok=True)
        written = []
        for name, data in self._files().items():
            target = path / name
            target.write_bytes(data)
            written.append(target)
        return written

    def _files(self) -> dict[str, bytes]:
        files = {
            "disclosure.json": json.dumps(self.bundle, ensure_ascii=False, indent=2).encode(),
            "README.txt": "\n\n".join(self.bundle["notes"]).encode() + b"\n",
        }
        for name, (columns, rows) in self.tables().items():
            files[f"{name}.csv"] = _csv(columns, rows)
        return files


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> Any:
    """A CSV cell; text Excel would run as a formula gets a leading ``'`` (CSV injection)."""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not value[1:].isdigit():
        return "'" + value
    return value


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    buffer.write("\ufeff")  # so Excel reads Japanese
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([_cell(row.get(c)) for c in columns] for row in rows)
    return buffer.getvalue().encode("utf-8")


def _profile_table(profile: dict[str, Any]) -> Table:
    rows = [{"field": k, "value": v} for k, v in profile.items() if k != "traits"]
    rows += [{"field": f"traits.{k}", "value": v} for k, v in profile["traits"].items()]
    return ["field", "value"], rows


def _rows(scope: Scope, query: sa.Select[Any]) -> dict[str, Any]:
    result = scope.conn.execute(query)
    names = result.keys()
    columns = [c for c in names if c not in _HIDDEN]
    rows = [{c: _plain(row._mapping[c]) for c in columns} for row in result]
    return {"columns": columns, "rows": rows}


def _owned(table: sa.Table, scope: Scope, customer_id: uuid.UUID) -> sa.Select[Any]:
    return sa.select(table).where(
        table.c.workspace_id == scope.workspace_id, table.c.customer_id == customer_id
    )


def _with_addresses(table: dict[str, Any], clear: dict[bytes, str]) -> dict[str, Any]:
    """Replace ``address_hash`` (hex) by the address it stands for, when still known."""
    columns = ["address" if c == "address_hash" else c for c in table["columns"]]
    rows = []
    for row in table["rows"]:
        hashed = row.pop("address_hash", None)
        row["address"] = None if hashed is None else clear.get(bytes.fromhex(hashed), "(unknown)")
        rows.append(row)
    return {"columns": columns, "rows": rows}


def _consent_tables(scope: Scope, customer_id: uuid.UUID) -> dict[str, Any]:
    hashes = {h for found in address_hashes(scope, [customer_id]).values() for h in found}
    s = suppressions.c
    theirs = sa.select(suppressions).where(
        s.workspace_id == scope.workspace_id,
        sa.or_(s.customer_id == customer_id, s.address_hash.in_(sorted(hashes))),
    )
    evidence = _rows(
        scope, _owned(consent_events, scope, customer_id).order_by(consent_events.c.occurred_at)
    )
    suppressed = _rows(scope, theirs.order_by(s.created_at))
    named = [
        bytes.fromhex(r["address_hash"])
        for r in evidence["rows"] + suppressed["rows"]
        if r.get("address_hash")
    ]
    clear = addresses_of(scope, named)
    return {
        "consents": _rows(scope, _owned(consents, scope, customer_id)),
        "consent_evidence": _with_addresses(evidence, clear),
        "suppressions": _with_addresses(suppressed, clear),
        "preferences": _rows(scope, _owned(preferences, scope, customer_id)),
    }


def _commerce_tables(scope: Scope, customer_id: uuid.UUID) -> dict[str, Any]:
    m = messages.c
    sent = sa.select(*(m[c] for c in _MESSAGE_COLUMNS)).where(
        m.workspace_id == scope.workspace_id, m.customer_id == customer_id
    )
    return {
        "events": _rows(scope, _owned(events, scope, customer_id).order_by(events.c.occurred_at)),
        "orders": _rows(scope, _owned(orders, scope, customer_id).order_by(orders.c.ordered_at)),
        "order_items": _rows(
            scope,
            _owned(order_items, scope, customer_id).order_by(
                order_items.c.order_id, order_items.c.line_no
            ),
        ),
        "carts": _rows(scope, _owned(carts, scope, customer_id)),
        "subscriptions": _rows(scope, _owned(subscriptions, scope, customer_id)),
        "messages": _rows(scope, sent.order_by(m.created_at)),
    }


def _marketing_tables(scope: Scope, customer_id: uuid.UUID) -> dict[str, Any]:
    r, sc, sm, sg = scenario_runs.c, scenarios.c, segment_members.c, segments.c
    runs = (
        sa.select(
            sc.key.label("scenario"),
            sc.name.label("scenario_name"),
            r.run_id,
            r.version,
            r.status,
            r.held_out,
            r.variant,
            r.sends,
            r.entered_at,
            r.ended_at,
            r.exit_reason,
        )
        .join(
            scenarios, sa.and_(sc.workspace_id == r.workspace_id, sc.scenario_id == r.scenario_id)
        )
        .where(r.workspace_id == scope.workspace_id, r.customer_id == customer_id)
        .order_by(r.entered_at)
    )
    members = (
        sa.select(
            sg.key.label("segment"), sg.name.label("segment_name"), sm.entered_at, sm.exited_at
        )
        .join(segments, sa.and_(sg.workspace_id == sm.workspace_id, sg.segment_id == sm.segment_id))
        .where(sm.workspace_id == scope.workspace_id, sm.customer_id == customer_id)
        .order_by(sg.key)
    )
    merges = sa.select(customer_merges).where(
        customer_merges.c.workspace_id == scope.workspace_id,
        customer_merges.c.into_customer_id == customer_id,
    )
    return {
        "scenario_runs": _rows(scope, runs),
        "segment_memberships": _rows(scope, members),
        "metrics": _rows(scope, _owned(customer_metrics, scope, customer_id)),
        "merges": _rows(scope, merges.order_by(customer_merges.c.merged_at)),
    }


_PROVISION_COLUMNS = ["at", "action", "actor", "origin", "target", "rows", "format",
                      "revealed", "inclusion"]  # fmt: skip


def _tables(scope: Scope, customer_id: uuid.UUID) -> dict[str, Any]:
    identities = decrypted_identities(scope, customer_id)
    earlier = [asdict(r) for r in list_requests(scope, customer_id=customer_id, limit=1000)]
    return {
        "identities": {"columns": ["kind", "value", "first_seen_at", "last_seen_at"],
                       "rows": _plain(identities)},
        **_consent_tables(scope, customer_id),
        **_commerce_tables(scope, customer_id),
        **_marketing_tables(scope, customer_id),
        "privacy_requests": {"columns": list(earlier[0]) if earlier else [],
                             "rows": _plain(earlier)},
    }  # fmt: skip


def _bundle(ctx: RequestContext) -> dict[str, Any]:
    scope, customer_id = ctx.scope, ctx.customer_id
    profile = asdict(read_profile(scope.conn, scope.cipher, scope.workspace_id, customer_id))
    provision = provision_records(scope, customer_id)
    return {
        "format": BUNDLE_FORMAT, "workspace": ctx.workspace.slug,
        "time_zone": ctx.workspace.time_zone, "customer_id": str(customer_id),
        "request_id": str(ctx.request_id), "generated_at": scope.now.isoformat(),
        "notes": list(PROVISION_NOTES), "profile": _plain(profile),
        "tables": _tables(scope, customer_id),
        "third_party_provision": {"columns": _PROVISION_COLUMNS, "records": _plain(provision)},
    }  # fmt: skip


def disclose_customer(db: Database, workspace: str, ref: str, *, actor: Actor) -> Disclosure:
    """Everything held about the customer ``ref`` names; recorded and logged. ``NotFound``."""
    with open_request(db, workspace, ref) as ctx:
        bundle = _bundle(ctx)
        counts = {name: len(t["rows"]) for name, t in bundle["tables"].items()}
        counts["third_party_provision"] = len(bundle["third_party_provision"]["records"])
        request = finish_request(ctx, actor, "disclose", {"rows": counts})
    return Disclosure(bundle, request)
