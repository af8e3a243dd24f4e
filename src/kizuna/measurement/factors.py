"""Where a campaign or scenario falls behind: steps and segments below the workspace's medians.

Each send moves customers down a funnel — sent (IMP) → delivered → opened →
clicked → converted — and each stage has a rate: delivery rate, open rate, CTR
(clicks per delivered) and CVR (conversions per delivered). For every step (a
scenario's message node), variant (a campaign's content) and RFM segment of the
recipients, each rate is set against the median of the same rate over every
campaign and scenario of the workspace (``workspace_rates``): the workspace's own
yardstick, not an industry benchmark.

A shortfall is counted in the stage's own unit (messages not delivered, opens,
clicks, conversions short of the median) and then in **conversions lost** — the
shortfall times the workspace's median conversions per unit downstream (a lost
click costs ``median CVR / median CTR`` conversions) — so losses at different
stages rank on one scale. The largest loss comes first. CTR and CVR are per
delivered message (the metrics' definitions), so an open-rate shortfall also shows
in them: read the earliest stage of a value's losses as the likely cause.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

__all__ = ["STAGES", "Factor", "factors_frame", "find_factors", "workspace_medians"]

# stage rate -> (denominator column, numerator column, ja label, en label)
STAGES: dict[str, tuple[str, str, str, str]] = {
    "delivery_rate": ("sent", "delivered", "配信成功率", "Delivery rate"),
    "open_rate": ("delivered", "unique_opens", "開封率", "Open rate"),
    "ctr": ("delivered", "clicks", "クリック率 (CTR)", "Click-through rate"),
    "cvr": ("delivered", "conversions", "コンバージョン率 (CVR)", "Conversion rate"),
}
DIMENSION_LABELS = {"step": ("ステップ", "Step"), "variant": ("バリアント", "Variant"),
                    "rfm_segment": ("RFMセグメント", "RFM segment")}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Factor:
    """One stage of one step, variant or segment below the workspace's median."""

    dimension: str  # step, variant or rfm_segment
    value: str
    stage: str  # delivery_rate, open_rate, ctr, cvr
    label_ja: str
    label_en: str
    rate: float
    median: float
    gap: float  # rate - median, in rate points (negative: behind)
    relative_gap: float | None  # rate / median - 1
    base: int  # the denominator: messages sent or delivered
    shortfall: float  # deliveries, opens, clicks or conversions short of the median
    conversions_lost: float  # the shortfall in conversions, ranked on this


def _median(frame: pd.DataFrame, column: str) -> float:
    if frame.empty or column not in frame:
        return math.nan
    return float(pd.to_numeric(frame[column], errors="coerce").median(skipna=True))


def workspace_medians(rates: pd.DataFrame) -> dict[str, float]:
    """The workspace's median of each stage rate (NaN when no campaign or scenario has one)."""
    return {stage: _median(rates, stage) for stage in STAGES}


def _per_unit(medians: dict[str, float]) -> dict[str, float]:
    """Conversions one more unit at each stage brings, at the workspace's medians."""

    def ratio(a: float, b: float) -> float:
        return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan

    cvr = medians["cvr"]
    return {"delivery_rate": cvr, "open_rate": ratio(cvr, medians["open_rate"]),
            "ctr": ratio(cvr, medians["ctr"]), "cvr": 1.0}  # fmt: skip


def _row_factors(
    dimension: str, row: Any, medians: dict[str, float], per_unit: dict[str, float]
) -> list[Factor]:
    found = []
    for stage, (base_col, _, ja, en) in STAGES.items():
        rate, median, base = row[stage], medians[stage], row[base_col]
        if not (pd.notna(rate) and pd.notna(base) and math.isfinite(median)) or rate >= median:
            continue
        shortfall = (median - float(rate)) * float(base)
        lost = shortfall * per_unit[stage] if math.isfinite(per_unit[stage]) else 0.0
        found.append(Factor(
            dimension, str(row[dimension]), stage, ja, en, float(rate), median,
            float(rate) - median, float(rate) / median - 1 if median else None, int(base),
            shortfall, lost,
        ))  # fmt: skip
    return found


def find_factors(frames: dict[str, pd.DataFrame], rates: pd.DataFrame) -> list[Factor]:
    """Stages below the workspace medians, per dimension value, largest conversion loss first.

    ``frames`` maps a dimension (step, variant, rfm_segment) to ``message_metrics`` by
    it; ``rates`` is ``workspace_rates``. Rows with a missing value (no RFM segment
    yet) count as their own value, ``"—"``.
    """
    medians = workspace_medians(rates)
    per_unit = _per_unit(medians)
    found: list[Factor] = []
    for dimension, frame in frames.items():
        if frame.empty or dimension not in frame:
            continue
        values = frame[dimension].astype(object)
        named = frame.assign(**{dimension: values.where(values.notna(), "—")})
        for row in named.to_dict("records"):
            found.extend(_row_factors(dimension, row, medians, per_unit))
    return sorted(found, key=lambda f: (-f.conversions_lost, -f.shortfall, f.dimension, f.value))


def factors_frame(factors: list[Factor]) -> pd.DataFrame:
    """The factors as a DataFrame, in rank order (columns as ``Factor``'s fields)."""
    columns = list(Factor.__slots__)
    return pd.DataFrame([asdict(f) for f in factors], columns=columns)
