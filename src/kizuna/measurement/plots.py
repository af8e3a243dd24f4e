"""Plots of a campaign or scenario report a marketer reads at a glance, and their data.

* **funnel** — targeted → sent → delivered → opened → clicked → converted;
* **uplift** — conversion-rate uplift in points with its 95% interval: treatment
  against control, each variant against control, each variant against the first;
* **daily** — messages sent, opened and clicked per day (workspace zone), with
  conversions on a second axis.

``plot_data`` gives the same numbers as plain dicts for the console; ``plot_report``
draws one as a matplotlib ``Figure`` (no pyplot, so it is safe in a server), and
``kizuna.analytics.charts.output`` writes it as PNG or SVG.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import matplotlib_fontja  # noqa: F401  (registers IPAex Gothic so Japanese labels render)
from matplotlib.figure import Figure

from kizuna.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from kizuna.measurement.report import Report

__all__ = ["PLOTS", "TITLES", "daily_data", "funnel_data", "plot_data", "plot_report",
           "uplift_data"]  # fmt: skip

PLOTS = ("funnel", "uplift", "daily")
TITLES = {"funnel": "ファネル / Funnel", "uplift": "コンバージョン率の上昇 / Conversion uplift",
          "daily": "日別推移 / Daily trend"}  # fmt: skip
FUNNEL = (("targeted", "対象", "Targeted"), ("sent", "配信", "Sent"),
          ("delivered", "配信成功", "Delivered"), ("unique_opens", "開封", "Opened"),
          ("clicks", "クリック", "Clicked"),
          ("conversions", "コンバージョン", "Converted"))  # fmt: skip
DAILY = (("sent", "配信数 / Sent"), ("unique_opens", "開封 / Opened"),
         ("clicks", "クリック / Clicked"))  # fmt: skip


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def funnel_data(report: Report) -> list[dict[str, Any]]:
    """One dict per stage: key, ja and en labels, count and share of the first stage."""
    stages: list[dict[str, Any]] = []
    for key, ja, en in FUNNEL:
        count = _number(report.total(key)) if key in report.totals else None
        stages.append({"stage": key, "label_ja": ja, "label_en": en, "count": count})
    top = next((s["count"] for s in stages if s["count"]), None)
    for stage in stages:
        stage["share"] = stage["count"] / top if top and stage["count"] is not None else None
    return stages


def uplift_data(report: Report) -> list[dict[str, Any]]:
    """One dict per comparison: label, absolute uplift (points) and its 95% interval."""
    rows = []
    for u in report.comparisons():
        c = u.conversion
        rows.append({
            "label": f"{u.group} vs {u.reference}", "group": u.group, "reference": u.reference,
            "absolute": c.absolute if c else None, "low": c.absolute_low if c else None,
            "high": c.absolute_high if c else None, "p_value": c.p_value if c else None,
            "verdict": u.verdict,
        })  # fmt: skip
    return rows


def daily_data(report: Report) -> list[dict[str, Any]]:
    """One dict per day: day, sent, unique_opens, clicks, conversions, revenue."""
    keys = ("sent", "unique_opens", "clicks", "conversions", "revenue")
    frame = report.by_day
    if frame.empty or "day" not in frame:
        return []
    return [{"day": str(row["day"]), **{k: _number(row.get(k)) for k in keys}}
            for row in frame.sort_values("day").to_dict("records")]  # fmt: skip


def plot_data(report: Report) -> dict[str, Any]:
    """The three plots' numbers, for the console."""
    return {"funnel": funnel_data(report), "uplift": uplift_data(report),
            "daily": daily_data(report)}  # fmt: skip


def _figure(title: str, report: Report) -> tuple[Figure, Any]:
    figure = Figure(figsize=(8.5, 5.0))
    figure.set_layout_engine("constrained")
    ax = figure.subplots()
    ax.set_title(f"{report.name} — {title}")
    return figure, ax


def _no_data(ax: Any) -> None:
    ax.text(0.5, 0.5, "データなし / No data", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _plot_funnel(report: Report) -> Figure:
    figure, ax = _figure(TITLES["funnel"], report)
    stages = [s for s in funnel_data(report) if s["count"] is not None]
    if not stages:
        _no_data(ax)
        return figure
    labels = [f"{s['label_ja']}\n{s['label_en']}" for s in stages]
    bars = ax.barh(labels[::-1], [s["count"] for s in stages][::-1], color="#4C72B0")
    for bar, stage in zip(bars, stages[::-1], strict=True):
        share = f" ({stage['share']:.1%})" if stage["share"] is not None else ""
        ax.annotate(f"{stage['count']:,.0f}{share}", (bar.get_width(), bar.get_y() + 0.4),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)  # fmt: skip
    ax.set_xlabel("人数・通数 / Customers or messages")
    ax.margins(x=0.2)
    return figure


def _plot_uplift(report: Report) -> Figure:
    figure, ax = _figure(TITLES["uplift"], report)
    rows = [r for r in uplift_data(report) if r["absolute"] is not None]
    if not rows:
        _no_data(ax)
        return figure
    y = list(range(len(rows)))[::-1]
    points = [100 * r["absolute"] for r in rows]
    errors = [[100 * (r["absolute"] - r["low"]) for r in rows],
              [100 * (r["high"] - r["absolute"]) for r in rows]]  # fmt: skip
    colors = ["#2E7D32" if r["verdict"] == "better" else "#C62828" if r["verdict"] == "worse"
              else "#757575" for r in rows]  # fmt: skip
    for i, color in enumerate(colors):
        ax.errorbar(points[i], y[i], xerr=[[errors[0][i]], [errors[1][i]]], fmt="none",
                    ecolor=color, capsize=4)  # fmt: skip
    ax.scatter(points, y, c=colors, zorder=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, [r["label"] for r in rows])
    ax.set_xlabel("CVR の差（ポイント, 95% 信頼区間） / Uplift in points (95% CI)")
    return figure


def _plot_daily(report: Report) -> Figure:
    figure, ax = _figure(TITLES["daily"], report)
    days = daily_data(report)
    if not days:
        _no_data(ax)
        return figure
    labels = [d["day"] for d in days]
    for key, label in DAILY:
        ax.plot(labels, [d[key] or 0 for d in days], marker="o", label=label)
    conversions = ax.twinx()
    conversions.bar(labels, [d["conversions"] or 0 for d in days], alpha=0.25, color="#DD8452",
                    label="コンバージョン / Conversions")  # fmt: skip
    conversions.set_ylabel("コンバージョン / Conversions")
    ax.set_zorder(conversions.get_zorder() + 1)  # lines over the conversion bars
    ax.patch.set_visible(False)
    ax.set_ylabel("通数 / Messages")
    ax.set_ylim(bottom=0)
    lines, labels = ax.get_legend_handles_labels()
    bars, bar_labels = conversions.get_legend_handles_labels()
    ax.legend(lines + bars, labels + bar_labels, loc="upper right", fontsize=8)
    ax.tick_params(axis="x", labelrotation=45)
    return figure


def plot_report(report: Report, which: str) -> Figure:
    """Draw plot ``which`` (funnel, uplift or daily); ``InvalidInput`` for another name."""
    draw = {"funnel": _plot_funnel, "uplift": _plot_uplift, "daily": _plot_daily}.get(which)
    if draw is None:
        message = f"no plot {which!r}; there are: {', '.join(PLOTS)}"
        raise InvalidInput(Problem("unknown_plot", message, "plot"))
    return draw(report)
