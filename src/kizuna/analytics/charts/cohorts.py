"""Cohort heat map: acquisition month × months since the first purchase.

Takes the long frame of ``analytics.cohorts.cohort_retention`` and returns a
``matplotlib.figure.Figure`` built without pyplot; cells not yet observed stay blank.
"""

from __future__ import annotations

import matplotlib_fontja  # noqa: F401  (registers IPAex Gothic so Japanese labels render)
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kizuna.analytics.cohorts import retention_matrix

__all__ = ["plot_cohort_heatmap"]

_TITLES = {
    "retention": "コホート継続率 / Cohort retention",
    "cumulative_revenue_per_customer": "累計顧客単価 / Cumulative revenue per customer",
    "revenue": "コホート別売上 / Revenue by cohort",
    "active_customers": "アクティブ顧客数 / Active customers",
}
_ANNOTATE_UP_TO = 40  # cells per side; beyond that the numbers are unreadable


def _label(value: float, column: str) -> str:
    return f"{value:.0%}" if column == "retention" else f"{value:,.0f}"


def plot_cohort_heatmap(cohorts: pd.DataFrame, *, value: str = "retention") -> Figure:
    """Heat map of ``value`` per cohort and month index, each cell annotated."""
    if value not in _TITLES:
        raise ValueError(f"value must be one of {', '.join(_TITLES)}")
    wide = retention_matrix(cohorts, value)
    rows, columns = wide.shape
    figure = Figure(figsize=(min(4 + 0.55 * columns, 28), min(2 + 0.38 * rows, 22)))
    figure.set_layout_engine("constrained")
    ax = figure.subplots()
    ax.set_title(_TITLES[value])
    if wide.empty:
        ax.text(0.5, 0.5, "データなし / No data", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return figure
    # None (not yet observed) becomes a masked cell; NaN never leaves this function.
    cells = np.ma.masked_invalid(wide.to_numpy(dtype=float, na_value=np.nan))
    top = 1.0 if value == "retention" else float(cells.max() or 1.0)
    image = ax.imshow(cells, cmap="YlGnBu", vmin=0.0, vmax=top, aspect="auto")
    figure.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(columns), [str(c) for c in wide.columns])
    ax.set_yticks(range(rows), [str(i) for i in wide.index])
    ax.set_xlabel("経過月数 / Months since first purchase")
    ax.set_ylabel("獲得月 / Acquisition month")
    if max(rows, columns) <= _ANNOTATE_UP_TO:
        size = 8 if columns <= 18 else 6
        for (i, j), cell in np.ndenumerate(cells.filled(np.nan)):
            if not np.isnan(cell):
                color = "white" if cell > 0.6 * top else "black"
                ax.text(j, i, _label(cell, value), ha="center", va="center", fontsize=size,
                        color=color)  # fmt: skip
    return figure
