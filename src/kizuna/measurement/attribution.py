"""The attribution job: credit new and changed orders to messages, record control outcomes.

Incremental: each run reads the orders changed (``updated_at``), the goal events
received (``received_at``) and the merges made since the workspace's last
position (``scenario_cursors``, source ``attribution``), minus a few minutes'
overlap for transactions still open when the last run looked, and works on them
set by set (``kizuna.store.attributions``). Idempotent: rows go in under unique
keys and outcomes are recomputed from the orders, so re-running, overlapping
and a second worker add nothing.

Per workspace, in one transaction:
1. cancelled orders lose their credits and control rows; refunds change revenue;
2. each live order is credited to its customer's last qualifying message touch
   (click within 7 days, open or delivery within 3, or the campaign's windows);
3. held-out scenario runs' and campaign recipients' conversions in their window
   become ``control`` rows; goal campaigns count their goal event instead;
4. the outcomes of both groups of every campaign recipient among the affected
   customers (conversions, revenue, first conversion) are recomputed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.clock import ensure_utc
from kizuna.store import attributions as store
from kizuna.store.database import Database
from kizuna.store.locks import held_exclusively
from kizuna.store.scenario_runs import read_position, save_position
from kizuna.store.scope import Scope
from kizuna.store.tables import customer_merges, events, orders
from kizuna.store.tables_campaigns import campaigns
from kizuna.store.workspaces import list_workspaces

__all__ = ["CURSOR", "OVERLAP", "AttributionSummary", "attribute", "attribute_workspace"]

CURSOR = "attribution"  # the job's position in scenario_cursors
OVERLAP = timedelta(minutes=5)  # re-read: rows stamped before a slow transaction committed
_SLACK = timedelta(days=2)  # local-time sends start up to a day after the freeze
_LONGEST_TOUCH = timedelta(days=91)  # campaign specs allow touch windows up to 90 days
_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class AttributionSummary:
    """What one run did, summed over workspaces."""

    workspaces: int = 0
    credited: int = 0  # message credits added
    controls: int = 0  # control rows added
    dropped: int = 0  # rows removed with cancelled orders
    repriced: int = 0  # rows whose revenue followed a refund
    recipients: int = 0  # campaign recipients whose outcomes were recomputed
    busy: bool = False  # another worker was running the job
    campaigns: list[str] = field(default_factory=list)  # campaigns touched


def attribute(db: Database, *, workspace_id: uuid.UUID | None = None) -> AttributionSummary:
    """Run the job over every workspace (or one); a second concurrent caller does nothing."""
    with held_exclusively(db, CURSOR) as mine:
        if not mine:
            return AttributionSummary(busy=True)
        with db.read() as conn:
            ids = [w.workspace_id for w in list_workspaces(conn)]
        summary = AttributionSummary()
        for ws in ids if workspace_id is None else [workspace_id]:
            _add(summary, attribute_workspace(db, ws))
        return summary


def _add(total: AttributionSummary, one: AttributionSummary) -> None:
    for name in ("workspaces", "credited", "controls", "dropped", "repriced", "recipients"):
        setattr(total, name, getattr(total, name) + getattr(one, name))
    total.campaigns.extend(one.campaigns)


def attribute_workspace(db: Database, workspace_id: uuid.UUID) -> AttributionSummary:
    """One workspace's run, in one transaction (safe beside another: keys make it idempotent)."""
    with db.write() as conn:
        scope = Scope(conn, db.cipher, workspace_id, db.clock.now())
        found = read_position(conn, workspace_id, CURSOR)
        after = ensure_utc(datetime.fromisoformat(found["at"])) - OVERLAP if found else None
        changed = store.Changed(after, scope.now)
        summary = _run(scope, changed)
        save_position(conn, workspace_id, CURSOR, {"at": scope.now.isoformat()}, scope.now)
        return summary


