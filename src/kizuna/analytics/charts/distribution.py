"""Pareto curve and decile bars.

Take the frames of ``analytics.distribution.pareto_curve`` (with, optionally,
``pareto_summary``) and ``deciles``; return ``matplotlib.figure.Figure`` objects
built without pyplot.
"""

from __future__ import annotations

import matplotlib_fontja  # noqa: F401  (registers IPAex Gothic so Japanese labels render)
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

__all__ = ["plot_deciles", "plot_pareto"]

_NO_DATA = "データなし / No data"


def _no_data(figure: Figure, title: str) -> Figure:
    ax = figure.subplots()
    ax.set_title(title)
    ax.text(0.5, 0.5, _NO_DATA, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return figure


def plot_pareto(
    curve: pd.DataFrame, *, summary: pd.DataFrame | None = None, top: float = 0.2
) -> Figure:
    """Cumulative revenue share against cumulative member share, with the top-``top`` marker.

    The marker's share comes from ``summary`` (``pareto_summary``) when given, else it
    is read off the curve.
    """
    title = "パレート曲線 / Pareto curve"
    figure = Figure(figsize=(7.5, 6))
    figure.set_layout_engine("constrained")
    if curve.empty:
        return _no_data(figure, title)
    x = curve["member_share"].to_numpy(dtype=float)
    y = curve["revenue_share"].to_numpy(dtype=float)
    if summary is not None and not summary.empty:
        top = float(summary["top_fraction"].iloc[0])
        share = float(summary["top_revenue_share"].iloc[0])
    else:
        share = float(np.interp(top, x, y))
    ax = figure.subplots()
    ax.set_title(title)
    ax.plot(x, y, color="tab:blue", linewidth=2, label="累積売上比率 / Cumulative revenue")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="均等 / Equal shares")
    ax.axvline(top, color="tab:red", linestyle="--", linewidth=1)
    ax.axhline(share, color="tab:red", linestyle="--", linewidth=1)
    ax.plot([top], [share], "o", color="tab:red")
    ax.annotate(
        f"上位{top:.0%}で売上の{share:.0%}\nTop {top:.0%}: {share:.0%} of revenue",
        (top, share), xytext=(12, -36), textcoords="offset points", color="tab:red",
    )  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("累積構成比（売上順） / Cumulative share of members, largest first")
    ax.set_ylabel("累積売上比率 / Cumulative share of revenue")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return figure


def plot_deciles(table: pd.DataFrame) -> Figure:
    """Revenue share per decile as bars, with the cumulative share as a line."""
    title = "デシル分析 / Decile analysis"
    figure = Figure(figsize=(8.5, 5.5))
    figure.set_layout_engine("constrained")
    if table.empty:
        return _no_data(figure, title)
    deciles = table["decile"].to_numpy(dtype=int)
    share = table["revenue_share"].to_numpy(dtype=float)
    cumulative = table["cumulative_revenue_share"].to_numpy(dtype=float)
    ax = figure.subplots()
    ax.set_title(title)
    bars = ax.bar(deciles, share, color="tab:blue", label="売上構成比 / Revenue share")
    ax.bar_label(bars, labels=[f"{s:.1%}" for s in share], fontsize=8, padding=2)
    line = ax.twinx()
    line.plot(deciles, cumulative, color="tab:orange", marker="o",
              label="累積構成比 / Cumulative share")  # fmt: skip
    line.set_ylim(0, 1.05)
    ax.set_ylim(0, max(float(share.max()) * 1.15, 0.01))
    for axis in (ax.yaxis, line.yaxis):
        axis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xticks(deciles, [f"D{d}" for d in deciles])
    ax.set_xlabel("デシル（1 = 上位10%） / Decile (1 = top 10%)")
    ax.set_ylabel("売上構成比 / Share of revenue")
    line.set_ylabel("累積構成比 / Cumulative share")
    (cumulative_line,) = line.get_lines()
    labels = [str(bars.get_label()), str(cumulative_line.get_label())]
    ax.legend([bars, cumulative_line], labels, loc="center right")
    return figure
