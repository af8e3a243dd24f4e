"""Crediting conversions to messages, and recording held-out customers' conversions.

Each statement works on a set (the orders changed since the job's last position),
never customer by customer. Rows go in with ``ON CONFLICT DO NOTHING`` against
``attributions``' unique keys, so a re-run or a second worker adds nothing: an
order is credited to one message at most (the partial unique index), and counted
once per held-out group.

A *conversion* is an order that is not cancelled (``placed`` or ``returned``),
worth ``total − refunded``; or, for a campaign with a goal, an event of that name
(worth 0). A message *touch* is its first click, open or delivery; the touch that
counts is the latest one before the conversion within its window (campaign specs
may set their own windows), ties going to click, then open, then delivery.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.analytics.sql import as_of_param, days_between
from kizuna.store.scope import Scope
from kizuna.store.tables import (
    customer_merges,
    events,
    messages,
    orders,
    scenario_runs,
    scenarios,
)
from kizuna.store.tables_campaigns import attributions, campaign_recipients

__all__ = [
    "DEFAULT_WINDOWS",
    "CampaignWindows",
    "Changed",
    "affected_customers",
    "credit_goal_events",
    "credit_orders",
    "drop_cancelled",
    "follow_refunds",
    "record_campaign_controls",
    "record_goal_controls",
    "record_scenario_controls",
    "refresh_recipients",
    "uuid_text",
]

SCENARIO_WINDOW_DAYS = 7
DEFAULT_WINDOWS = {"click": 7.0, "open": 3.0, "delivery": 3.0}
# Touch kinds with the message column that holds them; later in the tuple wins a tie.
_TOUCHES = (("delivery", "delivered_at"), ("open", "opened_at"), ("click", "clicked_at"))


@dataclass(frozen=True, slots=True)
class CampaignWindows:
    """What the job needs of one frozen campaign."""

    campaign_id: uuid.UUID
    frozen_at: datetime
    window_days: float
    goal_event: str | None  # None: orders convert
    touch_days: dict[str, float]  # click / open / delivery → window in days


@dataclass(frozen=True, slots=True)
class Changed:
    """The slice one run works on: rows stamped ``after < t <= upto`` (orders' ``updated_at``,
    events' ``received_at``, merges' ``merged_at``)."""

    after: datetime | None
    upto: datetime

    def on(self, column: Any) -> list[sa.ColumnElement[bool]]:
        """Conditions selecting the slice by ``column``."""
        found = [column <= as_of_param(self.upto, "upto")]
        if self.after is not None:
            found.append(column > as_of_param(self.after, "after"))
        return found


def uuid_text(column: Any, dialect: str) -> sa.ColumnElement[str]:
    """A UUID column as the canonical hyphenated text ``str(uuid)`` gives."""
    if dialect == "postgresql":
        return sa.cast(column, sa.String)
    hexed = sa.func.lower(sa.cast(column, sa.String))  # SQLite keeps 32 hex digits
    parts = [sa.func.substr(hexed, a, n) for a, n in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]
    joined: sa.ColumnElement[str] = parts[0]
    for part in parts[1:]:
        joined = joined + "-" + part
    return joined


def _new_id(dialect: str) -> sa.ColumnElement[uuid.UUID]:
    if dialect == "postgresql":
        return sa.func.gen_random_uuid()
    return sa.func.lower(sa.func.hex(sa.func.randomblob(16)))


def _insert_ignoring(scope: Scope, rows: sa.Select[Any]) -> int:
    module = postgresql if scope.conn.dialect.name == "postgresql" else sqlite
    columns = [c.name for c in rows.selected_columns]
    stmt = module.insert(attributions).from_select(columns, rows).on_conflict_do_nothing()
    # SQLAlchemy reports the rowcount of an INSERT … SELECT only when asked to keep it.
    return int(scope.conn.execute(stmt, execution_options={"preserve_rowcount": True}).rowcount)


def _order_key() -> sa.ColumnElement[str]:
    return sa.literal("order:") + orders.c.order_id


def _changed_orders(scope: Scope, changed: Changed, *, cancelled: bool) -> sa.Subquery:
    status = orders.c.status == "cancelled" if cancelled else orders.c.status != "cancelled"
    return (
        sa.select(
            _order_key().label("conversion_key"),
            orders.c.customer_id,
            orders.c.ordered_at.label("converted_at"),
            (orders.c.total - orders.c.refunded).label("revenue"),
        )
        .where(
            orders.c.workspace_id == scope.workspace_id, status, *changed.on(orders.c.updated_at)
        )
        .subquery("changed")
    )


def drop_cancelled(scope: Scope, changed: Changed) -> int:
    """A cancelled order is no conversion: its credits and control rows go."""
    gone = _changed_orders(scope, changed, cancelled=True)
    stmt = attributions.delete().where(
        attributions.c.workspace_id == scope.workspace_id,
        attributions.c.conversion_key.in_(sa.select(gone.c.conversion_key)),
    )
    return int(scope.conn.execute(stmt).rowcount or 0)


def follow_refunds(scope: Scope, changed: Changed) -> int:
    """Recorded conversions of changed orders take the order's net revenue now."""
    a = attributions.c
    net = (
        sa.select(orders.c.total - orders.c.refunded)
        .where(orders.c.workspace_id == scope.workspace_id, _order_key() == a.conversion_key)
        .scalar_subquery()
    )
    live = _changed_orders(scope, changed, cancelled=False)
    stmt = (
        attributions.update()
        .where(a.workspace_id == scope.workspace_id)
        .where(a.conversion_key.in_(sa.select(live.c.conversion_key)))
        .where(a.revenue != net)
        .values(revenue=net)
    )
    return int(scope.conn.execute(stmt).rowcount or 0)


