"""Predictive CLV: per-customer summaries in SQL, BG/NBD and Gamma-Gamma fitted in Python.

**Summary** (one row per customer with a net purchase up to ``as_of``, one currency,
built in SQL on SQLite and PostgreSQL). A *purchase day* is a local calendar day
(workspace time zone) with at least one net purchase (``base.purchases``); orders
on the same day count once, as in Fader & Hardie's CDNOW data. Time is in days:

- ``frequency`` (x): purchase days − 1, i.e. repeat purchase days;
- ``recency`` (t_x): days from the first to the last purchase day;
- ``T``: days from the first purchase day to the local day of ``as_of``;
- ``monetary_value``: mean spend of the repeat purchase days (a day's spend is the
  sum of its net purchases; the first day is left out); 0 without a repeat day.

**Models** (``analytics.models``): BG/NBD (Fader, Hardie & Lee 2005) gives P(alive)
and expected purchases; Gamma-Gamma (Fader, Hardie & Lee 2005, JMR) gives expected
spend per purchase, fitted on repeat customers. For the fit the summary is also
collapsed in SQL (``GROUP BY frequency, recency, T``), which is exact.

**Predictions** over a horizon of ``horizon_days``:

- ``expected_purchases``: conditional expected purchases in the horizon;
- ``clv`` = Σₖ E[purchases in month k] × expected spend / (1 + m)ᵏ over months of
  365.25/12 days (the last may be partial), ``m = (1 + annual rate)^(1/12) − 1``;
  the discount applies at each month's end, as in ``lifetimes``;
- ``expected_next_order_at``: ``as_of + t`` where the conditional expected number
  of purchases in ``(as_of, as_of + t]`` reaches one. NaT when that lies beyond the
  horizon: since customers drop out, the expectation may never reach one.

**Bad input**: refunds, cancellations, zero amounts and future orders are handled by
``base.purchases``; mixed currencies need ``currency`` (``resolve_currency``). Fits
raise ``InvalidInput``: ``no_purchases`` (empty window), ``no_repeat_customers``
(only one-time buyers: neither model can be estimated), ``spend_model_degenerate``
(Gamma-Gamma ``q ≤ 1``: infinite mean spend). Outputs never hold NaN or inf.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.analytics.base import purchases, resolve_currency
from kizuna.analytics.models.bgnbd import (
    BgNbdFit,
    BgNbdParams,
    conditional_expected_purchases,
    discounted_expected_purchases,
    fit_bgnbd,
    p_alive,
    time_to_expected_purchase,
)
from kizuna.analytics.models.gamma_gamma import (
    GammaGammaFit,
    conditional_expected_spend,
    fit_gamma_gamma,
)
from kizuna.analytics.sql import local_day, local_days_between
from kizuna.errors import InvalidInput, Problem
from kizuna.store.frames import read_frame
from kizuna.store.workspaces import Workspace

__all__ = [
    "CLV_COLUMNS",
    "HOLDOUT_COLUMNS",
    "MONTH_DAYS",
    "SUMMARY_COLUMNS",
    "ClvFit",
    "HoldoutCheck",
    "check_holdout",
    "customer_summary",
    "fit_clv",
    "holdout_table",
    "predict_clv",
    "score_customers",
]

SUMMARY_COLUMNS = {
    "customer_id": "str",
    "first_purchase_day": "str",  # local YYYY-MM-DD
    "last_purchase_day": "str",
    "frequency": "int",
    "recency": "int",
    "T": "int",
    "monetary_value": "float",
}
CLV_COLUMNS = {
    **SUMMARY_COLUMNS,
    "p_alive": "float",
    "expected_purchases": "float",
    "expected_avg_spend": "float",
    "clv": "float",
    "expected_next_order_at": "time",  # UTC; NaT when not expected within the horizon
}
HOLDOUT_COLUMNS = {"frequency": "int", "bucket": "str", "customers": "int",
                   "actual": "float", "predicted": "float"}  # fmt: skip
MONTH_DAYS = 365.25 / 12


@dataclass(frozen=True, slots=True)
class ClvFit:
    """Both fitted models with the data they came from and fit diagnostics (time in days)."""

    as_of: datetime
    currency: str
    purchases: BgNbdFit
    spend: GammaGammaFit
    customers: int
    repeat_customers: int
    # Gamma-Gamma assumes spend independent of frequency; near 0 is reassuring.
    frequency_spend_correlation: float | None

    def diagnostics(self) -> dict[str, Any]:
        """Flat, JSON-ready parameters and diagnostics of both models."""
        bg, gg = self.purchases, self.spend
        return {
            "as_of": self.as_of.isoformat(),
            "currency": self.currency,
            "time_unit": "day",
            "customers": self.customers,
            "repeat_customers": self.repeat_customers,
            "frequency_spend_correlation": self.frequency_spend_correlation,
            **{f"bgnbd_{k}": v for k, v in asdict(bg.params).items()},
            "bgnbd_log_likelihood": bg.log_likelihood,
            "bgnbd_converged": bg.converged,
            "bgnbd_rows": bg.rows,
            **{f"gamma_gamma_{k}": v for k, v in asdict(gg.params).items()},
            "gamma_gamma_log_likelihood": gg.log_likelihood,
            "gamma_gamma_converged": gg.converged,
            "gamma_gamma_customers": gg.customers,
        }


@dataclass(frozen=True, slots=True)
class HoldoutCheck:
    """BG/NBD fitted on a calibration period, checked against the following holdout days."""

    calibration_end: datetime
    holdout_days: int
    fit: BgNbdFit
    table: pd.DataFrame  # HOLDOUT_COLUMNS, one row per calibration frequency

    @property
    def actual_total(self) -> float:
        """Repeat purchase days observed in the holdout period."""
        return float((self.table["actual"] * self.table["customers"]).sum())

    @property
    def predicted_total(self) -> float:
        """Repeat purchase days the calibration fit expected in the holdout period."""
        return float((self.table["predicted"] * self.table["customers"]).sum())


# --- SQL --------------------------------------------------------------------------------


def _local_date(moment: datetime, time_zone: str) -> date:
    if moment.tzinfo is None:
        raise InvalidInput(Problem("naive_datetime", "as_of needs a time zone", "as_of"))
    return moment.astimezone(ZoneInfo(time_zone)).date()


def _purchase_days(
    workspace: Workspace, as_of: datetime, currency: str | None, dialect: str
) -> sa.Subquery:
    """One row per customer and local purchase day: the day's spend and the first day."""
    purchase = purchases(workspace.workspace_id, as_of, currency=currency).subquery("purchase")
    day = local_day(purchase.c.ordered_at, workspace.time_zone, dialect)
    dated = sa.select(purchase.c.customer_id, day.label("day"), purchase.c.amount).subquery("dated")
    first_day = sa.func.min(dated.c.day).over(partition_by=dated.c.customer_id)
    return (
        sa.select(
            dated.c.customer_id,
            dated.c.day,
            sa.func.sum(dated.c.amount).label("amount"),
            first_day.label("first_day"),
        )
        .group_by(dated.c.customer_id, dated.c.day)
        .subquery("purchase_day")
    )


