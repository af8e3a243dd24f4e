"""Campaign and scenario reports: metrics, uplift against control, variants, where it lags.

A report is assembled from the measurement metrics (``kizuna.measurement.metrics``:
each a single SQL aggregate) and the statistics of ``uplift`` and ``factors``. It
asks the store three times — the messages by every dimension at once (summed up
here per dimension), the group outcomes per variant (summed up for the totals), the
workspace's rates — so a million-recipient campaign renders in under 2 s
(``bench/campaign_report.py``):

* totals, and the same by variant, day (workspace zone), channel, RFM segment and —
  for scenarios — step;
* uplift of treatment over control (intention to treat), each variant over the
  control group, and each variant over the first (the reference);
* the stages where steps, variants and segments fall behind the workspace's medians.

The API, the CLI and the Python API all show the same ``Report``; ``as_dict`` is its
JSON form (NaN becomes null), ``plot_data`` what the console draws.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import pandas as pd

from kizuna.measurement import metrics
from kizuna.measurement.factors import Factor, factors_frame, find_factors
from kizuna.measurement.uplift import HOPED_LIFT, Outcome, Uplift, compare
from kizuna.store.campaigns import get_campaign
from kizuna.store.scenarios import get_scenario
from kizuna.store.scope import Scope

__all__ = [
    "METRIC_LABELS",
    "UPLIFT_COLUMNS",
    "VERDICT_LABELS",
    "CampaignReport",
    "Report",
    "ScenarioReport",
    "assemble",
    "campaign_report",
    "rollup",
    "scenario_report",
    "uplift_frame",
]

Source = Literal["campaign", "scenario"]
DEFAULT_WINDOW_DAYS = 7
METRIC_LABELS = {
    "targeted": ("対象者数", "Targeted"), "held_out": ("コントロール群", "Held out"),
    "sent": ("配信数 (IMP)", "Sent"), "delivered": ("配信成功数", "Delivered"),
    "delivery_rate": ("配信成功率", "Delivery rate"),
    "unique_opens": ("ユニーク開封数", "Unique opens"), "open_rate": ("開封率", "Open rate"),
    "clicks": ("クリック数", "Clicks"), "ctr": ("クリック率 (CTR)", "CTR"),
    "click_to_open": ("開封後クリック率", "Click-to-open"),
    "conversions": ("コンバージョン数", "Conversions"), "cvr": ("コンバージョン率 (CVR)", "CVR"),
    "revenue": ("売上", "Revenue"), "revenue_per_recipient": ("配信あたり売上", "Revenue per sent"),
    "unsubscribes": ("配信停止", "Unsubscribes"), "bounces": ("バウンス", "Bounces"),
    "complaints": ("苦情", "Complaints"),
}  # fmt: skip
VERDICT_LABELS = {
    "better": ("有意に高い", "significantly higher"),
    "worse": ("有意に低い", "significantly lower"),
    "no_difference": ("差なし", "no difference"),
    "not_enough_data": ("データ不足", "not enough data yet"),
}
UPLIFT_COLUMNS = [
    "group", "reference", "customers", "reference_customers", "rate", "reference_rate",
    "absolute", "absolute_low", "absolute_high", "relative", "relative_low", "relative_high",
    "p_value", "p_adjusted", "revenue_per_customer", "reference_revenue_per_customer",
    "revenue_difference", "revenue_low", "revenue_high", "revenue_p_value",
    "incremental_conversions", "incremental_conversions_low", "incremental_conversions_high",
    "incremental_revenue", "incremental_revenue_low", "incremental_revenue_high", "verdict",
    "detectable_lift", "needed_group", "needed_reference", "still_needed_group",
    "still_needed_reference",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Summed:
    """A group's outcome summed over variants (empty: no held-out customers)."""

    group: str = ""
    variant: str | None = None
    customers: int = 0
    converters: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0


