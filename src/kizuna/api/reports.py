"""Campaign and scenario reports over HTTP: metrics, uplift, variants, factors and plots.

``GET …/reports/campaigns/{key}`` and ``…/reports/scenarios/{key}`` answer the whole
report as JSON (totals; by variant, day, channel, RFM segment, step; uplift against
control with 95% intervals and p-values; variant comparisons; where it falls behind;
and the plots' data). ``…/plots/{funnel|uplift|daily}.{png|svg}`` draws one plot.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from kizuna.analytics.charts.output import figure_bytes
from kizuna.api.deps import get_db, require
from kizuna.measurement.plots import plot_report
from kizuna.measurement.report import Report, campaign_report, scenario_report
from kizuna.measurement.uplift import HOPED_LIFT
from kizuna.segments.report import workspace_scope
from kizuna.store.database import Database

__all__ = ["router"]

router = APIRouter(prefix="/api/workspaces/{workspace}/reports", tags=["reports"])
Db = Annotated[Database, Depends(get_db)]
Plot = Literal["funnel", "uplift", "daily"]
Format = Literal["png", "svg"]
Lift = Annotated[
    float, Query(gt=0, le=10, description="Relative lift a test should detect (0.2: +20%)")
]
_CAMPAIGNS = [Depends(require("campaigns.read"))]
_SCENARIOS = [Depends(require("scenarios.read"))]
_IMAGE: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}, "image/svg+xml": {}}}}


def _campaign(db: Database, workspace: str, key: str, lift: float) -> Report:
    with workspace_scope(db, workspace) as scope:
        return campaign_report(scope, key, hoped_lift=lift)


def _scenario(db: Database, workspace: str, key: str, lift: float) -> Report:
    with workspace_scope(db, workspace) as scope:
        return scenario_report(scope, key, hoped_lift=lift)


def _image(report: Report, plot: Plot, fmt: Format) -> Response:
    media = "image/png" if fmt == "png" else "image/svg+xml"
    return Response(figure_bytes(plot_report(report, plot), fmt), media_type=media)


@router.get("/campaigns/{key}", dependencies=_CAMPAIGNS, summary="Campaign report")
def get_campaign_report(
    workspace: str, key: str, db: Db, lift: Lift = HOPED_LIFT
) -> dict[str, Any]:
    """Totals, breakdowns, uplift vs control, variants, factors and plot data (404: no key)."""
    return _campaign(db, workspace, key, lift).as_dict()


@router.get(
    "/campaigns/{key}/plots/{plot}.{fmt}",
    dependencies=_CAMPAIGNS,
    response_class=Response,
    responses=_IMAGE,
    summary="Campaign plot",
)
def get_campaign_plot(
    workspace: str, key: str, plot: Plot, fmt: Format, db: Db, lift: Lift = HOPED_LIFT
) -> Response:
    """The funnel, uplift (95% error bars) or daily trend plot as PNG or SVG."""
    return _image(_campaign(db, workspace, key, lift), plot, fmt)


@router.get("/scenarios/{key}", dependencies=_SCENARIOS, summary="Scenario report")
def get_scenario_report(
    workspace: str, key: str, db: Db, lift: Lift = HOPED_LIFT
) -> dict[str, Any]:
    """Totals, by step and the rest, uplift vs the held-out runs, factors, plot data."""
    return _scenario(db, workspace, key, lift).as_dict()


@router.get(
    "/scenarios/{key}/plots/{plot}.{fmt}",
    dependencies=_SCENARIOS,
    response_class=Response,
    responses=_IMAGE,
    summary="Scenario plot",
)
def get_scenario_plot(
    workspace: str, key: str, plot: Plot, fmt: Format, db: Db, lift: Lift = HOPED_LIFT
) -> Response:
    """The funnel, uplift (95% error bars) or daily trend plot as PNG or SVG."""
    return _image(_scenario(db, workspace, key, lift), plot, fmt)
