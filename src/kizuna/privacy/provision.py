"""The record of third-party provision: which logged exports included the customer.

Kizuna logs every export of customer data in the operation log (who, when,
which segment, how many rows, whether in clear) but not the list of people in
it. So an export is attributed to a customer in two ways:

* ``named``: the log entry's target is the customer's id;
* ``probable``: a segment export taken while the recorded membership (the
  entered / exited signals) shows the customer in that segment. Membership is
  kept up to date on every change and refreshed on a schedule, so a change in the
  minutes before an export can be missed either way; exports are evaluated live
  from the definition, which the recorded membership follows.

What cannot be known is listed in :data:`PROVISION_NOTES`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.store.scope import Scope
from kizuna.store.tables import operation_log, segment_members, segment_signals, segments

__all__ = ["PROVISION_NOTES", "provision_records"]

PROVISION_NOTES = (
    "Exports are logged with the segment and the number of rows, not the people in them: "
    "'probable' means the recorded segment membership shows this customer in the segment "
    "when the export was taken; 'named' means the log entry names this customer.",
    "Kizuna cannot know whether an exported file was passed on by the person who "
    "downloaded it, nor what a receiving party (an advertising platform, a delivery "
    "provider) kept; ask the shop for its record of provision to third parties.",
    "Message bodies are not stored: the messages table shows which template was sent, "
    "when, on which channel and what happened to it.",
)
_SEGMENT_PREFIX = "segment:"


def _history(scope: Scope, customer_id: uuid.UUID) -> dict[str, list[tuple[datetime, str]]]:
    """Segment key -> the customer's (at, entered|exited) changes in it, oldest first."""
    m, s, g = segment_members.c, segment_signals.c, segments.c
    keys = dict(
        scope.conn.execute(
            sa.select(m.segment_id, g.key)
            .join(segments, sa.and_(g.workspace_id == m.workspace_id, g.segment_id == m.segment_id))
            .where(m.workspace_id == scope.workspace_id, m.customer_id == customer_id)
        ).all()
    )
    history: dict[str, list[tuple[datetime, str]]] = {key: [] for key in keys.values()}
    for segment_id, at, kind in scope.conn.execute(
        sa.select(s.segment_id, s.at, s.kind)
        .where(s.workspace_id == scope.workspace_id, s.segment_id.in_(list(keys)))
        .where(s.customer_id == customer_id)
        .order_by(s.at)
    ):
        history[keys[segment_id]].append((at, kind))
    return history


def _member_at(changes: list[tuple[datetime, str]], at: datetime) -> bool:
    state = False
    for when, kind in changes:
        if when > at:
            break
        state = kind == "entered"
    return state


def _record(entry: Any, inclusion: str) -> dict[str, Any]:
    details = entry.details or {}
    return {
        "at": entry.at,
        "action": entry.action,
        "actor": entry.actor,
        "origin": entry.origin,
        "target": entry.target,
        "rows": details.get("rows"),
        "format": details.get("format"),
        "revealed": details.get("revealed"),
        "inclusion": inclusion,
    }


def provision_records(scope: Scope, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    """Logged exports that named or probably included the customer, oldest first."""
    history = _history(scope, customer_id)
    targets = [str(customer_id), *history, *(_SEGMENT_PREFIX + key for key in history)]
    log = operation_log.c
    entries = scope.conn.execute(
        sa.select(operation_log)
        .where(log.workspace_id == scope.workspace_id, log.action.like("%.export"))
        .where(log.target.in_(targets))
        .order_by(log.entry_id)
    )
    records = []
    for entry in entries:
        if entry.target == str(customer_id):
            records.append(_record(entry, "named"))
            continue
        key = entry.target.removeprefix(_SEGMENT_PREFIX)
        if _member_at(history.get(key, []), entry.at):
            records.append(_record(entry, "probable"))
    return records
