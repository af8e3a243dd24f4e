"""CLV charts: the distribution of predicted CLV and the calibration-vs-holdout check.

Both take the frames of ``analytics.clv`` (``predict_clv`` / ``score_customers`` and
``HoldoutCheck.table``) and return a ``matplotlib.figure.Figure`` built without
pyplot, so nothing global is left behind.
"""

from __future__ import annotations

import matplotlib_fontja  # noqa: F401  (registers IPAex Gothic so Japanese labels render)
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_calibration_holdout", "plot_clv_distribution"]

_BAR = "#3b6ea8"
_ACTUAL = "#3b6ea8"
_PREDICTED = "#d9822b"


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "データなし / No data", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def plot_clv_distribution(
    scores: pd.DataFrame, *, currency: str | None = None, bins: int = 40, clip: float = 0.99
) -> Figure:
    """Histogram of customers by predicted CLV up to the ``clip`` quantile; mean and median marked.

    CLV is long-tailed, so the bars stop at the ``clip`` quantile and the customers
    beyond it are counted in the legend instead of squeezing the rest into one bar.
    """
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    ax = figure.subplots()
    ax.set_title("CLV 分布 / CLV distribution")
    values = scores["clv"].to_numpy(dtype=np.float64) if "clv" in scores else np.zeros(0)
    values = values[np.isfinite(values)]
    if values.size == 0:
        _no_data(ax)
        return figure
    top = float(np.quantile(values, clip))
    shown = values[values <= top] if top > values.min() else values
    ax.hist(shown, bins=bins, color=_BAR)
    mean, median = float(values.mean()), float(np.median(values))
    ax.axvline(mean, color=_PREDICTED, linestyle="-", label=f"平均 / mean {mean:,.0f}")
    ax.axvline(median, color="#555555", linestyle="--", label=f"中央値 / median {median:,.0f}")
    hidden = values.size - shown.size
    if hidden:
        ax.plot([], [], " ", label=f"{top:,.0f} 超 / above: {hidden:,} 人 / customers")
    unit = f" ({currency})" if currency else ""
    ax.set_xlabel(f"予測 CLV / Predicted CLV{unit}")
    ax.set_ylabel("顧客数 / Customers")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def plot_calibration_holdout(table: pd.DataFrame, *, holdout_days: int | None = None) -> Figure:
    """Mean holdout purchases, actual vs predicted, by repeat purchases in calibration."""
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    ax = figure.subplots()
    title = "キャリブレーション vs ホールドアウト / Calibration vs holdout"
    ax.set_title(f"{title} ({holdout_days} 日 / days)" if holdout_days else title)
    if table.empty:
        _no_data(ax)
        return figure
    labels = table["bucket"].astype(str).tolist()
    positions = np.arange(len(labels))
    ax.plot(positions, table["actual"].tolist(), marker="o", color=_ACTUAL, label="実績 / Actual")
    ax.plot(positions, table["predicted"].tolist(), marker="s", linestyle="--",
            color=_PREDICTED, label="予測 (BG/NBD) / Predicted")  # fmt: skip
    ax.set_xticks(positions, labels)
    ax.set_xlabel("キャリブレーション期間のリピート購入回数 / Repeat purchases in calibration")
    ax.set_ylabel("ホールドアウト期間の平均購入回数 / Mean holdout purchases")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return figure