@dataclass(frozen=True)
class Report:
    """How one campaign or scenario did. Frames have the metrics' columns."""

    kind: Source
    key: str
    name: str
    source_id: str
    status: str
    window_days: int
    totals: pd.DataFrame  # one row
    by_variant: pd.DataFrame
    by_day: pd.DataFrame
    by_channel: pd.DataFrame
    by_segment: pd.DataFrame  # by RFM segment
    by_step: pd.DataFrame  # empty for campaigns
    uplift: Uplift  # treatment against control
    variant_uplift: list[Uplift]  # each variant's treated against the control group
    variants: list[Uplift]  # each variant against the first
    factors: list[Factor]
    hoped_lift: float = HOPED_LIFT
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific facts (frozen_at …)

    def total(self, metric: str) -> float:
        """One total (sent, delivered, ctr …); NaN when the metric has no value."""
        if self.totals.empty:
            return math.nan
        return float(self.totals[metric].iloc[0])

    def comparisons(self) -> list[Uplift]:
        """Treatment vs control, each variant vs control, each variant vs the first."""
        return [self.uplift, *self.variant_uplift, *self.variants]

    def uplift_frame(self) -> pd.DataFrame:
        """Every comparison as a row: vs control, each variant vs control, vs the first."""
        return uplift_frame(self.comparisons())

    def factors_frame(self) -> pd.DataFrame:
        """Where it falls behind, largest conversion loss first."""
        return factors_frame(self.factors)

    def plot_data(self) -> dict[str, Any]:
        """Funnel, uplift and daily trend as plain data (what the plots draw)."""
        from kizuna.measurement.plots import plot_data  # plots import this module

        return plot_data(self)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (NaN and infinities become null)."""
        frames = {"totals": self.totals, "by_variant": self.by_variant, "by_day": self.by_day,
                  "by_channel": self.by_channel, "by_segment": self.by_segment,
                  "by_step": self.by_step}  # fmt: skip
        body: dict[str, Any] = {
            "kind": self.kind, "key": self.key, "name": self.name, "source_id": self.source_id,
            "status": self.status, "window_days": self.window_days, "hoped_lift": self.hoped_lift,
            **{k: _clean(v) for k, v in self.extra.items()},
            **{name: _records(frame) for name, frame in frames.items()},
            "uplift": _clean(self.uplift.as_dict()),
            "variant_uplift": [_clean(u.as_dict()) for u in self.variant_uplift],
            "variants": [_clean(u.as_dict()) for u in self.variants],
            "factors": _records(self.factors_frame()),
            "plots": _clean(self.plot_data()),
        }  # fmt: skip
        body["totals"] = body["totals"][0] if body["totals"] else {}
        return body


class CampaignReport(Report):
    """A one-shot campaign's report (``extra``: frozen_at, targeted, held_out)."""


class ScenarioReport(Report):
    """A scenario's report, with a row per message step in ``by_step``."""


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, str):  # NumPy scalars
        return _clean(value.item())
    if value is pd.NaT or (not isinstance(value, str | bytes) and pd.isna(value) is True):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_clean(row) for row in frame.to_dict("records")]


def _uplift_row(u: Uplift) -> dict[str, Any]:
    c, r = u.conversion, u.revenue
    row: dict[str, Any] = {
        "group": u.group, "reference": u.reference, "customers": u.customers,
        "reference_customers": u.reference_customers, "p_adjusted": u.p_adjusted,
        "verdict": u.verdict, "detectable_lift": u.detectable_lift,
        "needed_group": u.needed_group, "needed_reference": u.needed_reference,
        "still_needed_group": u.still_needed_group,
        "still_needed_reference": u.still_needed_reference,
        "incremental_conversions": u.incremental_conversions,
        "incremental_conversions_low": u.incremental_conversions_low,
        "incremental_conversions_high": u.incremental_conversions_high,
        "incremental_revenue": u.incremental_revenue,
        "incremental_revenue_low": u.incremental_revenue_low,
        "incremental_revenue_high": u.incremental_revenue_high,
    }  # fmt: skip
    if c is not None:
        row |= {"rate": c.rate, "reference_rate": c.reference_rate, "absolute": c.absolute,
                "absolute_low": c.absolute_low, "absolute_high": c.absolute_high,
                "relative": c.relative, "relative_low": c.relative_low,
                "relative_high": c.relative_high, "p_value": c.p_value}  # fmt: skip
    if r is not None:
        row |= {"revenue_per_customer": r.mean, "reference_revenue_per_customer": r.reference_mean,
                "revenue_difference": r.difference, "revenue_low": r.low, "revenue_high": r.high,
                "revenue_p_value": r.p_value}  # fmt: skip
    return row


def uplift_frame(uplifts: list[Uplift]) -> pd.DataFrame:
    """Comparisons as rows with ``UPLIFT_COLUMNS`` (missing numbers are NaN)."""
    return pd.DataFrame([_uplift_row(u) for u in uplifts], columns=UPLIFT_COLUMNS)


