"""Every analysis by name: what it computes, its breakdowns and its plot.

The CLI (``kizuna analyze NAME``), the HTTP API (``/analytics/NAME``) and the
Python API (``shop.analyze(NAME)``) all run analyses through this table, so each
name means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy.engine import Connection

from kizuna.analytics import (
    clv,
    cohorts,
    distribution,
    ltv,
    purchase_mix,
    repeat,
    rfm,
    subscriptions,
)
from kizuna.analytics.charts.clv import plot_calibration_holdout, plot_clv_distribution
from kizuna.analytics.charts.cohorts import plot_cohort_heatmap
from kizuna.analytics.charts.distribution import plot_deciles, plot_pareto
from kizuna.analytics.charts.repeat import plot_gap_histogram, plot_repeat_funnel
from kizuna.analytics.charts.rfm import plot_rfm_grid
from kizuna.domain.normalize import parse_datetime
from kizuna.errors import InvalidInput, NotFound, Problem
from kizuna.store.workspaces import Workspace

__all__ = [
    "ANALYSES",
    "Analysis",
    "AnalysisRequest",
    "get_analysis",
    "parse_request",
    "plot_analysis",
    "run_analysis",
]


@dataclass(frozen=True, slots=True)
class AnalysisRequest:
    """What to analyse: the analysis date, an optional window start, currency and breakdown."""

    as_of: datetime
    since: datetime | None = None
    currency: str | None = None
    by: str | None = None


# Runners and plotters get the request and its breakdown, already checked.
Runner = Callable[[Connection, Workspace, AnalysisRequest, Any], pd.DataFrame]
Plotter = Callable[[Connection, Workspace, AnalysisRequest, Any], Figure]


@dataclass(frozen=True, slots=True)
class Analysis:
    """One named analysis: its table, its optional plot and the breakdowns it accepts."""

    name: str
    title_ja: str
    title_en: str
    run: Runner
    plot: Plotter | None = None
    by: tuple[str, ...] = ()  # accepted values of ``by``; the first is the default

    def breakdown(self, request: AnalysisRequest) -> Any:
        """The request's ``by``, checked against this analysis (its default when unset)."""
        if not self.by:
            if request.by is not None:
                message = f"'{self.name}' has no breakdown"
                raise InvalidInput(Problem("unknown_breakdown", message, "by"))
            return None
        if request.by is None:
            return self.by[0]
        if request.by not in self.by:
            allowed = ", ".join(self.by)
            message = f"'{self.name}' breaks down by one of {allowed}, not {request.by!r}"
            raise InvalidInput(Problem("unknown_breakdown", message, "by"))
        return request.by


def _window(request: AnalysisRequest) -> dict[str, Any]:
    return {"as_of": request.as_of, "since": request.since, "currency": request.currency}


def _simple(function: Callable[..., pd.DataFrame], by: str | None = None) -> Runner:
    """A runner calling ``function(conn, ws, as_of=…, since=…, currency=…[, <by>=…])``."""

    def run(conn: Connection, ws: Workspace, request: AnalysisRequest, value: Any) -> pd.DataFrame:
        extra = {by: value} if by else {}
        return function(conn, ws, **_window(request), **extra)

    return run


