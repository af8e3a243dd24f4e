"""File-import parsing without a database: encodings, mappings, values, row grouping."""

from __future__ import annotations

import codecs

import pytest

from kizuna.errors import InvalidInput
from kizuna.ingest.files import BUILTIN, MappingSpec, detect_encoding, load_mapping
from kizuna.ingest.files._convert import Accepted, Rejected, make_converter
from kizuna.ingest.files._mapping import bind_columns
from kizuna.ingest.files._readers import CsvSource
from kizuna.ingest.files._values import RowError, flag, integer, number


def test_encoding_detection():
    text = "顧客ID,名前\n1,山田\n"
    assert detect_encoding(codecs.BOM_UTF8 + text.encode()) == "utf-8-sig"
    assert detect_encoding(text.encode()) == "utf-8"
    assert detect_encoding(text.encode("cp932")) == "cp932"
    # A multi-byte character cut by the end of the sample is still UTF-8.
    assert detect_encoding(text.encode()[:-4]) == "utf-8"


def test_builtin_mapping_covers_japanese_shop_headers():
    orders = BUILTIN["orders"]
    assert orders["受注番号"] == orders["注文番号"] == "order_id"
    assert orders["購入日時"] == orders["注文日時"] == "ordered_at"
    assert (orders["顧客id"], orders["sku"], orders["合計金額"]) == ("user_id", "sku", "total")
    customers = BUILTIN["customers"]
    assert (customers["セイ"], customers["郵便番号"], customers["生年月日"]) == (
        "last_name_kana", "postal_code", "birthday")  # fmt: skip


def test_headers_match_after_nfkc_and_case_folding():
    cm = bind_columns("customers", ["ﾒｰﾙｱﾄﾞﾚｽ", " EMAIL2 ", "顧客ＩＤ"], MappingSpec())
    assert cm.fields == {"ﾒｰﾙｱﾄﾞﾚｽ": "email", "顧客ＩＤ": "user_id"}
    assert cm.ignored == [" EMAIL2 "]


def test_missing_required_column_names_it_and_lists_headers():
    with pytest.raises(InvalidInput) as caught:
        bind_columns("products", ["商品名", "価格"], MappingSpec())
    assert "'sku'" in str(caught.value) and "商品名, 価格" in str(caught.value)


def test_mapping_to_an_unknown_field_is_refused():
    with pytest.raises(InvalidInput, match="not a orders field"):
        bind_columns("orders", ["x"], MappingSpec(columns={"x": "colour"}))


def test_load_mapping_accepts_flat_json(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"会員No": "user_id"}', encoding="utf-8")
    assert load_mapping(path).columns == {"会員No": "user_id"}
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InvalidInput, match="must be an object"):
        load_mapping(path)


def test_value_parsers():
    assert number("￥１，９８０円", "単価", "unit_price") == 1980.0
    assert integer("３", "数量", "quantity") == 3
    assert flag("○", "セール", "is_sale") is True
    with pytest.raises(RowError, match="column '数量' \\(quantity\\)"):
        integer("1.5", "数量", "quantity")


def test_csv_reader_flags_undecodable_rows(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes("顧客ID,名\n1,山田\n".encode("cp932") + b"2,\x81\x20\n3,x\n")
    source = CsvSource(path)
    rows = list(source.rows())
    source.close()
    assert [(r.line, r.error is not None) for r in rows] == [(2, False), (3, True), (4, False)]


def test_consecutive_rows_become_one_order_and_a_bad_line_rejects_its_order():
    cm = bind_columns(
        "orders", ["受注番号", "顧客ID", "購入日時", "商品コード", "数量"], MappingSpec()
    )
    converter = make_converter(cm, "Asia/Tokyo")
    rows = [("A", "1"), ("A", "2"), ("B", "x"), ("B", "1"), ("C", "1")]
    outcomes = []
    for line, (order_id, qty) in enumerate(rows, start=2):
        values = cm.apply({"受注番号": order_id, "顧客ID": "C1", "購入日時": "2024/4/1",
                           "商品コード": "S", "数量": qty})  # fmt: skip
        outcomes += converter.feed(line, values)
    outcomes += converter.finish()
    assert isinstance(outcomes[0], Accepted) and outcomes[0].lines == [2, 3]
    assert len(outcomes[0].record.items) == 2
    assert isinstance(outcomes[1], Rejected) and sorted(outcomes[1].reasons) == [4, 5]
    assert "数量" in outcomes[1].reasons[4] and "line 4" in outcomes[1].reasons[5]
    assert isinstance(outcomes[2], Accepted) and outcomes[2].record.order_id == "C"