def _window(
    kind: str, campaigns: Sequence[CampaignWindows], dialect: str
) -> sa.ColumnElement[float]:
    """A message's window for ``kind`` touches: its campaign's, else the default."""
    default = DEFAULT_WINDOWS[kind]
    own = [c for c in campaigns if c.touch_days[kind] != default]
    if not own:
        return sa.literal(default, sa.Float)
    m = messages.c
    whens = [
        (sa.and_(m.source_kind == "campaign", m.source_id == str(c.campaign_id)),
         sa.literal(c.touch_days[kind], sa.Float))
        for c in own
    ]  # fmt: skip
    return sa.case(*whens, else_=sa.literal(default, sa.Float))


def _touches(
    scope: Scope,
    conversions: sa.Subquery,
    campaigns: Sequence[CampaignWindows],
    only: Sequence[sa.ColumnElement[bool]] = (),
) -> sa.Subquery:
    """Every qualifying touch of every conversion, ranked: ``rank == 1`` is the credit."""
    dialect = scope.conn.dialect.name
    m = messages.c
    parts = []
    for weight, (kind, column) in enumerate(_TOUCHES):
        at = m[column]
        parts.append(
            sa.select(
                conversions.c.conversion_key, conversions.c.customer_id,
                conversions.c.converted_at, conversions.c.revenue, m.message_id, m.source_kind,
                m.source_id, m.step, m.variant, m.channel, sa.literal(kind).label("touch"),
                at.label("touched_at"), sa.literal(weight).label("weight"),
            )
            .join(messages, sa.and_(m.workspace_id == scope.workspace_id,
                                    m.customer_id == conversions.c.customer_id))
            .where(at.is_not(None), at <= conversions.c.converted_at, m.source_kind != "test",
                   days_between(conversions.c.converted_at, at, dialect)
                   < _window(kind, campaigns, dialect), *only)
        )  # fmt: skip
    every = sa.union_all(*parts).subquery("touches")
    rank = sa.func.row_number().over(
        partition_by=every.c.conversion_key,
        order_by=(every.c.touched_at.desc(), every.c.weight.desc(), every.c.message_id.desc()),
    )
    return sa.select(every, rank.label("rank")).subquery("ranked")


