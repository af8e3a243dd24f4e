"""Subscription churn and revenue retention by month, and customer-success phase counts.

**Contracts.** A contract is *active* at instant ``t`` when ``started_at ≤ t`` and it
has not ended by ``t``; it ends at ``cancelled_at`` (or, for a ``cancelled``
contract without that date, at its last update). Paused contracts count as
active: the store keeps no pause dates. Its *MRR* is ``amount × 30 / interval_days``.
The store keeps only a contract's current amount, so an in-place price change is
invisible; up- and down-grades show when a customer adds or cancels contracts.

**Months** are local calendar months (workspace time zone). For each month, with
``start`` its first instant and ``end`` the next month's first instant (or ``as_of``
for the running month), each customer's MRR is summed over their active contracts
at ``start`` and at ``end``:

- *churned*: active at start, no active contract at end; churned MRR is their
  start MRR;
- *contraction*: active at both, end MRR < start MRR; the difference;
- *expansion*: active at both, end MRR > start MRR; the difference;
- *new*: no active contract at start, active at end; their end MRR.

``churn_rate = churned customers / customers at start``;
``GRR = (start MRR − churned MRR − contraction) / start MRR``;
``NRR = (start MRR − churned MRR − contraction + expansion) / start MRR``.
Rates are None when their denominator is 0. A contract that starts and ends
inside one month touches neither boundary and counts in none of these.

Subscriptions carry no currency: amounts are summed as stored, so ``currency`` is
accepted for a uniform signature and must match the orders' currency when given.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.analytics.base import check_window, purchases, resolve_currency
from kizuna.analytics.purchase_sequence import shape
from kizuna.analytics.sql import as_of_param, days_between
from kizuna.store.frames import read_frame
from kizuna.store.tables import events, subscriptions
from kizuna.store.types import UTCDateTime
from kizuna.store.workspaces import Workspace

__all__ = [
    "ADVOCACY_EVENTS",
    "PHASE_COLUMNS",
    "SUBSCRIPTION_COLUMNS",
    "SUPPORT_EVENTS",
    "contract_end",
    "subscription_retention",
    "success_phases",
]

SUBSCRIPTION_COLUMNS = {
    "month": "str",
    "complete": "bool",
    "customers_start": "int",
    "contracts_start": "int",
    "mrr_start": "float",
    "new_customers": "int",
    "new_mrr": "float",
    "churned_customers": "int",
    "churned_mrr": "float",
    "contraction_mrr": "float",
    "expansion_mrr": "float",
    "contracts_ended": "int",
    "customers_end": "int",
    "mrr_end": "float",
    "churn_rate": "float?",
    "grr": "float?",
    "nrr": "float?",
}
_MONTH_DAYS = 30.0


def contract_end(table: sa.Table = subscriptions) -> sa.ColumnElement[datetime]:
    """When a contract stopped: ``cancelled_at``, else the last update of a cancelled one."""
    fallback = sa.case((table.c.status == "cancelled", table.c.updated_at))
    return sa.func.coalesce(table.c.cancelled_at, fallback, type_=UTCDateTime)


def _months(
    first: datetime, as_of: datetime, zone: ZoneInfo
) -> list[tuple[str, datetime, datetime]]:
    """(``YYYY-MM``, start, next month's start) for each local month up to ``as_of``'s."""
    local = first.astimezone(zone)
    year, month = local.year, local.month
    months = []
    while (start := datetime(year, month, 1, tzinfo=zone)) <= as_of:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        months.append(
            (f"{start.year:04d}-{start.month:02d}", start, datetime(year, month, 1, tzinfo=zone))
        )
    return months


def _month_table(months: list[tuple[str, datetime, datetime]], as_of: datetime) -> sa.Subquery:
    """The months as rows; the running month ends at ``as_of``."""
    rows = [
        sa.select(
            sa.literal(label, sa.String).label("month"),
            sa.bindparam(f"s{i}", start, type_=UTCDateTime).label("starts"),
            sa.bindparam(f"e{i}", min(end, as_of), type_=UTCDateTime).label("ends"),
        )
        for i, (label, start, end) in enumerate(months)
    ]
    return sa.union_all(*rows).subquery("months")


def _per_customer(workspace: Workspace, months: sa.Subquery) -> sa.Subquery:
    s, m = subscriptions.c, months.c
    ended = contract_end()
    mrr = sa.cast(s.amount, sa.Float) * _MONTH_DAYS / s.interval_days

    def active(at: Any) -> sa.ColumnElement[bool]:
        return sa.and_(s.started_at <= at, sa.or_(ended.is_(None), ended > at))

    def total(condition: sa.ColumnElement[bool], value: Any) -> sa.ColumnElement[Any]:
        return sa.func.sum(sa.case((condition, value), else_=0))

    return (
        sa.select(
            m.month,
            s.customer_id,
            total(active(m.starts), 1).label("contracts_start"),
            total(active(m.ends), 1).label("contracts_end"),
            total(active(m.starts), mrr).label("mrr_start"),
            total(active(m.ends), mrr).label("mrr_end"),
            total(sa.and_(active(m.starts), ended <= m.ends), 1).label("ended"),
        )
        .join_from(
            months,
            subscriptions,
            sa.and_(s.started_at <= m.ends, sa.or_(ended.is_(None), ended > m.starts)),
        )
        .where(s.workspace_id == workspace.workspace_id)
        .group_by(m.month, s.customer_id)
        .subquery("by_customer")
    )


def _per_month(by_customer: sa.Subquery) -> sa.Select[Any]:
    c = by_customer.c
    was, now = c.contracts_start > 0, c.contracts_end > 0

    def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.cast(sa.func.sum(sa.case((condition, 1), else_=0)), sa.Integer)

    def money(condition: sa.ColumnElement[bool], value: Any) -> sa.ColumnElement[float]:
        return sa.cast(sa.func.sum(sa.case((condition, value), else_=0.0)), sa.Float)

    both = sa.and_(was, now)
    return sa.select(
        c.month,
        count(was).label("customers_start"),
        sa.cast(sa.func.sum(c.contracts_start), sa.Integer).label("contracts_start"),
        money(was, c.mrr_start).label("mrr_start"),
        count(sa.and_(~was, now)).label("new_customers"),
        money(sa.and_(~was, now), c.mrr_end).label("new_mrr"),
        count(sa.and_(was, ~now)).label("churned_customers"),
        money(sa.and_(was, ~now), c.mrr_start).label("churned_mrr"),
        money(sa.and_(both, c.mrr_end < c.mrr_start), c.mrr_start - c.mrr_end).label(
            "contraction_mrr"
        ),
        money(sa.and_(both, c.mrr_end > c.mrr_start), c.mrr_end - c.mrr_start).label(
            "expansion_mrr"
        ),
        sa.cast(sa.func.sum(c.ended), sa.Integer).label("contracts_ended"),
        count(now).label("customers_end"),
        money(now, c.mrr_end).label("mrr_end"),
    ).group_by(c.month)


def subscription_retention(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
) -> pd.DataFrame:
    """Per local month: contracts and MRR at start, new, churned, contraction, expansion, rates.

    Columns: ``month`` (``YYYY-MM``); ``complete`` (False for ``as_of``'s month, measured
    to ``as_of``); ``customers_start, contracts_start, mrr_start``; ``new_customers,
    new_mrr``; ``churned_customers, churned_mrr``; ``contraction_mrr, expansion_mrr``;
    ``contracts_ended`` (contracts active at start that ended in the month);
    ``customers_end, mrr_end``; ``churn_rate, grr, nrr`` (None with a zero
    denominator). Months run from ``since`` (default: the first contract) to
    ``as_of``; empty (same columns) when there is no contract by ``as_of``.
    """
    check_window(as_of, since)
    if currency is not None:
        resolve_currency(conn, workspace.workspace_id, as_of, currency)
    first = conn.execute(
        sa.select(sa.func.min(subscriptions.c.started_at)).where(
            subscriptions.c.workspace_id == workspace.workspace_id,
            subscriptions.c.started_at <= sa.bindparam("as_of", as_of, type_=UTCDateTime),
        )
    ).scalar()
    if first is None:
        return shape(pd.DataFrame(), SUBSCRIPTION_COLUMNS)
    months = _months(since or first, as_of, ZoneInfo(workspace.time_zone))
    if not months:
        return shape(pd.DataFrame(), SUBSCRIPTION_COLUMNS)
    rows = read_frame(conn, _per_month(_per_customer(workspace, _month_table(months, as_of))))
    frame = pd.DataFrame({"month": [label for label, _, _ in months]})
    frame = frame.merge(rows, on="month", how="left")
    for name in SUBSCRIPTION_COLUMNS:
        if name in rows and name != "month":  # months without contracts read 0
            frame[name] = pd.to_numeric(frame[name]).fillna(0)
    frame["complete"] = [end <= as_of for _, _, end in months]
    frame["churn_rate"] = frame["churned_customers"] / frame["customers_start"].where(
        frame["customers_start"] > 0
    )
    start = frame["mrr_start"].where(frame["mrr_start"] > 0)
    kept = frame["mrr_start"] - frame["churned_mrr"] - frame["contraction_mrr"]
    frame["grr"] = kept / start
    frame["nrr"] = (kept + frame["expansion_mrr"]) / start
    return shape(frame, SUBSCRIPTION_COLUMNS)


# --- customer-success phases ----------------------------------------------------------

ADVOCACY_EVENTS = (
    "Referral",
    "Referral Sent",
    "Referral Completed",
    "Review",
    "Review Submitted",
    "Product Reviewed",
)
SUPPORT_EVENTS = ("Call Center Contact", "Support Ticket Created", "Support Contacted")
PHASE_COLUMNS = {
    "phase": "str",
    "label_ja": "str",
    "derived": "bool",
    "customers": "int?",
    "share": "float?",
    "definition": "str",
}
_PHASES = (
    ("onboarding", "オンボーディング",
     "first purchase or contract start within {onboarding_days} days before as_of"),
    ("support", "サポート", "a support contact event (SUPPORT_EVENTS)"),
    ("adoption", "活用・定着", "two or more net purchases"),
    ("renewal", "更新・継続", "a subscription contract renewed at least once"),
    ("expansion", "拡大 (アップセル・クロスセル)",
     "net purchases in the last {period_days} days above the {period_days} days before "
     "(which had some), or subscription MRR above its level {period_days} days ago"),
    ("advocacy", "推奨・ロイヤル化", "a referral or review event (ADVOCACY_EVENTS)"),
)  # fmt: skip


def _mrr_grew(workspace: Workspace, as_of: datetime, period: timedelta) -> sa.Select[Any]:
    """Customers whose subscription MRR is above a positive MRR ``period`` earlier."""
    s = subscriptions.c
    ended = contract_end()
    mrr = sa.cast(s.amount, sa.Float) * _MONTH_DAYS / s.interval_days

    def at(moment: datetime, name: str) -> sa.ColumnElement[float]:
        when = sa.bindparam(name, moment, type_=UTCDateTime)
        active = sa.and_(s.started_at <= when, sa.or_(ended.is_(None), ended > when))
        return sa.func.sum(sa.case((active, mrr), else_=0.0))

    now, then = at(as_of, "mrr_now"), at(as_of - period, "mrr_then")
    return (
        sa.select(s.customer_id)
        .where(s.workspace_id == workspace.workspace_id)
        .group_by(s.customer_id)
        .having(sa.and_(then > 0, now > then))
    )


def _expanded(
    workspace: Workspace, as_of: datetime, code: str | None, period: timedelta
) -> sa.CompoundSelect[Any]:
    """Customers whose spend or subscription MRR grew over the last ``period``."""
    bought = purchases(workspace.workspace_id, as_of, currency=code).subquery("recent")
    cut = sa.bindparam("period_cut", as_of - period, type_=UTCDateTime)
    window_start = sa.bindparam("period_start", as_of - 2 * period, type_=UTCDateTime)
    recent = sa.func.sum(sa.case((bought.c.ordered_at > cut, bought.c.amount), else_=0.0))
    before = sa.func.sum(sa.case((bought.c.ordered_at <= cut, bought.c.amount), else_=0.0))
    spend = (
        sa.select(bought.c.customer_id)
        .where(bought.c.ordered_at > window_start)
        .group_by(bought.c.customer_id)
        .having(sa.and_(before > 0, recent > before))
    )
    return sa.union(spend, _mrr_grew(workspace, as_of, period))


def _named_events(workspace: Workspace, as_of: datetime, names: tuple[str, ...]) -> sa.Select[Any]:
    return sa.select(events.c.customer_id).where(
        events.c.workspace_id == workspace.workspace_id,
        events.c.name.in_(names),
        events.c.occurred_at <= sa.bindparam("events_as_of", as_of, type_=UTCDateTime),
    )


def _population(
    workspace: Workspace, as_of: datetime, since: datetime | None, code: str | None
) -> sa.Subquery:
    bought = purchases(workspace.workspace_id, as_of, currency=code).subquery("bought")
    s = subscriptions.c
    touches = sa.union_all(
        sa.select(bought.c.customer_id, bought.c.ordered_at.label("at")),
        sa.select(s.customer_id, s.started_at.label("at")).where(
            s.workspace_id == workspace.workspace_id,
            s.started_at <= sa.bindparam("touch_as_of", as_of, type_=UTCDateTime),
        ),
    ).subquery("touches")
    first = sa.func.min(touches.c.at)
    query = sa.select(touches.c.customer_id, first.label("first_at")).group_by(
        touches.c.customer_id
    )
    if since is not None:
        query = query.having(first >= sa.bindparam("since", since, type_=UTCDateTime))
    return query.subquery("population")


def success_phases(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    onboarding_days: int = 30,
    period_days: int = 365,
) -> pd.DataFrame:
    """Customers in each customer-success phase as of ``as_of`` (phases overlap).

    The population is every customer with a net purchase or a contract start by
    ``as_of`` (first of them on or after ``since``). Columns: ``phase`` (onboarding,
    support, adoption, renewal, expansion, advocacy); ``label_ja``; ``derived``
    (False when the store holds no data for the phase — no contracts for renewal,
    no matching events for support and advocacy); ``customers`` and ``share`` (of
    the population; None when not derived); ``definition``. Empty when the
    population is empty.
    """
    check_window(as_of, since)
    code = resolve_currency(conn, workspace.workspace_id, as_of, currency)
    pop = _population(workspace, as_of, since, code)
    who = pop.c.customer_id
    bought = purchases(workspace.workspace_id, as_of, currency=code).subquery("counted")
    repeaters = (
        sa.select(bought.c.customer_id).group_by(bought.c.customer_id).having(sa.func.count() >= 2)
    )
    s = subscriptions.c
    at = sa.bindparam("renewal_as_of", as_of, type_=UTCDateTime)
    renewed = sa.select(s.customer_id).where(
        s.workspace_id == workspace.workspace_id, s.renewed_at <= at
    )
    age = days_between(as_of_param(as_of, "onboard_as_of"), pop.c.first_at, conn.dialect.name)
    flags = {
        "onboarding": age < onboarding_days,
        "support": who.in_(_named_events(workspace, as_of, SUPPORT_EVENTS)),
        "adoption": who.in_(repeaters),
        "renewal": who.in_(renewed),
        "expansion": who.in_(_expanded(workspace, as_of, code, timedelta(days=period_days))),
        "advocacy": who.in_(_named_events(workspace, as_of, ADVOCACY_EVENTS)),
    }
    counts = [
        sa.cast(sa.func.sum(sa.case((f, 1), else_=0)), sa.Integer).label(k)
        for k, f in flags.items()
    ]
    row = conn.execute(sa.select(sa.func.count().label("population"), *counts)).one()._mapping
    population = int(row["population"])
    if population == 0:
        return shape(pd.DataFrame(), PHASE_COLUMNS)
    has = _sources_present(conn, workspace, as_of)
    frame = pd.DataFrame(
        [
            {
                "phase": key,
                "label_ja": label,
                "derived": has.get(key, True),
                "customers": int(row[key]) if has.get(key, True) else None,
                "definition": text.format(onboarding_days=onboarding_days, period_days=period_days),
            }
            for key, label, text in _PHASES
        ]
    )
    frame["share"] = frame["customers"].map(lambda n: None if n is None else n / population)
    return shape(frame, PHASE_COLUMNS)


def _sources_present(conn: Connection, workspace: Workspace, as_of: datetime) -> dict[str, bool]:
    """Whether the store holds the data a phase needs (contracts, support or advocacy events)."""
    s = subscriptions.c
    contracts = sa.select(s.customer_id).where(
        s.workspace_id == workspace.workspace_id,
        s.started_at <= sa.bindparam("contracts_as_of", as_of, type_=UTCDateTime),
    )
    query = sa.select(
        sa.exists(contracts).label("renewal"),
        sa.exists(_named_events(workspace, as_of, SUPPORT_EVENTS)).label("support"),
        sa.exists(_named_events(workspace, as_of, ADVOCACY_EVENTS)).label("advocacy"),
    )
    return {k: bool(v) for k, v in conn.execute(query).one()._mapping.items()}
