"""Where a send falls behind: stages below the workspace's medians, ranked by conversions lost."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kizuna.measurement.factors import factors_frame, find_factors, workspace_medians

RATES = pd.DataFrame({
    "source_kind": ["campaign", "campaign", "scenario"], "source_id": ["a", "b", "c"],
    "sent": [1000, 2000, 500], "delivery_rate": [0.98, 0.96, 0.97],
    "open_rate": [0.30, 0.20, 0.25], "ctr": [0.05, 0.03, 0.04], "cvr": [0.02, 0.01, 0.01],
})  # fmt: skip


def metrics(dimension: str, rows: list[tuple[str | None, int, int, int, int, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[dimension, "sent", "delivered", "unique_opens", "clicks",
                                        "conversions"])  # fmt: skip
    frame["delivery_rate"] = frame.delivered / frame.sent
    frame["open_rate"] = frame.unique_opens / frame.delivered
    frame["ctr"] = frame.clicks / frame.delivered
    frame["cvr"] = frame.conversions / frame.delivered
    return frame


def test_medians_are_the_workspaces_own():
    assert workspace_medians(RATES) == pytest.approx(
        {"delivery_rate": 0.97, "open_rate": 0.25, "ctr": 0.04, "cvr": 0.01}
    )
    assert all(math.isnan(v) for v in workspace_medians(RATES.iloc[0:0]).values())


def test_losses_rank_on_one_scale_with_their_numbers():
    steps = metrics(
        "step",
        [
            ("welcome", 1000, 970, 250, 40, 10),  # at the medians
            ("reminder", 2000, 1960, 300, 20, 20),
        ],
    )  # opens and clicks lag
    segments = metrics(
        "rfm_segment", [("champions", 500, 400, 100, 16, 4), (None, 100, 97, 25, 4, 1)]
    )
    found = find_factors({"step": steps, "rfm_segment": segments}, RATES)
    top = found[0]
    assert (top.dimension, top.value, top.stage) == ("step", "reminder", "ctr")
    assert top.shortfall == pytest.approx((0.04 - 20 / 1960) * 1960)  # clicks short
    assert top.conversions_lost == pytest.approx(top.shortfall * 0.01 / 0.04)
    assert top.gap == pytest.approx(20 / 1960 - 0.04) and top.label_en == "Click-through rate"
    opens = next(f for f in found if f.value == "reminder" and f.stage == "open_rate")
    assert opens.conversions_lost == pytest.approx((0.25 - 300 / 1960) * 1960 * 0.01 / 0.25)
    lost = [f.conversions_lost for f in found]
    assert lost == sorted(lost, reverse=True)
    assert not any(f.value == "welcome" for f in found)  # at the median: nothing lost
    delivery = next(f for f in found if f.value == "champions" and f.stage == "delivery_rate")
    assert delivery.shortfall == pytest.approx((0.97 - 0.8) * 500)
    frame = factors_frame(found)
    assert frame["value"].iloc[0] == "reminder" and len(frame) == len(found)
    assert factors_frame([]).empty
