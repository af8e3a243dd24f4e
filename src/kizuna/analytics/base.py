"""What every analysis reads: a workspace's net purchases up to an analysis date.

A *purchase* is an order that was not cancelled, was placed at or before the
analysis date (orders dated in the future are left out) and still has a positive
amount after refunds: ``amount = total - refunded``. A fully returned or zero-value
order is not a purchase. Amounts are never summed across currencies: a workspace
whose orders use more than one currency must name the one to analyse.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.analytics.sql import as_of_param
from kizuna.errors import InvalidInput, Problem
from kizuna.store.tables import orders
from kizuna.store.types import UTCDateTime

__all__ = ["NO_VALUE", "purchases", "resolve_currency"]

NO_VALUE = "(none)"  # a missing category, brand or taste, as analyses show it


def purchases(
    workspace_id: uuid.UUID,
    as_of: datetime,
    *,
    since: datetime | None = None,
    currency: str | None = None,
) -> sa.Select[tuple[object, ...]]:
    """Net purchases of one workspace placed in ``[since, as_of]``, one row per order."""
    amount = (orders.c.total - orders.c.refunded).label("amount")
    query = sa.select(
        orders.c.customer_id,
        orders.c.order_id,
        orders.c.ordered_at,
        orders.c.channel,
        orders.c.currency,
        orders.c.discount,
        orders.c.coupon,
        amount,
    ).where(
        orders.c.workspace_id == workspace_id,
        orders.c.status != "cancelled",
        orders.c.ordered_at <= as_of_param(as_of),
        orders.c.total - orders.c.refunded > 0,
    )
    if since is not None:
        query = query.where(orders.c.ordered_at >= sa.bindparam("since", since, type_=UTCDateTime))
    if currency is not None:
        query = query.where(orders.c.currency == currency)
    return query


def resolve_currency(
    conn: Connection, workspace_id: uuid.UUID, as_of: datetime, currency: str | None = None
) -> str | None:
    """The one currency to analyse; ``None`` when there are no purchases at all.

    Raises ``InvalidInput`` when purchases use several currencies and none was named,
    or when the named one has no purchases.
    """
    base = purchases(workspace_id, as_of).subquery()
    rows = conn.execute(sa.select(base.c.currency, sa.func.count()).group_by(base.c.currency)).all()
    counts = {str(code): int(n) for code, n in rows}
    if currency is not None:
        code = currency.upper()
        if code not in counts and counts:
            known = ", ".join(sorted(counts))
            message = f"no purchases in {code}; orders use {known}"
            raise InvalidInput(Problem("unknown_currency", message, "currency"))
        return code
    if len(counts) > 1:
        listed = ", ".join(f"{code} ({n:,} orders)" for code, n in sorted(counts.items()))
        raise InvalidInput(
            Problem(
                "mixed_currencies",
                f"orders use several currencies: {listed}; choose one with currency",
                "currency",
            )
        )
    return next(iter(counts), None)