def _credits(scope: Scope, ranked: sa.Subquery) -> sa.Select[Any]:
    dialect = scope.conn.dialect.name
    r = ranked.c
    return sa.select(
        sa.literal(scope.workspace_id, sa.Uuid).label("workspace_id"),
        _new_id(dialect).label("attribution_id"),
        r.conversion_key, r.customer_id, sa.literal("message").label("kind"),
        r.source_kind, r.source_id, r.step, r.variant, r.channel, r.message_id, r.touch,
        r.revenue, r.converted_at,
        sa.literal(scope.now, attributions.c.attributed_at.type).label("attributed_at"),
    ).where(r.rank == 1)  # fmt: skip


def credit_orders(scope: Scope, changed: Changed, campaigns: Sequence[CampaignWindows]) -> int:
    """Credit each changed, live order to its last qualifying touch; returns rows added."""
    live = _changed_orders(scope, changed, cancelled=False)
    return _insert_ignoring(scope, _credits(scope, _touches(scope, live, campaigns)))


def _goal_events(scope: Scope, campaign: CampaignWindows, changed: Changed) -> sa.Subquery:
    e = events.c
    key = sa.literal("event:") + uuid_text(e.event_id, scope.conn.dialect.name)
    return (
        sa.select(
            key.label("conversion_key"),
            e.customer_id,
            e.occurred_at.label("converted_at"),
            sa.literal(0.0, sa.Float).label("revenue"),
        )
        .where(
            e.workspace_id == scope.workspace_id,
            e.name == campaign.goal_event,
            e.occurred_at >= as_of_param(campaign.frozen_at, "frozen"),
            *changed.on(e.received_at),
        )
        .subquery("goals")
    )


def credit_goal_events(scope: Scope, changed: Changed, campaign: CampaignWindows) -> int:
    """Credit the campaign's new goal events to its own messages' last qualifying touch."""
    goals = _goal_events(scope, campaign, changed)
    own = [messages.c.source_kind == "campaign", messages.c.source_id == str(campaign.campaign_id)]
    ranked = _touches(scope, goals, [campaign], own)
    return _insert_ignoring(scope, _credits(scope, ranked))


def _control(scope: Scope, source_kind: str, source_id: Any, conv: sa.Subquery) -> list[Any]:
    return [
        sa.literal(scope.workspace_id, sa.Uuid).label("workspace_id"),
        _new_id(scope.conn.dialect.name).label("attribution_id"),
        conv.c.conversion_key,
        conv.c.customer_id,
        sa.literal("control").label("kind"),
        sa.literal(source_kind).label("source_kind"),
        source_id.label("source_id"),
        conv.c.revenue,
        conv.c.converted_at,
        sa.literal(scope.now, attributions.c.attributed_at.type).label("attributed_at"),
    ]


def _in_campaign_window(
    campaign: CampaignWindows, at: Any, dialect: str
) -> list[sa.ColumnElement[bool]]:
    cr = campaign_recipients.c
    start = sa.func.coalesce(cr.send_at, as_of_param(campaign.frozen_at, "frozen"))
    return [at >= start, days_between(at, start, dialect) < campaign.window_days]


def _held_out_of(scope: Scope, campaign: CampaignWindows, conv: sa.Subquery) -> sa.Select[Any]:
    cr = campaign_recipients.c
    dialect = scope.conn.dialect.name
    source_id = sa.literal(str(campaign.campaign_id), sa.String)
    return (
        sa.select(*_control(scope, "campaign", source_id, conv))
        .join(campaign_recipients, sa.and_(cr.workspace_id == scope.workspace_id,
                                           cr.campaign_id == campaign.campaign_id,
                                           cr.customer_id == conv.c.customer_id))
        .where(cr.held_out.is_(True), *_in_campaign_window(campaign, conv.c.converted_at, dialect))
    )  # fmt: skip


def record_campaign_controls(scope: Scope, changed: Changed, campaign: CampaignWindows) -> int:
    """Held-out recipients' changed orders in the campaign's window, as control rows."""
    live = _changed_orders(scope, changed, cancelled=False)
    return _insert_ignoring(scope, _held_out_of(scope, campaign, live))


