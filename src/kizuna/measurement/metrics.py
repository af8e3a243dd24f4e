"""Message metrics, group outcomes and workspace rates: each one SQL aggregate.

``message_metrics`` counts a campaign's or scenario's messages (sent, delivered,
opened and clicked by a person, unsubscribed, bounced, complained) with their
attributed conversions and revenue (``attributions`` of kind ``message``), by any
of variant, step, channel, local day of sending and RFM segment; the audience
(targeted, held out) comes from ``campaign_recipients`` or ``scenario_runs`` in
the same statement, where a dimension means something for it (variant, RFM
segment). ``group_outcomes`` gives treatment and control sums for uplift tests:
for a campaign from the outcomes the attribution job stored per recipient, for a
scenario per run (a customer entering twice counts twice, each entry drawn
separately) from the orders within ``SCENARIO_WINDOW_DAYS`` of entering.
Rates are floats, NaN when their denominator is 0.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from kizuna.analytics.sql import days_between, local_day
from kizuna.errors import InvalidInput, Problem
from kizuna.store.attributions import SCENARIO_WINDOW_DAYS
from kizuna.store.scope import Scope
from kizuna.store.tables import customer_metrics, messages, orders, scenario_runs, scenarios
from kizuna.store.tables_campaigns import attributions, campaign_recipients
from kizuna.store.workspaces import get_workspace

__all__ = [
    "COUNTS",
    "DIMENSIONS",
    "METRIC_COLUMNS",
    "GroupOutcome",
    "Source",
    "group_outcomes",
    "message_metrics",
    "workspace_rates",
]

Source = Literal["campaign", "scenario"]
DIMENSIONS = ("variant", "step", "channel", "day", "rfm_segment")
_AUDIENCE_DIMENSIONS = frozenset({"variant", "rfm_segment"})  # the audience has these too
COUNTS = (
    "targeted", "held_out", "sent", "delivered", "unique_opens", "clicks", "conversions",
    "revenue", "unsubscribes", "bounces", "complaints",
)  # fmt: skip
METRIC_COLUMNS = (
    "targeted", "held_out", "sent", "delivered", "delivery_rate", "unique_opens", "open_rate",
    "clicks", "ctr", "click_to_open", "conversions", "cvr", "revenue", "revenue_per_recipient",
    "unsubscribes", "bounces", "complaints",
)  # fmt: skip
_RATES = (
    ("delivery_rate", "delivered", "sent"), ("open_rate", "unique_opens", "delivered"),
    ("ctr", "clicks", "delivered"), ("click_to_open", "clicks", "unique_opens"),
    ("cvr", "conversions", "delivered"), ("revenue_per_recipient", "revenue", "sent"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class GroupOutcome:
    """Sums over one group's customers, enough for proportion and Welch tests."""

    group: str  # "treatment" | "control"
    variant: str | None  # None = all variants together
    customers: int
    converters: int  # customers with >= 1 conversion in the window
    revenue: float  # sum of revenue per customer
    revenue_sq: float  # sum of squared revenue per customer (Welch from aggregates)


