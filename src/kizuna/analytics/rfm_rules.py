"""How RFM scores, named segments and customer states are assigned: typed rules with defaults.

Scores run 1–5 on each axis, 5 best (most recent, most frequent, biggest spend).

*Quintile scoring* (the default) ranks the customers of the window on each axis
and cuts the ranking into fifths: ``score = 1 + floor(5 × (rank − 1) / n)``, where
``rank`` is the customer's position from the worst value up and customers with
equal values share the position of the first of them (SQL ``RANK()``). Equal
values therefore always get equal scores, and a tie group gets the lowest score
its positions span; this is why ``NTILE`` (which splits ties arbitrarily) is not
used. Recency ranks on whole days, so customers who last bought the same number
of days ago tie. With many one-order customers F skips scores: if 60 % buy once
they all score F = 1 and two-order customers start at F = 4. A lone customer (or a
value everyone shares) scores 1; use thresholds for very small shops.

*Threshold scoring* uses the marketer's cut-offs (:class:`ThresholdScoring`).

*Segments* come from an ordered rule table on R, F and M score ranges, first
match wins; a table must name a segment for each of the 125 score triples.
:data:`DEFAULT_SEGMENT_RULES` uses R and F only (the R × F grid), M is free::

    order  segment              R    F    label
    1      champions            5    4–5  優良顧客 Champions
    2      loyal                3–4  4–5  ロイヤル顧客 Loyal
    3      potential_loyalists  4–5  2–3  ロイヤル予備軍 Potential loyalists
    4      new                  5    1    新規顧客 New
    5      promising            4    1    有望顧客 Promising
    6      need_attention       3    3    要注意顧客 Need attention
    7      about_to_sleep       3    1–2  休眠予備軍 About to sleep
    8      cant_lose_them       1–2  5    離反危機の上得意 Can't lose them
    9      at_risk              1–2  3–4  離反リスク顧客 At risk
    10     lost                 1    1    離反顧客 Lost
    11     hibernating          1–2  1–2  休眠顧客 Hibernating

``DEFAULT_SEGMENT_RULES.describe()`` gives the same table with what to do about each.

*Customer states* (RFMC) come from order count and recency: see :class:`StateRules`.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_SEGMENT_RULES",
    "STATES",
    "QuintileScoring",
    "RfmConfig",
    "RfmScoring",
    "SegmentRule",
    "SegmentRules",
    "StateRules",
    "ThresholdScoring",
]

ScoreRange = tuple[Annotated[int, Field(ge=1, le=5)], Annotated[int, Field(ge=1, le=5)]]


def _increasing(values: tuple[float, ...]) -> tuple[float, ...]:
    if any(b <= a for a, b in itertools.pairwise(values)) or values[0] < 0:
        raise ValueError("thresholds must be non-negative and strictly increasing")
    return values


class QuintileScoring(BaseModel):
    """Score 1–5 by quintile of the customers in the window (ties share the lower score)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    method: Literal["quintile"] = "quintile"


class ThresholdScoring(BaseModel):
    """Score 1–5 by fixed cut-offs.

    ``recency_days`` (ascending): last purchase at most the 1st value days ago scores
    5, at most the 2nd 4, at most the 3rd 3, at most the 4th 2, older 1.
    ``frequency`` and ``monetary`` (ascending): at least the 4th value scores 5, at
    least the 3rd 4, at least the 2nd 3, at least the 1st 2, less 1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    method: Literal["threshold"] = "threshold"
    recency_days: tuple[int, int, int, int] = (30, 90, 180, 365)
    frequency: tuple[int, int, int, int] = (2, 3, 5, 10)
    monetary: tuple[float, float, float, float] = (5_000, 10_000, 30_000, 100_000)

    @field_validator("recency_days", "frequency", "monetary")
    @classmethod
    def _check(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        return _increasing(values)


RfmScoring = Annotated[QuintileScoring | ThresholdScoring, Field(discriminator="method")]


class SegmentRule(BaseModel):
    """One named segment: inclusive score ranges on R, F and M (default: any score)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label_en: str = Field(min_length=1, max_length=60)
    label_ja: str = Field(min_length=1, max_length=60)
    recency: ScoreRange = (1, 5)
    frequency: ScoreRange = (1, 5)
    monetary: ScoreRange = (1, 5)
    description: str = ""

    @field_validator("recency", "frequency", "monetary")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] > value[1]:
            raise ValueError("a score range is (low, high) with low <= high")
        return value

    def matches(self, r: int, f: int, m: int) -> bool:
        """Whether the score triple falls in all three ranges."""
        ranges = ((self.recency, r), (self.frequency, f), (self.monetary, m))
        return all(lo <= value <= hi for (lo, hi), value in ranges)


def _cells() -> list[tuple[int, int, int]]:
    return [(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)]