def _by_variant(outcomes: list[Any]) -> dict[tuple[str, str | None], Outcome]:
    return {(o.group, o.variant): o for o in outcomes}


def assemble(
    kind: Source,
    header: dict[str, Any],
    frames: dict[str, pd.DataFrame],
    outcomes: list[Any],
    variant_outcomes: list[Any],
    rates: pd.DataFrame,
    variant_order: list[str],
    *,
    hoped_lift: float = HOPED_LIFT,
) -> Report:
    """Build the report from metrics frames (``""`` and the DIMENSIONS) and group outcomes.

    ``header`` carries key, name, source_id, status, window_days and ``extra``;
    ``variant_order`` puts the reference variant first (others follow, sorted).
    """
    overall = _by_variant(outcomes)
    control = overall.get(("control", None), _Summed())
    uplift = compare("treatment", "control", overall.get(("treatment", None), _Summed()), control,
                     hoped_lift=hoped_lift)  # fmt: skip
    per_variant = _by_variant(variant_outcomes)
    drawn = {v for g, v in per_variant if g == "treatment" and v is not None}
    order = [v for v in variant_order if v in drawn] + sorted(drawn - set(variant_order))
    treated = [(v, per_variant[("treatment", v)]) for v in order]
    variant_uplift = [compare(v, "control", o, control, hoped_lift=hoped_lift,
                              comparisons=len(treated)) for v, o in treated]  # fmt: skip
    variants = [compare(v, order[0], o, treated[0][1], hoped_lift=hoped_lift,
                        comparisons=len(treated) - 1) for v, o in treated[1:]]  # fmt: skip
    dims = {"step": frames.get("step"), "variant": frames.get("variant"),
            "rfm_segment": frames.get("rfm_segment")}  # fmt: skip
    factors = find_factors({k: v for k, v in dims.items() if v is not None}, rates)
    cls = CampaignReport if kind == "campaign" else ScenarioReport
    empty = pd.DataFrame()
    return cls(
        kind, header["key"], header["name"], header["source_id"], header["status"],
        int(header.get("window_days") or DEFAULT_WINDOW_DAYS), frames.get("", empty),
        frames.get("variant", empty), frames.get("day", empty), frames.get("channel", empty),
        frames.get("rfm_segment", empty), frames.get("step", empty), uplift, variant_uplift,
        variants, factors, hoped_lift, dict(header.get("extra", {})),
    )  # fmt: skip


def _campaign_header(scope: Scope, key: str) -> tuple[dict[str, Any], list[str]]:
    """The campaign's facts and its variants in spec order; ``NotFound`` for an unknown key."""
    saved = get_campaign(scope, key)
    spec = saved.spec
    extra = {"frozen_at": saved.frozen_at, "send_at": saved.send_at, "channel": spec.channel,
             "segment": spec.segment, "control_percent": spec.control_percent,
             "targeted": saved.targeted, "held_out": saved.held_out}  # fmt: skip
    header = {"key": saved.key, "name": saved.name, "source_id": str(saved.campaign_id),
              "status": saved.status, "window_days": spec.window_days,
              "extra": extra}  # fmt: skip
    return header, [v.key for v in spec.variants]


# The contract's rates (kizuna.measurement.metrics): name, numerator, denominator.
_RATES = (("delivery_rate", "delivered", "sent"), ("open_rate", "unique_opens", "delivered"),
          ("ctr", "clicks", "delivered"), ("click_to_open", "clicks", "unique_opens"),
          ("cvr", "conversions", "delivered"),
          ("revenue_per_recipient", "revenue", "sent"))  # fmt: skip


def rollup(frame: pd.DataFrame, by: tuple[str, ...]) -> pd.DataFrame:
    """``message_metrics`` by finer dimensions summed up to ``by`` (rates recomputed).

    Counts add up exactly across a partition; ``targeted``/``held_out`` stay NaN when
    the finer frame had none.
    """
    counts = list(metrics.COUNTS)
    if by:
        found = frame.groupby(list(by), dropna=False, sort=True)[counts].sum(min_count=1)
        found = found.reset_index()
        for dim in by:  # missing values read as None, as the store gives them
            values = found[dim].astype(object)
            found[dim] = values.where(values.notna(), None)
    else:
        found = frame[counts].sum(min_count=1).to_frame().T.reset_index(drop=True)
    for column in counts:  # an empty frame sums to NaN: nothing sent is 0 sent
        if column not in ("targeted", "held_out") or frame[column].notna().any():
            found[column] = found[column].fillna(0)
    for name, top, bottom in _RATES:
        denominator = found[bottom].astype(float)
        found[name] = found[top].astype(float) / denominator.where(denominator > 0)
    return found[[*by, *metrics.METRIC_COLUMNS]]