def _run(scope: Scope, changed: store.Changed) -> AttributionSummary:
    summary = AttributionSummary(workspaces=1)
    frozen = _frozen_campaigns(scope)
    goal_campaigns = [c for c in frozen if c.goal_event]
    goals_since = min((c.frozen_at for c in goal_campaigns), default=None)
    earliest = _earliest(scope, changed, [c.goal_event for c in goal_campaigns], goals_since)
    if earliest is None:
        return summary
    own_windows = [c for c in frozen if c.frozen_at >= earliest - _LONGEST_TOUCH]
    summary.dropped = store.drop_cancelled(scope, changed)
    summary.repriced = store.follow_refunds(scope, changed)
    summary.credited = store.credit_orders(scope, changed, own_windows)
    summary.controls = store.record_scenario_controls(scope, changed)
    live = [c for c in frozen if _window_end(c) >= earliest]
    goals = sorted({c.goal_event for c in live if c.goal_event})
    customers = store.affected_customers(scope, changed, goals, goals_since)
    for campaign in live:
        if campaign.goal_event is None:
            summary.controls += store.record_campaign_controls(scope, changed, campaign)
        else:
            summary.credited += store.credit_goal_events(scope, changed, campaign)
            summary.controls += store.record_goal_controls(scope, changed, campaign)
        summary.recipients += store.refresh_recipients(scope, campaign, customers)
        summary.campaigns.append(str(campaign.campaign_id))
    return summary


def _window_end(campaign: store.CampaignWindows) -> datetime:
    return campaign.frozen_at + timedelta(days=campaign.window_days) + _SLACK


def _earliest(
    scope: Scope, changed: store.Changed, goals: Sequence[str | None], goals_since: datetime | None
) -> datetime | None:
    """The earliest conversion time in the slice (a merge: the beginning); None: nothing new."""
    conn, ws = scope.conn, scope.workspace_id
    merged = conn.execute(
        sa.select(sa.func.count())
        .select_from(customer_merges)
        .where(customer_merges.c.workspace_id == ws, *changed.on(customer_merges.c.merged_at))
    ).scalar_one()
    if merged:
        return _BEGINNING  # the survivor's outcomes in every campaign may have moved
    o, e = orders.c, events.c
    found = [
        conn.execute(
            sa.select(sa.func.min(o.ordered_at)).where(
                o.workspace_id == ws, *changed.on(o.updated_at)
            )
        ).scalar()
    ]
    if goals:
        found.append(
            conn.execute(
                sa.select(sa.func.min(e.occurred_at)).where(
                    e.workspace_id == ws,
                    e.name.in_(list(goals)),
                    *changed.on(e.received_at),
                    e.occurred_at >= (goals_since or _BEGINNING),
                )
            ).scalar()
        )
    times = [ensure_utc(t) for t in found if t is not None]
    return min(times) if times else None


def _frozen_campaigns(scope: Scope) -> list[store.CampaignWindows]:
    c = campaigns.c
    rows = scope.conn.execute(
        sa.select(c.campaign_id, c.frozen_at, c.spec)
        .where(c.workspace_id == scope.workspace_id, c.frozen_at.is_not(None))
        .order_by(c.frozen_at)
    ).all()
    return [_windows(r.campaign_id, ensure_utc(r.frozen_at), r.spec or {}) for r in rows]


def _windows(
    campaign_id: uuid.UUID, frozen_at: datetime, spec: Mapping[str, Any]
) -> store.CampaignWindows:
    """The measurement and touch windows a campaign's spec sets (defaults otherwise)."""
    goal = spec.get("goal")
    touch = {
        kind: float(spec.get(f"{kind}_window_days", default))
        for kind, default in store.DEFAULT_WINDOWS.items()
    }
    return store.CampaignWindows(
        campaign_id=campaign_id,
        frozen_at=frozen_at,
        window_days=float(spec.get("window_days", 7)),
        goal_event=str(goal["event"]) if isinstance(goal, Mapping) and goal.get("event") else None,
        touch_days=touch,
    )
