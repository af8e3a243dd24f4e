"""What every analysis reads: a workspace's net purchases up to an analysis date.

A *purchase* is an order that was not cancelled, was placed at or before the
analysis date (orders dated in the future are left out) and still has a positive
amount after refunds: ``amount = total - refunded``. A fully returned or zero-value
order is not a purchase. Amounts are never summed across currencies: a workspace
whose orders use more than one currency must name the one to analyse.

``purchase_window`` and ``net_lines`` give the window's purchases and their order
lines; queries over them carry ``currency_bounds`` so that ``read_checked`` checks
the currencies on the same read instead of a separate query first.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.analytics.sql import as_of_param
from kizuna.errors import InvalidInput, Problem
from kizuna.store.frames import read_frame
from kizuna.store.tables import order_items, orders
from kizuna.store.workspaces import Workspace

__all__ = [
    "CURRENCY_BOUNDS",
    "NO_VALUE",
    "check_currencies",
    "check_window",
    "currency_bounds",
    "net_lines",
    "purchase_window",
    "purchases",
    "read_checked",
    "resolve_currency",
    "rolled_up_bounds",
]

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
        query = query.where(orders.c.ordered_at >= as_of_param(since, "since"))
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


# --- one read of a window, its currencies checked on the way --------------------------

CURRENCY_BOUNDS = ("currency_min", "currency_max")  # columns carrying a window's currencies


def check_window(as_of: datetime, since: datetime | None) -> None:
    """Raise ``InvalidInput`` for a naive ``as_of``/``since`` or ``since`` after ``as_of``."""
    problems = [
        Problem("naive_datetime", "give a time zone", name)
        for name, value in (("as_of", as_of), ("since", since))
        if value is not None and value.tzinfo is None
    ]
    if not problems and since is not None and since > as_of:
        problems.append(Problem("empty_window", "since is after as_of", "since"))
    if problems:
        raise InvalidInput(problems)


def purchase_window(
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
) -> sa.Subquery:
    """Net purchases in ``[since, as_of]`` (in ``currency`` when named), as a subquery.

    Raises ``InvalidInput`` for a naive date or ``since`` after ``as_of``. Currencies
    are checked after the query by :func:`read_checked`, so the orders are read once.
    """
    check_window(as_of, since)
    code = currency.upper() if currency else None
    return purchases(workspace.workspace_id, as_of, since=since, currency=code).subquery("p")


def currency_bounds(column: sa.ColumnElement[str]) -> list[sa.Label[str]]:
    """``currency_min`` and ``currency_max`` aggregates that :func:`read_checked` inspects."""
    return [
        sa.func.min(column).label(CURRENCY_BOUNDS[0]),
        sa.func.max(column).label(CURRENCY_BOUNDS[1]),
    ]


def rolled_up_bounds(rows: sa.Subquery | sa.CTE) -> list[sa.Label[str]]:
    """Currency bounds of rows that already carry ``currency_min`` and ``currency_max``."""
    return [
        sa.func.min(rows.c.currency_min).label(CURRENCY_BOUNDS[0]),
        sa.func.max(rows.c.currency_max).label(CURRENCY_BOUNDS[1]),
    ]


def check_currencies(
    conn: Connection,
    workspace: Workspace,
    frame: pd.DataFrame,
    *,
    as_of: datetime,
    currency: str | None,
) -> pd.DataFrame:
    """``frame`` without its currency bounds, nor rows whose bounds are NULL (no purchases).

    Raises ``InvalidInput`` (``resolve_currency``'s message) when the rows mix
    currencies and none was named, or a named currency has no purchases but others do.
    """
    low, high = frame[CURRENCY_BOUNDS[0]], frame[CURRENCY_BOUNDS[1]]
    if low.isna().any():
        frame = frame[low.notna()]
        low, high = frame[CURRENCY_BOUNDS[0]], frame[CURRENCY_BOUNDS[1]]
    if frame.empty and currency is not None:
        resolve_currency(conn, workspace.workspace_id, as_of, currency)
    elif currency is None and not frame.empty and low.min() != high.max():
        resolve_currency(conn, workspace.workspace_id, as_of)  # raises: purchases mix currencies
        raise InvalidInput(Problem("mixed_currencies", "choose one currency", "currency"))
    return frame.drop(columns=list(CURRENCY_BOUNDS)).reset_index(drop=True)


def read_checked(
    conn: Connection,
    workspace: Workspace,
    query: sa.Executable,
    *,
    as_of: datetime,
    currency: str | None,
) -> pd.DataFrame:
    """Run ``query`` (which selects currency bounds) and :func:`check_currencies` its rows."""
    frame = read_frame(conn, query)
    return check_currencies(conn, workspace, frame, as_of=as_of, currency=currency)


def net_lines(window: sa.Subquery, workspace: Workspace) -> sa.Select[tuple[object, ...]]:
    """The window's line items with ``units`` kept and ``revenue`` net of returns (> 0 only)."""
    oi = order_items
    units = oi.c.quantity - oi.c.returned_quantity
    gross = oi.c.quantity * oi.c.unit_price - oi.c.discount
    # nullif: a zero-quantity line yields NULL (and is dropped) instead of dividing by zero.
    revenue = gross * units / sa.func.nullif(oi.c.quantity, 0)
    return (
        sa.select(
            oi.c.customer_id,
            oi.c.order_id,
            oi.c.sku,
            sa.func.coalesce(oi.c.category, NO_VALUE).label("category"),
            sa.func.coalesce(oi.c.brand, NO_VALUE).label("brand"),
            oi.c.is_sale,
            window.c.currency,
            units.label("units"),
            revenue.label("revenue"),
        )
        # Matching customer ids too lets a join on customer use (workspace_id, customer_id).
        .select_from(
            oi.join(
                window,
                sa.and_(
                    oi.c.order_id == window.c.order_id, oi.c.customer_id == window.c.customer_id
                ),
            )
        )
        .where(oi.c.workspace_id == workspace.workspace_id, units > 0, revenue > 0)
    )
