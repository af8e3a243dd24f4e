"""Repeat-conversion charts: the F(n) funnel and the days-between-purchases histogram.

Both take the frames of ``analytics.repeat`` and return a ``matplotlib.figure.Figure``
built without pyplot, so nothing global is left behind; save it with ``savefig``.
"""

from __future__ import annotations

import matplotlib_fontja  # noqa: F401  (registers IPAex Gothic so Japanese labels render)
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_gap_histogram", "plot_repeat_funnel"]

_BAR = "#3b6ea8"


def _one_segment(frame: pd.DataFrame, segment: str | None) -> tuple[pd.DataFrame, str | None]:
    """The rows of ``segment`` (default: the first one) and the name to put in the title."""
    if frame.empty:
        return frame, segment
    name = segment if segment is not None else str(frame["segment"].iloc[0])
    return frame[frame["segment"] == name], (None if name == "all" else name)


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "データなし / No data", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def plot_repeat_funnel(conversion: pd.DataFrame, *, segment: str | None = None) -> Figure:
    """Customers reaching the 1st, 2nd … purchase, each bar labelled with its conversion rate."""
    rows, name = _one_segment(conversion, segment)
    figure = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = figure.subplots()
    title = "F転換ファネル / Repeat conversion funnel"
    ax.set_title(f"{title} — {name}" if name else title)
    if rows.empty:
        _no_data(ax)
        return figure
    bars = ax.bar(rows["step"].tolist(), rows["customers"].tolist(), color=_BAR)
    labels = [
        f"{count:,}" if rate is None else f"{count:,}\n{rate:.1%}"
        for count, rate in zip(rows["customers"].tolist(), rows["rate"].tolist(), strict=True)
    ]
    ax.bar_label(bars, labels=labels, padding=3, fontsize=9)
    ax.set_xlabel("購入回数 / Purchase number")
    ax.set_ylabel("顧客数 / Customers")
    ax.margins(y=0.2)
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def plot_gap_histogram(
    histogram: pd.DataFrame, *, n: int = 1, segment: str | None = None
) -> Figure:
    """Customers by days between their n-th and (n+1)-th purchase, with shares on the bars."""
    rows, name = _one_segment(histogram, segment)
    rows = rows[rows["n"] == n] if not rows.empty else rows
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    ax = figure.subplots()
    title = f"購入間隔 ({n}回目→{n + 1}回目) / Days between purchase {n} and {n + 1}"
    ax.set_title(f"{title} — {name}" if name else title)
    if rows.empty:
        _no_data(ax)
        return figure
    bars = ax.bar(rows["bucket"].tolist(), rows["customers"].tolist(), color=_BAR)
    ax.bar_label(bars, labels=[f"{s:.0%}" for s in rows["share"].tolist()], padding=3, fontsize=9)
    ax.set_xlabel("日数 / Days")
    ax.set_ylabel("顧客数 / Customers")
    ax.margins(y=0.15)
    ax.spines[["top", "right"]].set_visible(False)
    return figure