def _summary_query(
    workspace: Workspace, as_of: datetime, currency: str | None, dialect: str
) -> sa.Select[Any]:
    days = _purchase_days(workspace, as_of, currency, dialect)
    as_of_day = sa.bindparam("as_of_day", _local_date(as_of, workspace.time_zone).isoformat(),
                             type_=sa.String)  # fmt: skip
    repeats = sa.func.count() - 1
    repeat_spend = sa.func.sum(sa.case((days.c.day > days.c.first_day, days.c.amount), else_=0.0))
    mean_spend = sa.cast(repeat_spend, sa.Float) / sa.func.nullif(repeats, 0)
    first, last = sa.func.min(days.c.day), sa.func.max(days.c.day)
    return sa.select(
        days.c.customer_id,
        first.label("first_purchase_day"),
        last.label("last_purchase_day"),
        repeats.label("frequency"),
        local_days_between(last, first, dialect).label("recency"),
        local_days_between(as_of_day, first, dialect).label("T"),
        sa.func.coalesce(mean_spend, 0.0).label("monetary_value"),
    ).group_by(days.c.customer_id)


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    casts = {"int": np.dtype(np.int64), "float": np.dtype(np.float64)}
    typed = frame.reindex(columns=list(columns))
    for name, kind in columns.items():
        if kind in casts:
            typed[name] = typed[name].astype(casts[kind])
    return typed


def customer_summary(
    conn: Connection, workspace: Workspace, as_of: datetime, *, currency: str | None = None
) -> pd.DataFrame:
    """Per customer: frequency, recency, T (days) and mean repeat spend (SUMMARY_COLUMNS).

    Empty when there are no purchases. Raises ``InvalidInput`` on mixed currencies.
    """
    _local_date(as_of, workspace.time_zone)  # refuses a naive as_of before any query
    code = resolve_currency(conn, workspace.workspace_id, as_of, currency)
    query = _summary_query(workspace, as_of, code, conn.dialect.name)
    frame = read_frame(conn, query.order_by("customer_id"))
    return _typed(frame, SUMMARY_COLUMNS)


