"""Analytics API: every catalog analysis as JSON rows or a PNG/SVG plot; metric refresh."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from kizuna.analytics.catalog import (
    ANALYSES,
    AnalysisRequest,
    get_analysis,
    parse_request,
    plot_analysis,
    run_analysis,
)
from kizuna.analytics.charts.output import figure_bytes
from kizuna.analytics.metrics import refresh_customer_metrics
from kizuna.api.deps import get_db, require
from kizuna.store.database import Database
from kizuna.store.workspaces import Workspace, get_workspace

__all__ = ["router"]

router = APIRouter(prefix="/api/workspaces/{workspace}", tags=["analytics"])
Db = Annotated[Database, Depends(get_db)]
_READ = [Depends(require("analytics.read"))]
_REFRESH = [Depends(require("analytics.refresh"))]
AsOf = Annotated[str | None, Query(description="Analysis date (workspace time zone); now")]
Since = Annotated[str | None, Query(description="Start of the window")]
Currency = Annotated[str | None, Query(description="Currency, when orders use several")]
By = Annotated[str | None, Query(description="Breakdown; GET /analytics lists each one's")]


class AnalysisInfo(BaseModel):
    """One analysis the catalog offers."""

    name: str
    title_ja: str
    title_en: str
    by: list[str]
    has_plot: bool


class AnalysisTable(BaseModel):
    """An analysis result: its columns and rows (missing values are null)."""

    name: str
    title_ja: str
    title_en: str
    as_of: datetime
    since: datetime | None
    currency: str | None
    by: str | None
    columns: list[str]
    rows: list[dict[str, Any]]


class MetricsRefreshOut(BaseModel):
    """What a refresh of stored customer metrics wrote."""

    as_of: datetime
    customers: int = Field(description="Customers with a metrics row")
    clv_fitted: bool
    clv_problem: str | None
    seconds: float


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # NumPy scalars
        return _json_value(value.item())
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = [str(c) for c in frame.columns]
    return [
        {c: _json_value(v) for c, v in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False)
    ]


def _request(
    db: Database, workspace: str, as_of: str | None, since: str | None, currency: str | None,
    by: str | None,
) -> tuple[Workspace, AnalysisRequest]:  # fmt: skip
    with db.read() as conn:
        ws = get_workspace(conn, workspace)
    request = parse_request(ws, db.clock.now(), as_of=as_of, since=since,
                            currency=currency, by=by)  # fmt: skip
    return ws, request


@router.get(
    "/analytics", dependencies=_READ, response_model=list[AnalysisInfo], summary="List analyses"
)
def list_analyses(workspace: str, db: Db) -> list[AnalysisInfo]:
    """Every analysis: its name, titles, breakdowns and whether it has a plot."""
    with db.read() as conn:
        get_workspace(conn, workspace)
    return [
        AnalysisInfo(
            name=a.name,
            title_ja=a.title_ja,
            title_en=a.title_en,
            by=list(a.by),
            has_plot=a.plot is not None,
        )
        for a in ANALYSES.values()
    ]


@router.get(
    "/analytics/{name}", dependencies=_READ, response_model=AnalysisTable, summary="Run an analysis"
)
def get_analysis_table(
    workspace: str, name: str, db: Db, as_of: AsOf = None, since: Since = None,
    currency: Currency = None, by: By = None,
) -> AnalysisTable:  # fmt: skip
    """The analysis as a table computed inside the database."""
    analysis = get_analysis(name)
    ws, request = _request(db, workspace, as_of, since, currency, by)
    with db.read() as conn:
        frame = run_analysis(conn, ws, name, request)
    return AnalysisTable(
        name=name, title_ja=analysis.title_ja, title_en=analysis.title_en, as_of=request.as_of,
        since=request.since, currency=request.currency, by=analysis.breakdown(request),
        columns=[str(c) for c in frame.columns], rows=_records(frame),
    )  # fmt: skip


@router.get(
    "/analytics/{name}/plot",
    dependencies=_READ,
    summary="Plot an analysis",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
def get_analysis_plot(
    workspace: str, name: str, db: Db, as_of: AsOf = None, since: Since = None,
    currency: Currency = None, by: By = None,
    format: Annotated[Literal["png", "svg"], Query(description="Image format")] = "png",
) -> Response:  # fmt: skip
    """The analysis' plot as PNG or SVG."""
    ws, request = _request(db, workspace, as_of, since, currency, by)
    with db.read() as conn:
        figure = plot_analysis(conn, ws, name, request)
    media = "image/png" if format == "png" else "image/svg+xml"
    return Response(figure_bytes(figure, format), media_type=media)


@router.post(
    "/metrics/refresh",
    dependencies=_REFRESH,
    response_model=MetricsRefreshOut,
    summary="Refresh metrics",
)
def post_metrics_refresh(
    workspace: str, db: Db, as_of: AsOf = None, currency: Currency = None
) -> MetricsRefreshOut:
    """Recompute RFM, P(alive), CLV and next-order dates onto every customer's profile."""
    ws, request = _request(db, workspace, as_of, None, currency, None)
    done = refresh_customer_metrics(db, ws, as_of=request.as_of, currency=request.currency)
    return MetricsRefreshOut(as_of=done.as_of, customers=done.customers,
                             clv_fitted=done.clv_fitted, clv_problem=done.clv_problem,
                             seconds=done.seconds)  # fmt: skip
