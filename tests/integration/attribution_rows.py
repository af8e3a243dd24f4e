"""Rows for attribution and metrics tests, written straight through the store's tables.

Campaigns are built here rather than through the campaign service, so these
tests pin the measurement contract alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.store.scope import Scope
from kizuna.store.tables import customer_metrics, messages, orders, scenario_runs, scenarios
from kizuna.store.tables_campaigns import attributions, campaign_recipients, campaigns
from kizuna.store.types import new_id


def message(
    scope: Scope,
    customer: uuid.UUID,
    *,
    source_kind: str = "campaign",
    source_id: str | None = None,
    step: str | None = None,
    variant: str | None = None,
    channel: str = "email",
    status: str = "sent",
    **times: datetime | None,
) -> uuid.UUID:
    """A message as the pipeline leaves it; ``times``: sent_at, delivered_at, opened_at …"""
    message_id = new_id()
    scope.conn.execute(
        messages.insert().values(
            workspace_id=scope.workspace_id, message_id=message_id, customer_id=customer,
            idempotency_key=f"t:{message_id}", channel=channel, purpose="marketing",
            params={}, source_kind=source_kind, source_id=source_id, step=step, variant=variant,
            status=status, attempts=1, not_before=scope.now, created_at=scope.now,
            updated_at=scope.now, **times,
        )
    )  # fmt: skip
    return message_id


def order(
    scope: Scope, customer: uuid.UUID, order_id: str, at: datetime, total: float, **extra: Any
) -> str:
    """A placed order (``extra``: status, refunded …), stamped ``updated_at`` now."""
    values = {"status": "placed", "refunded": 0.0, **extra}
    scope.conn.execute(
        orders.insert().values(
            workspace_id=scope.workspace_id, order_id=order_id, customer_id=customer,
            ordered_at=at, channel="online", currency="JPY", subtotal=total, discount=0.0,
            shipping=0.0, tax=0.0, total=total, updated_at=scope.now, **values,
        )
    )  # fmt: skip
    return order_id


def campaign(
    scope: Scope, frozen_at: datetime, spec: Mapping[str, Any] | None = None, key: str = "spring"
) -> uuid.UUID:
    """A sent campaign whose audience was frozen at ``frozen_at``."""
    campaign_id = new_id()
    scope.conn.execute(
        campaigns.insert().values(
            workspace_id=scope.workspace_id, campaign_id=campaign_id, key=key, name=key,
            status="sent", spec={"key": key, **(spec or {})}, checks={}, created_by="test",
            created_at=frozen_at, send_at=frozen_at, frozen_at=frozen_at, updated_at=frozen_at,
        )
    )  # fmt: skip
    return campaign_id


def recipients(
    scope: Scope,
    campaign_id: uuid.UUID,
    rows: Sequence[tuple[uuid.UUID, bool, str | None, uuid.UUID | None]],
    **outcome: Any,
) -> None:
    """Frozen recipients: (customer, held_out, variant, message_id)."""
    scope.conn.execute(
        campaign_recipients.insert(),
        [
            {"workspace_id": scope.workspace_id, "campaign_id": campaign_id, "customer_id": c,
             "held_out": held, "variant": v, "message_id": m, "send_at": None,
             "converted_at": None, "conversions": 0, "revenue": 0.0, **outcome}
            for c, held, v, m in rows
        ],
    )  # fmt: skip


def set_outcome(
    scope: Scope, campaign_id: uuid.UUID, customer: uuid.UUID, conversions: int, revenue: float
) -> None:
    """Give a recipient an outcome, as the attribution job would."""
    cr = campaign_recipients.c
    scope.conn.execute(
        campaign_recipients.update()
        .where(cr.workspace_id == scope.workspace_id, cr.campaign_id == campaign_id)
        .where(cr.customer_id == customer)
        .values(conversions=conversions, revenue=revenue)
    )


def scenario(scope: Scope, key: str) -> uuid.UUID:
    """A live scenario row (its definition does not matter to measurement)."""
    scenario_id = new_id()
    scope.conn.execute(
        scenarios.insert().values(
            workspace_id=scope.workspace_id, scenario_id=scenario_id, key=key, name=key,
            priority=0, status="live", live_version=1, draft={}, created_by="test",
            created_at=scope.now, updated_at=scope.now,
        )
    )  # fmt: skip
    return scenario_id


def run(
    scope: Scope,
    scenario_id: uuid.UUID,
    customer: uuid.UUID,
    entered_at: datetime,
    *,
    held_out: bool = False,
    variant: str | None = None,
) -> uuid.UUID:
    """A completed run (held out: ended at entry, as the engine records the control group)."""
    run_id = new_id()
    scope.conn.execute(
        scenario_runs.insert().values(
            workspace_id=scope.workspace_id, run_id=run_id, scenario_id=scenario_id, version=1,
            customer_id=customer, run_key=str(run_id), status="completed", held_out=held_out,
            variant=variant, context={}, sends=0, steps=1, entered_at=entered_at,
            updated_at=entered_at, ended_at=entered_at,
        )
    )  # fmt: skip
    return run_id


def rfm(scope: Scope, customer: uuid.UUID, segment: str) -> None:
    """Stored metrics naming the customer's RFM segment."""
    scope.conn.execute(
        customer_metrics.insert().values(
            workspace_id=scope.workspace_id, customer_id=customer, as_of=scope.now, frequency=1,
            monetary=0.0, rfm_segment=segment, computed_at=scope.now,
        )
    )  # fmt: skip


def credited(scope: Scope, kind: str = "message") -> dict[str, dict[str, Any]]:
    """Attributions of ``kind`` by conversion key (message ones) or key and source (control)."""
    a = attributions.c
    rows = scope.conn.execute(
        sa.select(attributions).where(a.workspace_id == scope.workspace_id, a.kind == kind)
    ).all()
    if kind == "message":
        return {r.conversion_key: dict(r._mapping) for r in rows}
    return {f"{r.conversion_key}@{r.source_kind}:{r.source_id}": dict(r._mapping) for r in rows}


def outcomes(scope: Scope, campaign_id: uuid.UUID) -> dict[uuid.UUID, tuple[int, float, Any]]:
    """Each recipient's (conversions, revenue, converted_at)."""
    cr = campaign_recipients.c
    rows = scope.conn.execute(
        sa.select(cr.customer_id, cr.conversions, cr.revenue, cr.converted_at).where(
            cr.workspace_id == scope.workspace_id, cr.campaign_id == campaign_id
        )
    ).all()
    return {r[0]: (int(r[1]), float(r[2]), r[3]) for r in rows}


def message_times(scope: Scope, message_id: uuid.UUID) -> dict[str, Any]:
    """A message's delivered, first-open, first-click and unsubscribe times."""
    m = messages.c
    row = scope.conn.execute(
        sa.select(m.delivered_at, m.opened_at, m.clicked_at, m.unsubscribed_at).where(
            m.workspace_id == scope.workspace_id, m.message_id == message_id
        )
    ).one()
    return dict(row._mapping)