def record_goal_controls(scope: Scope, changed: Changed, campaign: CampaignWindows) -> int:
    """Held-out recipients' new goal events in the campaign's window, as control rows."""
    goals = _goal_events(scope, campaign, changed)
    return _insert_ignoring(scope, _held_out_of(scope, campaign, goals))


def record_scenario_controls(scope: Scope, changed: Changed) -> int:
    """Changed orders within a held-out scenario run's window: one control row per scenario."""
    live = _changed_orders(scope, changed, cancelled=False)
    r, s = scenario_runs.c, scenarios.c
    dialect = scope.conn.dialect.name
    rows = (
        sa.select(*_control(scope, "scenario", s.key, live))
        .join(scenario_runs, sa.and_(r.workspace_id == scope.workspace_id,
                                     r.customer_id == live.c.customer_id))
        .join(scenarios, sa.and_(s.workspace_id == scope.workspace_id,
                                 s.scenario_id == r.scenario_id))
        .where(r.held_out.is_(True), live.c.converted_at >= r.entered_at,
               days_between(live.c.converted_at, r.entered_at, dialect) < SCENARIO_WINDOW_DAYS)
    )  # fmt: skip
    return _insert_ignoring(scope, rows)


def affected_customers(
    scope: Scope, changed: Changed, goal_names: Sequence[str], goals_since: datetime | None = None
) -> sa.CompoundSelect[Any]:
    """Customers whose outcomes may have moved: changed orders, new goal events, merges.

    ``goals_since`` bounds the goal events read by when they happened (the earliest
    freeze of a goal campaign), so the index on (name, occurred_at) does the work.
    """
    o, m, e = orders.c, customer_merges.c, events.c
    parts: list[sa.Select[Any]] = [
        sa.select(o.customer_id).where(o.workspace_id == scope.workspace_id,
                                       *changed.on(o.updated_at)),
        sa.select(m.into_customer_id).where(m.workspace_id == scope.workspace_id,
                                            *changed.on(m.merged_at)),
    ]  # fmt: skip
    if goal_names:
        goal = sa.select(e.customer_id).where(
            e.workspace_id == scope.workspace_id, e.name.in_(list(goal_names)),
            *changed.on(e.received_at),
        )  # fmt: skip
        if goals_since is not None:
            goal = goal.where(e.occurred_at >= as_of_param(goals_since, "goals_since"))
        parts.append(goal)
    return sa.union(*parts)


def _outcomes(scope: Scope, campaign: CampaignWindows) -> dict[str, Any]:
    """Correlated aggregates of one recipient's conversions in the campaign's window."""
    dialect = scope.conn.dialect.name
    cr = campaign_recipients.c
    if campaign.goal_event is None:
        at, value = orders.c.ordered_at, orders.c.total - orders.c.refunded
        o = orders.c
        where = [o.workspace_id == scope.workspace_id, o.customer_id == cr.customer_id,
                 o.status != "cancelled"]  # fmt: skip
    else:
        at, value = events.c.occurred_at, sa.literal(0.0, sa.Float)
        e = events.c
        where = [e.workspace_id == scope.workspace_id, e.customer_id == cr.customer_id,
                 e.name == campaign.goal_event]  # fmt: skip
    where += _in_campaign_window(campaign, at, dialect)

    def agg(func: Any) -> Any:
        return sa.select(func).where(*where).scalar_subquery()

    return {
        "conversions": agg(sa.func.count()),
        "revenue": agg(sa.func.coalesce(sa.func.sum(value), 0.0)),
        "converted_at": agg(sa.func.min(at)),
    }


def refresh_recipients(
    scope: Scope, campaign: CampaignWindows, customers: sa.CompoundSelect[Any]
) -> int:
    """Recompute the outcomes of the campaign's recipients among ``customers`` (both groups)."""
    cr = campaign_recipients.c
    stmt = (
        campaign_recipients.update()
        .where(cr.workspace_id == scope.workspace_id, cr.campaign_id == campaign.campaign_id)
        .where(cr.customer_id.in_(customers))
        .values(**_outcomes(scope, campaign))
    )
    return int(scope.conn.execute(stmt).rowcount or 0)