class SegmentRules(BaseModel):
    """An ordered segment table, first match wins; every score triple must match a rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    rules: tuple[SegmentRule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> SegmentRules:
        keys = [rule.key for rule in self.rules]
        if len(set(keys)) != len(keys):
            raise ValueError("segment keys must be unique")
        missing = [c for c in _cells() if not any(rule.matches(*c) for rule in self.rules)]
        if missing:
            shown = ", ".join(f"R{r}F{f}M{m}" for r, f, m in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise ValueError(f"no rule covers {shown}{more}; end with a catch-all rule")
        return self

    def segment_for(self, r: int, f: int, m: int) -> SegmentRule:
        """The first rule matching the score triple."""
        return next(rule for rule in self.rules if rule.matches(r, f, m))

    def lookup(self) -> np.ndarray:
        """Rule index per score cell, indexed by ``(r - 1) * 25 + (f - 1) * 5 + (m - 1)``."""
        keys = [rule.key for rule in self.rules]
        return np.array([keys.index(self.segment_for(*c).key) for c in _cells()])

    def labels(self) -> pd.DataFrame:
        """``segment``, ``segment_ja``, ``segment_en`` and ``segment_order`` per rule."""
        return pd.DataFrame(
            {
                "segment": [r.key for r in self.rules],
                "segment_ja": [r.label_ja for r in self.rules],
                "segment_en": [r.label_en for r in self.rules],
                "segment_order": range(len(self.rules)),
            }
        )

    def describe(self) -> pd.DataFrame:
        """The table as a marketer reads it: order, names, score ranges and meaning."""

        def span(lo_hi: tuple[int, int]) -> str:
            lo, hi = lo_hi
            return "any" if (lo, hi) == (1, 5) else str(lo) if lo == hi else f"{lo}–{hi}"

        return pd.DataFrame(
            {
                "order": range(1, len(self.rules) + 1),
                "segment": [r.key for r in self.rules],
                "label_ja": [r.label_ja for r in self.rules],
                "label_en": [r.label_en for r in self.rules],
                "recency": [span(r.recency) for r in self.rules],
                "frequency": [span(r.frequency) for r in self.rules],
                "monetary": [span(r.monetary) for r in self.rules],
                "description": [r.description for r in self.rules],
            }
        )


def _rule(
    key: str, en: str, ja: str, r: tuple[int, int], f: tuple[int, int], text: str
) -> SegmentRule:
    return SegmentRule(key=key, label_en=en, label_ja=ja, recency=r, frequency=f, description=text)


DEFAULT_SEGMENT_RULES = SegmentRules(
    rules=(
        _rule("champions", "Champions", "優良顧客", (5, 5), (4, 5),
              "Bought very recently and buy often: reward them, ask for reviews."),
        _rule("loyal", "Loyal", "ロイヤル顧客", (3, 4), (4, 5),
              "Buy often, fairly recently: upsell, membership tiers."),
        _rule("potential_loyalists", "Potential loyalists", "ロイヤル予備軍", (4, 5), (2, 3),
              "Recent buyers with a few orders: nurture into loyalty."),
        _rule("new", "New", "新規顧客", (5, 5), (1, 1),
              "First purchase very recently: onboarding, F2 conversion."),
        _rule("promising", "Promising", "有望顧客", (4, 4), (1, 1),
              "One recent purchase: build the relationship."),
        _rule("need_attention", "Need attention", "要注意顧客", (3, 3), (3, 3),
              "Middling recency and frequency: limited-time offers."),
        _rule("about_to_sleep", "About to sleep", "休眠予備軍", (3, 3), (1, 2),
              "Few orders and cooling off: reactivate before they lapse."),
        _rule("cant_lose_them", "Can't lose them", "離反危機の上得意", (1, 2), (5, 5),
              "Used to buy the most, not lately: win them back personally."),
        _rule("at_risk", "At risk", "離反リスク顧客", (1, 2), (3, 4),
              "Bought often but long ago: win-back scenario."),
        _rule("lost", "Lost", "離反顧客", (1, 1), (1, 1),
              "One order, longest ago: exclude or low-cost reactivation only."),
        _rule("hibernating", "Hibernating", "休眠顧客", (1, 2), (1, 2),
              "Few orders, long ago: occasional reactivation offers."),
    )
)  # fmt: skip

# Customer state key -> (Japanese, English) label, in display order.
STATES: dict[str, tuple[str, str]] = {
    "new": ("新規", "New"),
    "stable": ("安定", "Stable"),
    "good": ("優良", "Good"),
    "loyal": ("ロイヤル", "Loyal"),
    "dormant": ("休眠", "Dormant"),
}


class StateRules(BaseModel):
    """Customer state (RFMC) from the window's order count and recency, checked in this order.

    * ``dormant`` (休眠): last purchase more than ``dormant_after_days`` days ago;
    * ``new`` (新規): otherwise, exactly one purchase;
    * ``loyal`` (ロイヤル): otherwise, at least ``loyal_orders`` purchases;
    * ``good`` (優良): otherwise, at least ``good_orders`` purchases;
    * ``stable`` (安定): otherwise (two up to ``good_orders − 1`` purchases).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    dormant_after_days: int = Field(default=180, ge=1)
    good_orders: int = Field(default=3, ge=3)
    loyal_orders: int = Field(default=5, ge=4)

    @model_validator(mode="after")
    def _ordered(self) -> StateRules:
        if self.loyal_orders <= self.good_orders:
            raise ValueError("loyal_orders must be greater than good_orders")
        return self

    def state_for(self, recency_days: int, frequency: int) -> str:
        """The state of one customer (the SQL applies the same rules)."""
        if recency_days > self.dormant_after_days:
            return "dormant"
        if frequency <= 1:
            return "new"
        if frequency >= self.loyal_orders:
            return "loyal"
        return "good" if frequency >= self.good_orders else "stable"


class RfmConfig(BaseModel):
    """Everything an RFM run can be told: scoring, segment table, customer-state rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    scoring: RfmScoring = QuintileScoring()
    segments: SegmentRules = DEFAULT_SEGMENT_RULES
    states: StateRules = StateRules()
