"""RFM rule tables, scoring configs, customer states and the prefecture → region map."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from kizuna.analytics.rfm_rules import (
    DEFAULT_SEGMENT_RULES,
    STATES,
    QuintileScoring,
    RfmConfig,
    RfmScoring,
    SegmentRule,
    SegmentRules,
    StateRules,
    ThresholdScoring,
)
from kizuna.demo.people import PREFECTURES as DEMO_PREFECTURES
from kizuna.domain.regions import PREFECTURES, REGIONS, find_prefecture, region_of

KNOWN = {
    (5, 5): "champions", (5, 4): "champions", (4, 5): "loyal", (3, 4): "loyal",
    (5, 3): "potential_loyalists", (4, 2): "potential_loyalists", (5, 1): "new",
    (4, 1): "promising", (3, 3): "need_attention", (3, 1): "about_to_sleep",
    (3, 2): "about_to_sleep", (2, 5): "cant_lose_them", (1, 5): "cant_lose_them",
    (2, 3): "at_risk", (1, 4): "at_risk", (1, 1): "lost", (1, 2): "hibernating",
    (2, 1): "hibernating", (2, 2): "hibernating",
}  # fmt: skip


@pytest.mark.parametrize(("cell", "segment"), KNOWN.items())
def test_default_table_maps_known_cells(cell, segment):
    r, f = cell
    for m in range(1, 6):  # the default table ignores M
        assert DEFAULT_SEGMENT_RULES.segment_for(r, f, m).key == segment


def test_default_table_names_eleven_segments_in_two_languages():
    rules = DEFAULT_SEGMENT_RULES.rules
    assert [r.label_en for r in rules] == [
        "Champions", "Loyal", "Potential loyalists", "New", "Promising", "Need attention",
        "About to sleep", "Can't lose them", "At risk", "Lost", "Hibernating",
    ]  # fmt: skip
    ja = {r.key: r.label_ja for r in rules}
    assert ja["champions"] == "優良顧客" and ja["hibernating"] == "休眠顧客"
    assert len(set(ja.values())) == len(ja)
    assert all(r.description for r in rules)


def test_lookup_matches_first_match_for_every_cell():
    keys = [r.key for r in DEFAULT_SEGMENT_RULES.rules]
    lookup = DEFAULT_SEGMENT_RULES.lookup()
    assert len(lookup) == 125
    for r in range(1, 6):
        for f in range(1, 6):
            for m in range(1, 6):
                index = (r - 1) * 25 + (f - 1) * 5 + (m - 1)
                assert keys[lookup[index]] == DEFAULT_SEGMENT_RULES.segment_for(r, f, m).key


def test_describe_reads_as_a_table():
    table = DEFAULT_SEGMENT_RULES.describe()
    assert list(table.columns) == [
        "order", "segment", "label_ja", "label_en", "recency", "frequency", "monetary",
        "description",
    ]  # fmt: skip
    champions = table.iloc[0]
    assert (champions["recency"], champions["frequency"], champions["monetary"]) == (
        "5", "4–5", "any"
    )  # fmt: skip
    assert table["order"].tolist() == list(range(1, 12))


def test_first_match_wins_and_catch_all():
    rules = SegmentRules(rules=(
        SegmentRule(key="big", label_en="Big", label_ja="大口", monetary=(5, 5)),
        SegmentRule(key="recent", label_en="Recent", label_ja="最近", recency=(4, 5)),
        SegmentRule(key="rest", label_en="Rest", label_ja="その他"),
    ))  # fmt: skip
    assert rules.segment_for(5, 1, 5).key == "big"
    assert rules.segment_for(5, 1, 4).key == "recent"
    assert rules.segment_for(1, 5, 4).key == "rest"


def test_incomplete_or_inconsistent_tables_are_rejected():
    with pytest.raises(ValidationError, match="no rule covers R1F1M1"):
        SegmentRules(rules=(SegmentRule(key="x", label_en="X", label_ja="X", recency=(2, 5)),))
    with pytest.raises(ValidationError, match="unique"):
        rule = SegmentRule(key="x", label_en="X", label_ja="X")
        SegmentRules(rules=(rule, rule))
    with pytest.raises(ValidationError):
        SegmentRule(key="x", label_en="X", label_ja="X", recency=(4, 2))
    with pytest.raises(ValidationError):
        SegmentRule(key="x", label_en="X", label_ja="X", frequency=(0, 6))
    with pytest.raises(ValidationError):
        SegmentRule(key="Bad Key", label_en="X", label_ja="X")


def test_scoring_configs_parse_from_json_and_validate():
    adapter: TypeAdapter[object] = TypeAdapter(RfmScoring)
    assert isinstance(adapter.validate_python({"method": "quintile"}), QuintileScoring)
    parsed = adapter.validate_python({"method": "threshold", "recency_days": [7, 30, 60, 120]})
    assert isinstance(parsed, ThresholdScoring) and parsed.recency_days == (7, 30, 60, 120)
    config = RfmConfig.model_validate({"scoring": {"method": "threshold"}})
    assert isinstance(config.scoring, ThresholdScoring)
    assert isinstance(RfmConfig().scoring, QuintileScoring)
    with pytest.raises(ValidationError, match="strictly increasing"):
        ThresholdScoring(frequency=(2, 2, 5, 10))
    with pytest.raises(ValidationError):
        ThresholdScoring(monetary=(-1, 2, 3, 4))
    with pytest.raises(ValidationError):
        adapter.validate_python({"method": "ntile"})


def test_customer_states():
    rules = StateRules()
    assert rules.state_for(10, 1) == "new"
    assert rules.state_for(10, 2) == "stable"
    assert rules.state_for(10, 3) == "good"
    assert rules.state_for(10, 4) == "good"
    assert rules.state_for(10, 5) == "loyal"
    assert rules.state_for(181, 9) == "dormant"
    assert rules.state_for(180, 1) == "new"
    assert list(STATES) == ["new", "stable", "good", "loyal", "dormant"]
    with pytest.raises(ValidationError):
        StateRules(good_orders=5, loyal_orders=5)


def test_prefectures_and_regions():
    assert len(PREFECTURES) == 47 and len(REGIONS) == 8
    assert {p.region for p in PREFECTURES} == set(REGIONS)
    for name, _, _ in DEMO_PREFECTURES:
        assert find_prefecture(name) is not None
    assert find_prefecture("東京").name_ja == "東京都"
    assert find_prefecture("tokyo-to").code == "13"
    assert find_prefecture("１３").name_en == "Tokyo"
    assert find_prefecture("Hokkaido").name_ja == "北海道"
    assert region_of("三重県").name_ja == "近畿"
    assert region_of("沖縄県").name_en == "Kyushu and Okinawa"
    assert region_of("新潟").key == "chubu"
    assert region_of(None) is None and region_of("Atlantis") is None
    assert [r.name_ja for r in REGIONS] == [
        "北海道", "東北", "関東", "中部", "近畿", "中国", "四国", "九州・沖縄"
    ]  # fmt: skip


def test_module_docstring_table_matches_the_default_rules():
    import kizuna.analytics.rfm_rules as module

    table = DEFAULT_SEGMENT_RULES.describe()
    lines = {line.split()[1]: line.split() for line in module.__doc__.splitlines()
             if line.strip()[:2].strip().isdigit()}  # fmt: skip
    for row in table.itertuples():
        assert lines[row.segment][:5] == [
            str(row.order), row.segment, row.recency, row.frequency, row.label_ja
        ]  # fmt: skip
