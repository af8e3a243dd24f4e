"""Stop use: the customer receives no more marketing, on any channel, from any scenario.

Three things, in the request's transaction:

1. consent ``opted_out`` on every channel Kizuna knows, each with evidence
   (method ``data-subject request: stop use``, the request id as source, the
   address the decision covers), so the send-time gate skips every marketing
   message already queued or queued later;
2. the customer's addresses on the sending channels (email, SMS, LINE, push)
   go on the suppression list with reason ``blacklist``: a record merged in
   later, or an import that opts the address in again, still cannot reach them;
3. their active scenario runs exit with reason ``stop_use``.

Transactional messages (order confirmations) are not marketing and still go.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from datetime import datetime

import sqlalchemy as sa

from kizuna.domain.records import Channel, ConsentRecord, ConsentStatus, Identifiers
from kizuna.privacy.requests import RequestContext, finish_request, open_request
from kizuna.store.consent import record_consents, suppress_hashes
from kizuna.store.database import Database
from kizuna.store.identity import IdentityResolver
from kizuna.store.operation_log import Actor
from kizuna.store.privacy import PrivacyRequest, address_hashes, channel_addresses, customer_group
from kizuna.store.scenario_runs import RunUpdate, Step, active_runs_of, record_steps, update_runs
from kizuna.store.scope import Scope
from kizuna.store.tables import consents

__all__ = ["SUPPRESSED_CHANNELS", "exit_runs", "opt_out_everywhere", "stop_use"]

SUPPRESSED_CHANNELS = ("email", "sms", "line", "push")  # the channels that reach an address
STOP_METHOD = "data-subject request: stop use"


class _Known(IdentityResolver):
    """A resolver that names one known customer and touches no identity or last-seen time."""

    def __init__(self, scope: Scope, customer_id: uuid.UUID) -> None:
        super().__init__(scope)
        self._known = customer_id

    def prefetch(self, batch: Iterable[Identifiers]) -> None:
        """Nothing to look up."""

    def resolve(self, ids: Identifiers, at: datetime) -> uuid.UUID:
        """Always the known customer."""
        return self._known


def opt_out_everywhere(
    scope: Scope, customer_id: uuid.UUID, *, method: str, source: str, addresses: bool = True
) -> list[str]:
    """Opt the customer out on every channel not already opted out; returns those channels.

    Each decision gets an evidence row; with ``addresses`` it names the address it covers.
    """
    current = dict(
        scope.conn.execute(
            sa.select(consents.c.channel, consents.c.status).where(
                consents.c.workspace_id == scope.workspace_id,
                consents.c.customer_id == customer_id,
            )
        ).all()
    )
    covered = channel_addresses(scope, customer_id) if addresses else {}
    records = [
        ConsentRecord(
            customer=Identifiers(),
            channel=channel,
            status=ConsentStatus.OPTED_OUT,
            occurred_at=scope.now,
            method=method,
            source=source,
            address=covered.get(channel.value),
        )
        for channel in Channel
        if current.get(channel.value) != ConsentStatus.OPTED_OUT.value
    ]
    record_consents(scope, _Known(scope, customer_id), records)
    return [r.channel.value for r in records]


def exit_runs(scope: Scope, customer_ids: Collection[uuid.UUID], reason: str) -> int:
    """End the customers' active scenario runs with ``reason``; returns how many."""
    runs = active_runs_of(scope, customer_ids, lock=True)
    updates = [
        RunUpdate(
            run.run_id,
            "exited",
            None,
            None,
            None,
            run.variant,
            run.sends,
            run.steps + 1,
            ended_at=scope.now,
            exit_reason=reason,
        )
        for run in runs
    ]
    steps = [Step(run, run.steps + 1, run.node_id or "", "exited", reason) for run in runs]
    update_runs(scope.conn, scope.workspace_id, updates, scope.now)
    record_steps(scope.conn, steps, scope.now)
    return len(runs)


def _suppress(ctx: RequestContext, group: list[uuid.UUID]) -> int:
    hashes = address_hashes(ctx.scope, group)
    count = 0
    for channel in SUPPRESSED_CHANNELS:
        found = sorted(hashes.get(channel, ()))
        if found:
            note = f"{STOP_METHOD} ({ctx.request_id})"
            suppress_hashes(ctx.scope, channel, found, "blacklist", note, ctx.customer_id)
            count += len(found)
    return count


def stop_use(db: Database, workspace: str, ref: str, *, actor: Actor) -> PrivacyRequest:
    """Suppress all marketing to the customer ``ref`` names; ``NotFound`` if there is none."""
    with open_request(db, workspace, ref) as ctx:
        group = customer_group(ctx.scope, ctx.customer_id)
        source = f"privacy request {ctx.request_id}"
        channels = opt_out_everywhere(ctx.scope, ctx.customer_id, method=STOP_METHOD, source=source)
        details = {
            "opted_out": channels,
            "addresses_suppressed": _suppress(ctx, group),
            "runs_exited": exit_runs(ctx.scope, group, "stop_use"),
        }
        return finish_request(ctx, actor, "stop", details)