def _rfm_grid_plot(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> Figure:
    return plot_rfm_grid(rfm.rfm_grid(conn, ws, **_window(req)))


def _pareto(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> pd.DataFrame:
    return distribution.pareto_summary(conn, ws, **_window(req), of=by)


def _pareto_plot(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> Figure:
    curve = distribution.pareto_curve(conn, ws, **_window(req), of=by)
    summary = distribution.pareto_summary(conn, ws, **_window(req), of=by)
    return plot_pareto(curve, summary=summary)


def _deciles_plot(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> Figure:
    return plot_deciles(distribution.deciles(conn, ws, **_window(req), of=by))


def _repeat(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> pd.DataFrame:
    by = None if by == "all" else by
    return repeat.repeat_conversion(conn, ws, **_window(req), by=by)


def _repeat_plot(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> Figure:
    return plot_repeat_funnel(repeat.repeat_conversion(conn, ws, **_window(req), by=None))


def _gaps(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> pd.DataFrame:
    by = None if by == "all" else by
    return repeat.purchase_gaps(conn, ws, **_window(req), by=by)


def _gaps_plot(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> Figure:
    return plot_gap_histogram(repeat.gap_histogram(conn, ws, **_window(req), by=None))


def _cohorts_plot(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> Figure:
    return plot_cohort_heatmap(cohorts.cohort_retention(conn, ws, **_window(req)))


def _clv_scores(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> pd.DataFrame:
    if req.since is not None:
        message = "CLV models every purchase up to as_of; a window start does not apply"
        raise InvalidInput(Problem("window_not_supported", message, "since"))
    fit = clv.fit_clv(conn, ws, req.as_of, currency=req.currency)
    scores = clv.predict_clv(conn, ws, fit)
    return scores.sort_values("clv", ascending=False, ignore_index=True)


def _clv_plot(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> Figure:
    scores = _clv_scores(conn, ws, req, by)
    return plot_clv_distribution(scores)


def _clv_fit(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> pd.DataFrame:
    fit = clv.fit_clv(conn, ws, req.as_of, currency=req.currency)
    rows = [{"measure": key, "value": value} for key, value in fit.diagnostics().items()]
    return pd.DataFrame(rows, columns=["measure", "value"]).astype({"value": object})


def _holdout(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> pd.DataFrame:
    check = clv.check_holdout(conn, ws, req.as_of, currency=req.currency)
    return check.table


def _holdout_plot(conn: Connection, ws: Workspace, req: AnalysisRequest, by: Any) -> Figure:
    check = clv.check_holdout(conn, ws, req.as_of, currency=req.currency)
    return plot_calibration_holdout(check.table, holdout_days=check.holdout_days)


_GRAINS = ("customer", "sku", "category", "brand")
_REPEAT_BY = ("all", "acquisition_month", "first_category", "first_channel")


def _entries() -> list[Analysis]:
    return [
        Analysis("rfm", "RFM セグメント", "RFM segments",
                 _simple(rfm.rfm_segments), _rfm_grid_plot),
        Analysis("rfm-customers", "顧客別 RFM", "RFM per customer", _simple(rfm.rfm)),
        Analysis("rfm-grid", "RFM グリッド", "RFM grid", _simple(rfm.rfm_grid), _rfm_grid_plot),
        Analysis("rfm-area", "RFMD(地域別 RFM)", "RFMD: RFM by area",
                 _simple(rfm.rfm_by_area, "level"), by=("prefecture", "region")),
        Analysis("rfm-category", "RFMC(カテゴリ別 RFM)", "RFMC: RFM by category",
                 _simple(rfm.rfm_by_category, "by"), by=("category", "brand")),
        Analysis("rfm-state", "顧客状態別 RFM", "RFM by customer state", _simple(rfm.rfm_by_state)),
        Analysis("deciles", "デシル分析", "Decile analysis",
                 _simple(distribution.deciles, "of"), _deciles_plot, by=_GRAINS),
        Analysis("abc", "ABC 分析", "ABC analysis",
                 _simple(distribution.abc_summary, "of"), by=_GRAINS),
        Analysis("pareto", "パレート分析", "Pareto analysis", _pareto, _pareto_plot, by=_GRAINS),
        Analysis("pb", "PB 分析(定価/セール購入)", "PB: full price vs sale",
                 _simple(purchase_mix.price_behaviour_summary)),
        Analysis("ctb", "CTB 分析(カテゴリ・テイスト・ブランド)", "CTB: category, taste, brand",
                 _simple(purchase_mix.ctb_mix, "by"), by=("category", "brand", "taste")),
        Analysis("repeat", "F 転換(リピート転換率)", "Repeat conversion F(n)",
                 _repeat, _repeat_plot, by=_REPEAT_BY),
        Analysis("gaps", "購入間隔", "Days between purchases", _gaps, _gaps_plot, by=_REPEAT_BY),
        Analysis("cohorts", "コホート継続率", "Cohort retention",
                 _simple(cohorts.cohort_retention), _cohorts_plot),
        Analysis("subscriptions", "定期契約の継続・解約", "Subscription churn and retention",
                 _simple(subscriptions.subscription_retention)),
        Analysis("phases", "カスタマーサクセス段階", "Customer-success phases",
                 _simple(subscriptions.success_phases)),
        Analysis("ltv", "LTV(実績)", "Historical LTV", _simple(ltv.ltv_summary)),
        Analysis("ltv-customers", "顧客別 LTV(実績)", "Historical LTV per customer",
                 _simple(ltv.customer_ltv)),
        Analysis("clv", "予測 CLV", "Predicted CLV", _clv_scores, _clv_plot),
        Analysis("clv-fit", "CLV モデル診断", "CLV model fit", _clv_fit, _holdout_plot),
        Analysis("clv-holdout", "CLV ホールドアウト検証", "CLV calibration vs holdout",
                 _holdout, _holdout_plot),
    ]  # fmt: skip


ANALYSES: dict[str, Analysis] = {entry.name: entry for entry in _entries()}


def parse_request(
    workspace: Workspace,
    now: datetime,
    *,
    as_of: str | datetime | None = None,
    since: str | datetime | None = None,
    currency: str | None = None,
    by: str | None = None,
) -> AnalysisRequest:
    """A request from the text a marketer types, read in the workspace's time zone.

    A bare date as ``as_of`` means the end of that local day (the day is included);
    a bare date as ``since`` means its start. No ``as_of`` means now.
    """
    tz = workspace.time_zone
    moment = now if as_of is None else parse_datetime(as_of, "as_of", tz)
    if isinstance(as_of, str) and _is_bare_date(as_of):
        moment += timedelta(days=1) - timedelta(microseconds=1)
    start = None if since is None else parse_datetime(since, "since", tz)
    if start is not None and start >= moment:
        message = f"since ({start.isoformat()}) must be before as_of ({moment.isoformat()})"
        raise InvalidInput(Problem("empty_window", message, "since"))
    code = currency.strip().upper() if currency else None
    return AnalysisRequest(as_of=moment, since=start, currency=code, by=by or None)


def _is_bare_date(text: str) -> bool:
    """``2026-03-31``, ``2026/3/31`` or ``2026年3月31日``: a day, not a moment."""
    stripped = text.strip()
    parts = stripped.replace("/", "-").split("-")
    return stripped.endswith("日") or (len(parts) == 3 and all(p.isdigit() for p in parts))


def get_analysis(name: str) -> Analysis:
    """The analysis called ``name``; NotFound lists the names there are."""
    try:
        return ANALYSES[name]
    except KeyError:
        known = ", ".join(ANALYSES)
        raise NotFound(f"no analysis named {name!r}; there are: {known}") from None


def run_analysis(
    conn: Connection, workspace: Workspace, name: str, request: AnalysisRequest
) -> pd.DataFrame:
    """Run analysis ``name`` and return its table."""
    entry = get_analysis(name)
    return entry.run(conn, workspace, request, entry.breakdown(request))


def plot_analysis(
    conn: Connection, workspace: Workspace, name: str, request: AnalysisRequest
) -> Figure:
    """Draw analysis ``name``'s plot; InvalidInput when it has none."""
    entry = get_analysis(name)
    if entry.plot is None:
        with_plots = ", ".join(n for n, a in ANALYSES.items() if a.plot is not None)
        message = f"'{name}' has no plot; these do: {with_plots}"
        raise InvalidInput(Problem("no_plot", message, "name"))
    return entry.plot(conn, workspace, request, entry.breakdown(request))