def _with_audience(frame: pd.DataFrame, outcomes: list[Any], by_variant: bool) -> pd.DataFrame:
    """Fill targeted and held out from the group outcomes (the same audience rows)."""
    targeted: dict[str | None, int] = {}
    held: dict[str | None, int] = {}
    for o in outcomes:
        key = o.variant if by_variant else None
        targeted[key] = targeted.get(key, 0) + o.customers
        held[key] = held.get(key, 0) + (o.customers if o.group == "control" else 0)
    keys = frame["variant"] if by_variant else pd.Series([None] * len(frame), index=frame.index)
    frame = frame.copy()
    frame["targeted"] = [targeted.get(k, 0) for k in keys]
    frame["held_out"] = [held.get(k, 0) for k in keys]
    return frame


def _frames(
    scope: Scope, kind: Source, source_id: str, dims: tuple[str, ...], outcomes: list[Any]
) -> dict[str, pd.DataFrame]:
    """Totals and one frame per dimension from ONE scan of the messages, rolled up.

    Every ask of ``message_metrics`` scans all the source's messages, so the report
    asks once by every dimension together and sums up here (a million-recipient
    campaign renders in under 2 s). Targeted and held out come from the group
    outcomes for the totals and by variant; by RFM segment they are left NaN
    (``message_metrics(by=("rfm_segment",))`` has them, at the price of another scan).
    """
    fine = metrics.message_metrics(scope, kind, source_id, by=dims)
    frames = {"": _with_audience(rollup(fine, ()), outcomes, by_variant=False)}
    frames |= {dim: rollup(fine, (dim,)) for dim in dims}
    frames["variant"] = _with_audience(frames["variant"], outcomes, by_variant=True)
    return frames


def _overall(by_variant: list[Any]) -> list[_Summed]:
    """Treatment and control over all variants, summed from the per-variant outcomes."""
    totals = {g: _Summed(g) for g in ("treatment", "control")}
    for o in by_variant:
        t = totals[o.group]
        totals[o.group] = _Summed(o.group, None, t.customers + o.customers,
                                  t.converters + o.converters, t.revenue + o.revenue,
                                  t.revenue_sq + o.revenue_sq)  # fmt: skip
    return list(totals.values())


def _load(
    scope: Scope, kind: Source, header: dict[str, Any], dims: tuple[str, ...],
    variant_order: list[str], hoped_lift: float,
) -> Report:  # fmt: skip
    source_id = header["source_id"]
    by_variant = list(metrics.group_outcomes(scope, kind, source_id, by_variant=True))
    frames = _frames(scope, kind, source_id, dims, by_variant)
    rates = metrics.workspace_rates(scope)
    return assemble(kind, header, frames, _overall(by_variant), by_variant, rates,
                    variant_order, hoped_lift=hoped_lift)  # fmt: skip


def campaign_report(scope: Scope, key: str, *, hoped_lift: float = HOPED_LIFT) -> Report:
    """The report of the campaign ``key``; ``NotFound`` for an unknown key."""
    header, variants = _campaign_header(scope, key)
    dims = ("variant", "rfm_segment", "day", "channel")
    return _load(scope, "campaign", header, dims, variants, hoped_lift)


def scenario_report(scope: Scope, key: str, *, hoped_lift: float = HOPED_LIFT) -> Report:
    """The report of the scenario ``key`` (all versions); ``NotFound`` for an unknown key.

    Scenario messages carry the scenario's key as their source id.
    """
    saved = get_scenario(scope, key)
    header = {"key": saved.key, "name": saved.name, "source_id": saved.key,
              "status": saved.status, "window_days": DEFAULT_WINDOW_DAYS,
              "extra": {"live_version": saved.live_version}}  # fmt: skip
    dims = ("step", "variant", "rfm_segment", "day", "channel")
    return _load(scope, "scenario", header, dims, [], hoped_lift)