def _flag(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.case((condition, 1), else_=0)


def _check(source_kind: str, by: Sequence[str]) -> None:
    problems = []
    if source_kind not in ("campaign", "scenario"):
        problems.append(Problem("unknown_source", "source is campaign or scenario", "source_kind"))
    for name in by:
        if name not in DIMENSIONS:
            known = ", ".join(DIMENSIONS)
            problems.append(Problem("unknown_dimension", f"no dimension {name!r}; {known}", "by"))
    if len(set(by)) < len(by):
        problems.append(Problem("repeated_dimension", "a dimension is named twice", "by"))
    if problems:
        raise InvalidInput(problems)


def _campaign_id(source_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(source_id)
    except ValueError:
        raise InvalidInput(
            Problem("invalid_campaign", f"{source_id!r} is no campaign id", "source_id")
        ) from None


def _dimensions(scope: Scope, by: Sequence[str]) -> dict[str, Any]:
    """The message columns each dimension reads."""
    m = messages.c
    dims: dict[str, Any] = {"variant": m.variant, "step": m.step, "channel": m.channel,
                            "rfm_segment": customer_metrics.c.rfm_segment}  # fmt: skip
    if "day" in by:  # the local date of sending, in the workspace's zone
        zone = get_workspace(scope.conn, scope.workspace_id).time_zone
        dims["day"] = local_day(m.sent_at, zone, scope.conn.dialect.name)
    return dims


def _grouped(by: Sequence[str], dims: dict[str, Any], values: dict[str, Any], joined: Any,
             where: Sequence[sa.ColumnElement[bool]]) -> Any:  # fmt: skip
    """One branch: its counts summed per combination of ``by`` (every COUNTS column, 0 if not
    its own), so the branches' rows add up in the outer sum."""
    keys = [dims[d] for d in by]
    sums = {k: values.get(k, sa.literal(0)) for k in COUNTS}
    query = sa.select(*(k.label(d) for d, k in zip(by, keys, strict=True)),
                      *(v.label(k) for k, v in sums.items()))  # fmt: skip
    query = query.select_from(joined).where(*where)
    return query.group_by(*keys) if keys else query


def _message_part(scope: Scope, source_kind: str, source_id: str, by: Sequence[str]) -> Any:
    """What happened to the messages (each aggregate reads the message row only)."""
    m = messages.c
    delivered = sa.or_(m.delivered_at.is_not(None), m.status == "delivered")
    values = {
        "sent": sa.func.count(m.sent_at), "delivered": sa.func.sum(_flag(delivered)),
        "unique_opens": sa.func.count(m.opened_at), "clicks": sa.func.count(m.clicked_at),
        "unsubscribes": sa.func.count(m.unsubscribed_at),
        "bounces": sa.func.sum(_flag(m.status == "bounced")),
        "complaints": sa.func.sum(_flag(m.status == "complained")),
    }  # fmt: skip
    joined = _with_rfm(scope, messages, m.customer_id) if "rfm_segment" in by else messages
    where = [m.workspace_id == scope.workspace_id, m.source_kind == source_kind,
             m.source_id == source_id]  # fmt: skip
    return _grouped(by, _dimensions(scope, by), values, joined, where)


def _credit_part(scope: Scope, source_kind: str, source_id: str, by: Sequence[str]) -> Any:
    """The conversions credited to the messages; a credit carries its message's variant, step
    and channel, so only ``day`` reads the message."""
    m, a = messages.c, attributions.c
    values = {"conversions": sa.func.count(), "revenue": sa.func.sum(a.revenue)}
    dims = {**_dimensions(scope, by), "variant": a.variant, "step": a.step, "channel": a.channel}
    joined: Any = attributions
    if "day" in by:
        on = sa.and_(m.workspace_id == scope.workspace_id, m.message_id == a.message_id)
        joined = joined.join(messages, on)
    if "rfm_segment" in by:
        joined = _with_rfm(scope, joined, a.customer_id)
    where = [a.workspace_id == scope.workspace_id, a.kind == "message",
             a.source_kind == source_kind, a.source_id == source_id]  # fmt: skip
    return _grouped(by, dims, values, joined, where)


def _with_rfm(scope: Scope, joined: Any, customer_id: Any) -> Any:
    cm = customer_metrics.c
    return joined.outerjoin(
        customer_metrics,
        sa.and_(cm.workspace_id == scope.workspace_id, cm.customer_id == customer_id),
    )


def _audience_part(scope: Scope, source_kind: str, source_id: str, by: Sequence[str]) -> Any:
    """Targeted and held out, from the frozen audience or the scenario's runs."""
    if source_kind == "campaign":
        cr = campaign_recipients.c
        joined: Any = campaign_recipients
        variant, held, customer = cr.variant, cr.held_out, cr.customer_id
        where = [cr.workspace_id == scope.workspace_id, cr.campaign_id == _campaign_id(source_id)]
    else:
        r, s = scenario_runs.c, scenarios.c
        joined = scenario_runs
        variant, held, customer = r.variant, r.held_out, r.customer_id
        which = sa.select(s.scenario_id).where(s.workspace_id == scope.workspace_id,
                                               s.key == source_id)  # fmt: skip
        where = [r.workspace_id == scope.workspace_id, r.scenario_id.in_(which)]
    if "rfm_segment" in by:
        joined = _with_rfm(scope, joined, customer)
    dims = {"variant": variant, "rfm_segment": customer_metrics.c.rfm_segment}
    values = {"targeted": sa.func.count(), "held_out": sa.func.sum(_flag(held.is_(True)))}
    return _grouped(by, dims, values, joined, where)


def message_metrics(
    scope: Scope, source_kind: Source, source_id: str, by: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per combination of ``by`` (none: one row); columns: ``by``, then METRIC_COLUMNS.

    ``targeted`` and ``held_out`` are NaN when ``by`` holds step, channel or day.
    Raises InvalidInput for an unknown source kind or dimension.
    """
    by = list(by)
    _check(source_kind, by)
    parts = [
        _message_part(scope, source_kind, source_id, by),
        _credit_part(scope, source_kind, source_id, by),
    ]
    audience = set(by) <= _AUDIENCE_DIMENSIONS
    if audience:
        parts.append(_audience_part(scope, source_kind, source_id, by))
    rows = sa.union_all(*parts).subquery("rows")
    keys = [rows.c[d] for d in by]
    query = sa.select(
        *keys, *(sa.func.coalesce(sa.func.sum(rows.c[k]), 0).label(k) for k in COUNTS)
    )
    query = query.group_by(*keys).order_by(*keys) if keys else query
    found = pd.DataFrame(scope.conn.execute(query).all(), columns=[*by, *COUNTS])
    return _with_rates(found, by, audience)


def _with_rates(found: pd.DataFrame, by: Sequence[str], audience: bool) -> pd.DataFrame:
    for column in by:  # a missing variant, step or segment is None, not NaN
        found[column] = found[column].astype(object).where(found[column].notna(), None)
    for column in COUNTS:
        found[column] = found[column].astype(float if column == "revenue" else "int64")
    if not audience:
        found["targeted"] = found["held_out"] = np.nan
    for name, top, bottom in _RATES:
        denominator = found[bottom].astype(float)
        found[name] = (found[top].astype(float) / denominator.where(denominator > 0)).astype(float)
    return found[[*by, *METRIC_COLUMNS]].reset_index(drop=True)


def _campaign_units(scope: Scope, source_id: str) -> sa.Subquery:
    cr = campaign_recipients.c
    return (
        sa.select(cr.held_out, cr.variant, cr.conversions.label("conversions"),
                  cr.revenue.label("revenue"))
        .where(cr.workspace_id == scope.workspace_id, cr.campaign_id == _campaign_id(source_id))
        .subquery("units")
    )  # fmt: skip


def _scenario_units(scope: Scope, source_id: str) -> sa.Subquery:
    """One row per run: its orders within the window after entering."""
    r, s, o = scenario_runs.c, scenarios.c, orders.c
    dialect = scope.conn.dialect.name
    which = sa.select(s.scenario_id).where(s.workspace_id == scope.workspace_id, s.key == source_id)
    bought = sa.and_(
        o.workspace_id == scope.workspace_id, o.customer_id == r.customer_id,
        o.status != "cancelled", o.ordered_at >= r.entered_at,
        days_between(o.ordered_at, r.entered_at, dialect) < SCENARIO_WINDOW_DAYS,
    )  # fmt: skip
    return (
        sa.select(r.held_out, r.variant, sa.func.count(o.order_id).label("conversions"),
                  sa.func.coalesce(sa.func.sum(o.total - o.refunded), 0.0).label("revenue"))
        .select_from(scenario_runs.outerjoin(orders, bought))
        .where(r.workspace_id == scope.workspace_id, r.scenario_id.in_(which))
        .group_by(r.run_id, r.held_out, r.variant)
        .subquery("units")
    )  # fmt: skip


def group_outcomes(
    scope: Scope, source_kind: Source, source_id: str, by_variant: bool = False
) -> list[GroupOutcome]:
    """Treatment (not held out) and control (held out) sums, overall or per variant.

    Both groups are always present (zeros when empty), per variant seen when
    ``by_variant``; treatment comes before control.
    """
    _check(source_kind, ())
    units = (_campaign_units if source_kind == "campaign" else _scenario_units)(scope, source_id)
    u = units.c
    keys: list[Any] = [u.held_out, u.variant] if by_variant else [u.held_out]
    query = sa.select(
        *keys, sa.func.count(), sa.func.coalesce(sa.func.sum(_flag(u.conversions > 0)), 0),
        sa.func.coalesce(sa.func.sum(u.revenue), 0.0),
        sa.func.coalesce(sa.func.sum(u.revenue * u.revenue), 0.0),
    ).group_by(*keys)  # fmt: skip
    found: dict[tuple[bool, str | None], tuple[int, int, float, float]] = {}
    for row in scope.conn.execute(query).all():
        variant = row[1] if by_variant else None
        found[(bool(row[0]), variant)] = tuple(row[-4:])
    variants = sorted({v for _, v in found}, key=lambda v: (v is not None, v or "")) or [None]
    return [
        GroupOutcome(group, variant, int(n), int(c), float(rev), float(sq))
        for variant in variants
        for group, held in (("treatment", False), ("control", True))
        for n, c, rev, sq in [found.get((held, variant), (0, 0, 0.0, 0.0))]
    ]


def workspace_rates(scope: Scope) -> pd.DataFrame:
    """One row per campaign and scenario with sends in the workspace: source_kind,
    source_id, sent, delivery_rate, open_rate, ctr, cvr (for the workspace medians)."""
    m, a = messages.c, attributions.c
    kinds = ("campaign", "scenario")
    delivered = sa.or_(m.delivered_at.is_not(None), m.status == "delivered")
    sends = (
        sa.select(m.source_kind, m.source_id,
                  sa.func.sum(_flag(m.sent_at.is_not(None))).label("sent"),
                  sa.func.sum(_flag(delivered)).label("delivered"),
                  sa.func.sum(_flag(m.opened_at.is_not(None))).label("unique_opens"),
                  sa.func.sum(_flag(m.clicked_at.is_not(None))).label("clicks"))
        .where(m.workspace_id == scope.workspace_id, m.source_kind.in_(kinds),
               m.source_id.is_not(None))
        .group_by(m.source_kind, m.source_id)
        .subquery("sends")
    )  # fmt: skip
    credited = (
        sa.select(a.source_kind, a.source_id, sa.func.count().label("conversions"))
        .where(a.workspace_id == scope.workspace_id, a.kind == "message",
               a.source_kind.in_(kinds))
        .group_by(a.source_kind, a.source_id)
        .subquery("credited")
    )  # fmt: skip
    s, c = sends.c, credited.c
    on = sa.and_(c.source_kind == s.source_kind, c.source_id == s.source_id)
    query = (
        sa.select(s.source_kind, s.source_id, s.sent, s.delivered, s.unique_opens, s.clicks,
                  sa.func.coalesce(c.conversions, 0))
        .select_from(sends.outerjoin(credited, on))
        .where(s.sent > 0)
        .order_by(s.source_kind, s.source_id)
    )  # fmt: skip
    columns = ["source_kind", "source_id", "sent", "delivered", "unique_opens", "clicks",
               "conversions"]  # fmt: skip
    found = pd.DataFrame(scope.conn.execute(query).all(), columns=columns)
    for name, top, bottom in _RATES[:3] + _RATES[4:5]:
        denominator = found[bottom].astype(float)
        found[name] = (found[top].astype(float) / denominator.where(denominator > 0)).astype(float)
    found["sent"] = found["sent"].astype("int64")
    return found[["source_kind", "source_id", "sent", "delivery_rate", "open_rate", "ctr", "cvr"]]