# --- fitting ----------------------------------------------------------------------------


def _correlation(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float | None:
    w = weights / weights.sum()
    dx, dy = x - (w * x).sum(), y - (w * y).sum()
    sx, sy = float((w * dx**2).sum()), float((w * dy**2).sum())
    if sx <= 0 or sy <= 0:
        return None
    return float((w * dx * dy).sum() / np.sqrt(sx * sy))


def fit_clv(
    conn: Connection, workspace: Workspace, as_of: datetime, *, currency: str | None = None
) -> ClvFit:
    """Fit BG/NBD and Gamma-Gamma on the workspace's purchases up to ``as_of``.

    Raises ``InvalidInput`` for no purchases, no repeat customers, mixed currencies
    or a degenerate spend model (see the module docstring).
    """
    _local_date(as_of, workspace.time_zone)  # refuses a naive as_of before any query
    code = resolve_currency(conn, workspace.workspace_id, as_of, currency)
    if code is None:
        message = f"no purchases up to {as_of.isoformat()}; nothing to fit"
        raise InvalidInput(Problem("no_purchases", message, "as_of"))
    summary = _summary_query(workspace, as_of, code, conn.dialect.name).subquery("summary")
    s = summary.c
    rows = read_frame(
        conn,
        sa.select(s.frequency, s.recency, s["T"], sa.func.count().label("customers"))
        .group_by(s.frequency, s.recency, s["T"]),
    )  # fmt: skip
    spends = read_frame(
        conn,
        sa.select(s.frequency, s.monetary_value, sa.func.count().label("customers"))
        .where(s.frequency > 0)
        .group_by(s.frequency, s.monetary_value),
    )  # fmt: skip
    bg = fit_bgnbd(rows["frequency"], rows["recency"], rows["T"], rows["customers"])
    gg = fit_gamma_gamma(spends["frequency"], spends["monetary_value"], spends["customers"])
    if gg.params.q <= 1:
        message = (
            f"the spend model's q = {gg.params.q:.3g} ≤ 1 implies an infinite mean spend; "
            "spend is too heavy-tailed (check for outlier orders)"
        )
        raise InvalidInput(Problem("spend_model_degenerate", message))
    values = [spends[c].to_numpy(dtype=np.float64) for c in spends.columns]
    return ClvFit(
        as_of=as_of,
        currency=code,
        purchases=bg,
        spend=gg,
        customers=int(rows["customers"].sum()),
        repeat_customers=int(spends["customers"].sum()),
        frequency_spend_correlation=_correlation(*values),
    )


# --- predicting -------------------------------------------------------------------------


def _next_order_times(as_of: datetime, waits: np.ndarray) -> pd.DatetimeIndex:
    days = pd.to_timedelta(np.where(np.isfinite(waits), waits, np.nan), unit="D")
    return (pd.Timestamp(as_of).tz_convert("UTC") + days).floor("s")


def score_customers(
    fit: ClvFit,
    summary: pd.DataFrame,
    as_of: datetime,
    *,
    horizon_days: float = 365.0,
    annual_discount_rate: float = 0.10,
) -> pd.DataFrame:
    """Add P(alive), expected purchases and spend, CLV and next order to a summary (CLV_COLUMNS)."""
    if not horizon_days > 0 or not annual_discount_rate > -1:
        raise InvalidInput(Problem("invalid_horizon", "horizon must be > 0, discount rate > −1"))
    frame = _typed(summary, SUMMARY_COLUMNS).reset_index(drop=True)
    if frame.empty:
        return _typed(frame, CLV_COLUMNS)
    x, t_x, age = (frame[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    bg = fit.purchases.params
    spend = conditional_expected_spend(fit.spend.params, x, frame["monetary_value"])
    monthly = (1.0 + annual_discount_rate) ** (1 / 12) - 1.0
    discounted = discounted_expected_purchases(
        bg, x, t_x, age, horizon=horizon_days, period=MONTH_DAYS, discount_rate=monthly
    )
    frame["p_alive"] = p_alive(bg, x, t_x, age)
    frame["expected_purchases"] = conditional_expected_purchases(bg, horizon_days, x, t_x, age)
    frame["expected_avg_spend"] = spend
    frame["clv"] = discounted * spend
    waits = time_to_expected_purchase(bg, x, t_x, age, limit=horizon_days)
    frame["expected_next_order_at"] = _next_order_times(as_of, waits)
    numbers = frame[["p_alive", "expected_purchases", "expected_avg_spend", "clv"]].to_numpy()
    if not np.all(np.isfinite(numbers)):  # the closed forms are finite; this guards regressions
        raise InvalidInput(
            Problem("prediction_failed", "CLV prediction produced non-finite values")
        )
    return _typed(frame, CLV_COLUMNS)


def predict_clv(
    conn: Connection,
    workspace: Workspace,
    fit: ClvFit,
    as_of: datetime | None = None,
    *,
    horizon_days: float = 365.0,
    annual_discount_rate: float = 0.10,
) -> pd.DataFrame:
    """Score every customer with purchases up to ``as_of`` (default: the fit's) with ``fit``.

    Returns CLV_COLUMNS in ``fit.currency``, one row per customer, by ``customer_id``.
    """
    moment = fit.as_of if as_of is None else as_of
    summary = customer_summary(conn, workspace, moment, currency=fit.currency)
    return score_customers(fit, summary, moment, horizon_days=horizon_days,
                           annual_discount_rate=annual_discount_rate)  # fmt: skip


# --- calibration vs holdout -------------------------------------------------------------


def holdout_table(
    params: BgNbdParams,
    x: Any,
    t_x: Any,
    T: Any,  # noqa: N803
    holdout: Any,
    *,
    holdout_length: float,
    max_frequency: int = 7,
) -> pd.DataFrame:
    """Mean actual vs predicted holdout purchases by calibration frequency (HOLDOUT_COLUMNS).

    The last row pools customers with ``max_frequency`` or more repeat purchases.
    """
    xs = np.asarray(x, dtype=np.float64)
    predicted = conditional_expected_purchases(params, holdout_length, xs, t_x, T)
    frame = pd.DataFrame({
        "frequency": np.minimum(xs, max_frequency).astype(np.int64),
        "actual": np.asarray(holdout, dtype=np.float64),
        "predicted": predicted,
    })  # fmt: skip
    table = frame.groupby("frequency", as_index=False).agg(
        customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")
    )
    table["bucket"] = table["frequency"].astype(str)
    table.loc[table["frequency"] == max_frequency, "bucket"] = f"{max_frequency}+"
    return _typed(table, HOLDOUT_COLUMNS)


def check_holdout(
    conn: Connection,
    workspace: Workspace,
    as_of: datetime,
    *,
    holdout_days: int = 180,
    currency: str | None = None,
    max_frequency: int = 7,
) -> HoldoutCheck:
    """Fit BG/NBD on purchases before the last ``holdout_days`` local days; compare those days.

    The calibration period ends at the local midnight ``holdout_days`` days before
    ``as_of``'s local day ends. Raises ``InvalidInput`` like :func:`fit_clv`.
    """
    if holdout_days < 1:
        raise InvalidInput(Problem("invalid_holdout", "holdout_days must be ≥ 1", "holdout_days"))
    zone = ZoneInfo(workspace.time_zone)
    calibration_day = _local_date(as_of, workspace.time_zone) - timedelta(days=holdout_days)
    next_midnight = datetime.combine(calibration_day + timedelta(days=1), time(), tzinfo=zone)
    calibration_end = next_midnight - timedelta(microseconds=1)
    code = resolve_currency(conn, workspace.workspace_id, as_of, currency)
    summary = customer_summary(conn, workspace, calibration_end, currency=code)
    if summary.empty:
        message = f"no purchases before {calibration_end.isoformat()}; shorten holdout_days"
        raise InvalidInput(Problem("no_purchases", message, "holdout_days"))
    fit = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    days = _purchase_days(workspace, as_of, code, conn.dialect.name)
    later = sa.select(days.c.customer_id, sa.func.count().label("holdout")).where(
        days.c.day > calibration_day.isoformat()
    )
    counts = read_frame(conn, later.group_by(days.c.customer_id))
    merged = summary.merge(counts, on="customer_id", how="left")
    holdout = merged["holdout"].fillna(0).to_numpy(dtype=np.float64)
    x, t_x, age = merged["frequency"], merged["recency"], merged["T"]
    table = holdout_table(
        fit.params, x, t_x, age, holdout, holdout_length=holdout_days, max_frequency=max_frequency
    )
    return HoldoutCheck(calibration_end.astimezone(UTC), holdout_days, fit, table)
