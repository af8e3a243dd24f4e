"""A report is assembled from metrics frames and group outcomes, and serializes to JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pandas as pd
import pytest

from kizuna.measurement.report import UPLIFT_COLUMNS, CampaignReport, Report, assemble

COLUMNS = ["targeted", "held_out", "sent", "delivered", "delivery_rate", "unique_opens",
           "open_rate", "clicks", "ctr", "click_to_open", "conversions", "cvr", "revenue",
           "revenue_per_recipient", "unsubscribes", "bounces", "complaints"]  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    group: str
    variant: str | None
    customers: int
    converters: int
    revenue: float
    revenue_sq: float


def metrics(by: str | None, rows: list[dict]) -> pd.DataFrame:
    full = []
    for row in rows:
        sent, delivered = row["sent"], row["delivered"]
        opens, clicks, conv = row["unique_opens"], row["clicks"], row["conversions"]
        full.append({**row, "targeted": row.get("targeted", math.nan),
                     "held_out": row.get("held_out", math.nan),
                     "delivery_rate": delivered / sent if sent else math.nan,
                     "open_rate": opens / delivered if delivered else math.nan,
                     "ctr": clicks / delivered if delivered else math.nan,
                     "click_to_open": clicks / opens if opens else math.nan,
                     "cvr": conv / delivered if delivered else math.nan,
                     "revenue": row.get("revenue", 0.0),
                     "revenue_per_recipient": row.get("revenue", 0.0) / sent if sent else math.nan,
                     "unsubscribes": 0, "bounces": sent - delivered, "complaints": 0})  # fmt: skip
    return pd.DataFrame(full, columns=([by] if by else []) + COLUMNS)


def build(variant_outcomes: list[Outcome] | None = None) -> Report:
    funnel = {"sent": 9000, "delivered": 8800, "unique_opens": 2600, "clicks": 400,
              "conversions": 300, "revenue": 1_500_000.0}  # fmt: skip
    frames = {
        "": metrics(None, [{"targeted": 10000, "held_out": 1000, **funnel}]),
        "variant": metrics("variant", [
            {"variant": "A", "sent": 4500, "delivered": 4400, "unique_opens": 1400, "clicks": 250,
             "conversions": 180},
            {"variant": "B", "sent": 4500, "delivered": 4400, "unique_opens": 1200, "clicks": 150,
             "conversions": 120}]),
        "day": metrics("day", [
            {"day": "2026-11-02", "sent": 1000, "delivered": 980, "unique_opens": 300, "clicks": 40,
             "conversions": 30},
            {"day": "2026-11-01", "sent": 8000, "delivered": 7820, "unique_opens": 2300,
             "clicks": 360, "conversions": 270}]),
        "rfm_segment": metrics("rfm_segment", [
            {"rfm_segment": None, "sent": 9000, "delivered": 8800, "unique_opens": 2600,
             "clicks": 400, "conversions": 300}]),
    }  # fmt: skip
    outcomes = [Outcome("treatment", None, 9000, 540, 2.7e6, 2.7e6 * 9000),
                Outcome("control", None, 1000, 40, 2.0e5, 2.0e5 * 5000)]  # fmt: skip
    variant_outcomes = variant_outcomes or [
        Outcome("treatment", "B", 4500, 250, 1.2e6, 1.2e6 * 9000),
        Outcome("treatment", "A", 4500, 290, 1.5e6, 1.5e6 * 9000),
        Outcome("control", "A", 500, 20, 1e5, 1e5 * 5000),
        Outcome("control", "B", 500, 20, 1e5, 1e5 * 5000),
    ]  # fmt: skip
    rates = pd.DataFrame({"source_kind": ["campaign"] * 3, "source_id": ["x", "y", "z"],
                          "sent": [1, 1, 1], "delivery_rate": [0.99, 0.98, 0.97],
                          "open_rate": [0.3, 0.32, 0.31], "ctr": [0.05, 0.06, 0.04],
                          "cvr": [0.03, 0.04, 0.035]})  # fmt: skip
    header = {
        "key": "flash-sale",
        "name": "秋のセール",
        "source_id": "c1",
        "status": "sent",
        "window_days": None,
        "extra": {"frozen_at": pd.Timestamp("2026-11-01", tz="UTC")},
    }
    return assemble("campaign", header, frames, outcomes, variant_outcomes, rates, ["A", "B"])


def test_assembly_compares_treatment_variants_and_the_first_variant():
    report = build()
    assert isinstance(report, CampaignReport) and report.window_days == 7
    assert report.uplift.group == "treatment" and report.uplift.reference == "control"
    assert [u.group for u in report.variant_uplift] == ["A", "B"]  # the spec's order
    assert [(u.group, u.reference) for u in report.variants] == [("B", "A")]
    assert report.uplift.incremental_conversions == pytest.approx((0.06 - 0.04) * 9000)
    assert report.total("sent") == 9000 and report.by_step.empty
    frame = report.uplift_frame()
    assert list(frame.columns) == UPLIFT_COLUMNS and len(frame) == 4
    assert frame.loc[0, "absolute"] == pytest.approx(0.02)


def test_factors_name_the_lagging_variant():
    report = build()
    lagging = [f for f in report.factors if f.dimension == "variant"]
    assert lagging and lagging[0].value == "B"
    assert report.factors_frame()["conversions_lost"].is_monotonic_decreasing


def test_json_form_has_no_nan_and_carries_plot_data():
    body = build().as_dict()
    text = json.dumps(body, allow_nan=False)  # raises on NaN
    assert "flash-sale" in text and body["totals"]["sent"] == 9000
    assert body["totals"]["click_to_open"] == pytest.approx(400 / 2600)
    assert body["by_segment"][0]["rfm_segment"] is None
    assert body["frozen_at"].startswith("2026-11-01")
    funnel = body["plots"]["funnel"]
    assert [s["stage"] for s in funnel][:2] == ["targeted", "sent"]
    assert funnel[-1]["count"] == 300 and funnel[1]["share"] == pytest.approx(0.9)
    assert [d["day"] for d in body["plots"]["daily"]] == ["2026-11-01", "2026-11-02"]
    assert body["plots"]["uplift"][0]["label"] == "treatment vs control"


def test_no_variants_drawn_and_no_control_still_report():
    report = build(variant_outcomes=[Outcome("treatment", None, 9000, 540, 0.0, 0.0)])
    assert report.variants == [] and report.variant_uplift == []
    assert report.uplift.verdict in ("better", "worse", "no_difference", "not_enough_data")
