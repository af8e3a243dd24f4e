"""RFM grid heat map: recency score × frequency score, counts or revenue per cell.

Takes the frame of ``analytics.rfm.rfm_grid`` and returns a
``matplotlib.figure.Figure`` built without pyplot.
"""

from __future__ import annotations

import matplotlib_fontja  # noqa: F401  (registers IPAex Gothic so Japanese labels render)
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kizuna.analytics.rfm_rules import DEFAULT_SEGMENT_RULES, SegmentRules

__all__ = ["plot_rfm_grid"]

_TITLES = {
    "customers": "RFM グリッド（顧客数） / RFM grid (customers)",
    "revenue": "RFM グリッド（売上） / RFM grid (revenue)",
    "avg_monetary": "RFM グリッド（平均購入額） / RFM grid (average spend)",
}


def _segment_names(segments: SegmentRules) -> dict[tuple[int, int], str]:
    """Segment label per (R, F) cell, for cells whose segment does not depend on M."""
    names = {}
    for r in range(1, 6):
        for f in range(1, 6):
            found = {segments.segment_for(r, f, m).label_ja for m in range(1, 6)}
            if len(found) == 1:
                names[(r, f)] = found.pop()
    return names


def plot_rfm_grid(
    grid: pd.DataFrame, *, value: str = "customers", segments: SegmentRules | None = None
) -> Figure:
    """Heat map of ``value`` (customers, revenue or avg_monetary) with R up and F across."""
    if value not in _TITLES:
        raise ValueError(f"value must be one of {', '.join(_TITLES)}")
    figure = Figure(figsize=(8.5, 6.5))
    figure.set_layout_engine("constrained")
    ax = figure.subplots()
    ax.set_title(_TITLES[value])
    if grid.empty:
        ax.text(0.5, 0.5, "データなし / No data", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return figure
    wide = grid.pivot_table(index="r_score", columns="f_score", values=value, aggfunc="sum")
    wide = wide.reindex(index=range(5, 0, -1), columns=range(1, 6), fill_value=0.0).fillna(0.0)
    cells = wide.to_numpy(dtype=float)
    top = float(cells.max()) or 1.0
    image = ax.imshow(cells, cmap="YlOrRd", vmin=0.0, vmax=top, aspect="auto")
    figure.colorbar(image, ax=ax, shrink=0.85)
    ax.set_xticks(range(5), [str(f) for f in range(1, 6)])
    ax.set_yticks(range(5), [str(r) for r in range(5, 0, -1)])
    ax.set_xlabel("F スコア（購入回数） / Frequency score")
    ax.set_ylabel("R スコア（最終購入日） / Recency score")
    names = _segment_names(segments or DEFAULT_SEGMENT_RULES)
    for (i, j), cell in np.ndenumerate(cells):
        r, f = 5 - i, j + 1
        color = "white" if cell > 0.6 * top else "black"
        text = f"{cell:,.0f}"
        if (r, f) in names:
            text = f"{text}\n{names[(r, f)]}"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    return figure
