"""The Python API's reports half: campaign and scenario reports as DataFrames and plots.

Mixed into :class:`kizuna.client.Kizuna` (which holds ``db`` and ``workspace``).

>>> report = shop.campaign_report("autumn-sale")
>>> report.uplift[["group", "reference", "absolute", "absolute_low", "p_value", "verdict"]]
>>> report.by_day.plot(x="day", y=["sent", "clicks"])
>>> report.plot("uplift").savefig("uplift.png")
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from kizuna.measurement.plots import plot_report
from kizuna.measurement.report import Report, campaign_report, scenario_report
from kizuna.measurement.uplift import HOPED_LIFT
from kizuna.segments.report import workspace_scope
from kizuna.store.database import Database
from kizuna.store.workspaces import Workspace

__all__ = ["ReportFrames", "ReportsMixin"]


@dataclass(frozen=True)
class ReportFrames:
    """A report's parts as DataFrames; ``report`` keeps the full object (``as_dict()``)."""

    report: Report
    totals: pd.DataFrame
    by_variant: pd.DataFrame
    by_step: pd.DataFrame
    by_channel: pd.DataFrame
    by_segment: pd.DataFrame
    by_day: pd.DataFrame
    uplift: pd.DataFrame  # vs control, each variant vs control, each variant vs the first
    factors: pd.DataFrame  # where it falls behind, largest conversion loss first

    @classmethod
    def of(cls, report: Report) -> ReportFrames:
        """The frames of ``report``."""
        return cls(report, report.totals, report.by_variant, report.by_step, report.by_channel,
                   report.by_segment, report.by_day, report.uplift_frame(),
                   report.factors_frame())  # fmt: skip

    def plot(self, which: str = "funnel") -> Figure:
        """The funnel, uplift or daily plot as a matplotlib Figure."""
        return plot_report(self.report, which)


class ReportsMixin:
    """Campaign and scenario reports for one workspace."""

    db: Database
    workspace: Workspace

    def campaign_report(self, key: str, *, lift: float = HOPED_LIFT) -> ReportFrames:
        """A campaign's report; ``lift`` is the relative lift a test should detect."""
        with workspace_scope(self.db, self.workspace.slug) as scope:
            return ReportFrames.of(campaign_report(scope, key, hoped_lift=lift))

    def scenario_report(self, key: str, *, lift: float = HOPED_LIFT) -> ReportFrames:
        """A scenario's report (all versions), with a row per step in ``by_step``."""
        with workspace_scope(self.db, self.workspace.slug) as scope:
            return ReportFrames.of(scenario_report(scope, key, hoped_lift=lift))
