"""Per-customer metrics written onto profiles, so segments and scenarios can use them.

``refresh_customer_metrics`` computes RFM (scores and named segment, over every
purchase up to the analysis date) and the CLV models (P(alive), expected purchases,
CLV and expected next order over the horizon) and replaces the workspace's rows in
``customer_metrics`` in one transaction: readers see the old set or the new one,
never a mix. Customers without a purchase get no row. When the CLV models cannot be
fitted (no repeat customers yet, say), the RFM part is still written and the CLV
columns stay empty; the reason is returned.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from kizuna.analytics.clv import fit_clv, predict_clv
from kizuna.analytics.rfm import rfm
from kizuna.errors import InvalidInput
from kizuna.store.bulk import bulk_insert
from kizuna.store.database import Database
from kizuna.store.tables import customer_metrics
from kizuna.store.workspaces import Workspace

__all__ = ["MetricsRefresh", "metrics_query", "refresh_customer_metrics"]

_CLV_COLUMNS = ("p_alive", "expected_purchases", "clv", "expected_next_order_at")


@dataclass(frozen=True, slots=True)
class MetricsRefresh:
    """What a refresh wrote."""

    as_of: datetime
    customers: int
    clv_fitted: bool
    clv_problem: str | None  # why the CLV columns are empty, when they are
    seconds: float


def refresh_customer_metrics(
    db: Database,
    workspace: Workspace,
    *,
    as_of: datetime | None = None,
    currency: str | None = None,
    horizon_days: float = 365.0,
) -> MetricsRefresh:
    """Recompute and replace ``customer_metrics`` for ``workspace`` as of ``as_of`` (now)."""
    started = time.perf_counter()
    now = db.clock.now()
    moment = as_of or now
    with db.read() as conn:
        scores = rfm(conn, workspace, as_of=moment, currency=currency)
        problem: str | None = None
        try:
            fit = fit_clv(conn, workspace, moment, currency=currency)
            clv = predict_clv(conn, workspace, fit, moment, horizon_days=horizon_days)
        except InvalidInput as exc:
            problem, clv = str(exc), None
    rows = _rows(workspace, scores, clv, moment, now)
    ws = workspace.workspace_id
    with db.write() as conn:
        conn.execute(customer_metrics.delete().where(customer_metrics.c.workspace_id == ws))
        bulk_insert(conn, customer_metrics, rows)
    elapsed = time.perf_counter() - started
    return MetricsRefresh(moment, len(rows), clv is not None, problem, elapsed)


_RFM_COLUMNS = ["customer_id", "recency_days", "frequency", "monetary",
                "r_score", "f_score", "m_score", "segment"]  # fmt: skip
_INTEGERS = ("frequency", "r_score", "f_score", "m_score")
_FLOATS = ("recency_days", "monetary", "p_alive", "expected_purchases", "clv")


def _rows(
    workspace: Workspace,
    scores: pd.DataFrame,
    clv: pd.DataFrame | None,
    as_of: datetime,
    now: datetime,
) -> list[dict[str, Any]]:
    """One ``customer_metrics`` row per scored customer, NaN and NaT as NULL."""
    frame = scores[_RFM_COLUMNS].rename(columns={"segment": "rfm_segment"})
    if clv is not None:
        frame = frame.merge(clv[["customer_id", *_CLV_COLUMNS]], on="customer_id", how="left")
    else:
        frame = frame.assign(**dict.fromkeys(_CLV_COLUMNS))
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in row.items()}
        for row in frame.astype(object).where(frame.notna(), None).to_dict("records")
    ]
    for record in records:
        record.update(
            workspace_id=workspace.workspace_id,
            customer_id=uuid.UUID(str(record["customer_id"])),
            as_of=as_of,
            computed_at=now,
            expected_next_order_at=_moment(record["expected_next_order_at"]),
        )
        for name in _INTEGERS:
            record[name] = None if record[name] is None else int(record[name])
        for name in _FLOATS:
            record[name] = None if record[name] is None else float(record[name])
    return records


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()


def metrics_query(workspace: Workspace) -> sa.Select[Any]:
    """The stored metrics of one workspace (for frames and reports)."""
    return sa.select(customer_metrics).where(
        customer_metrics.c.workspace_id == workspace.workspace_id
    )
