"""File import on the backend under test: encodings, formats, kinds, rejects and re-runs."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from kizuna.errors import InvalidInput
from kizuna.ingest.files import import_file
from kizuna.store.tables import (
    consent_events,
    consents,
    customers,
    events,
    identities,
    order_items,
    orders,
    products,
)

TABLES = (customers, identities, orders, order_items, products, consents, consent_events, events)

ORDER_HEADER = (
    "受注番号,顧客ID,メールアドレス,電話番号,購入日時,商品コード,商品名,数量,単価,値引,合計金額"
)
ORDER_ROWS = [
    "A001,C001,taro@example.jp,０９０－１２３４－５６７８,2024/4/1,SKU-1,りんご,２,500,0,1500",
    "A001,C001,taro@example.jp,０９０－１２３４－５６７８,2024/4/1,SKU-2,みかん,1,500,0,1500",
    'A002,C002,hanako@example.jp,03-1234-5678,45383,SKU-1,りんご,1,"1,000",0,1000',
    "A003,C003,not-an-email,,2024-04-02 10:00,SKU-1,りんご,1,500,0,500",
    "A004,C004,jiro@example.jp,,いつか,SKU-1,りんご,1,500,0,500",
    "A005,C005,saburo@example.jp,,2024年4月3日,SKU-3,@@,1,500,0,500",
    "A006,C006,shiro@example.jp,,2024/4/5 9:30,SKU-1,りんご,1,500,0,500",
]


def snapshot(db) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table an import writes, in a stable order."""
    with db.read() as conn:
        return {
            t.name: sorted((tuple(map(repr, row)) for row in conn.execute(sa.select(t))), key=str)
            for t in TABLES
        }


def cp932_orders(path) -> None:
    body = "\r\n".join([ORDER_HEADER, *ORDER_ROWS]).encode("cp932") + b"\r\n"
    path.write_bytes(body.replace(b"@@", b"\x81\x20bad"))


def test_cp932_orders_import_rejects_bad_rows_and_reruns_change_nothing(
    db, workspace, clock, tmp_path
):
    source = tmp_path / "受注.csv"
    cp932_orders(source)
    summary = import_file(db, workspace, "orders", source)
    assert (summary.rows_read, summary.rows_imported, summary.rows_rejected) == (7, 4, 3)
    with db.read() as conn:
        stored = {r.order_id: r for r in conn.execute(sa.select(orders))}
        items = conn.execute(sa.select(order_items).order_by(order_items.c.line_no)).all()
    assert sorted(stored) == ["A001", "A002", "A006"]
    assert stored["A001"].ordered_at == datetime(2024, 3, 31, 15, 0, tzinfo=UTC)
    assert stored["A002"].ordered_at == datetime(2024, 3, 31, 15, 0, tzinfo=UTC)  # serial 45383
    assert stored["A006"].ordered_at == datetime(2024, 4, 5, 0, 30, tzinfo=UTC)
    assert stored["A001"].total == 1500
    a001 = [(i.sku, i.quantity, i.unit_price) for i in items if i.order_id == "A001"]
    assert a001 == [("SKU-1", 2, 500.0), ("SKU-2", 1, 500.0)]
    with summary.reject_path.open(encoding="utf-8-sig", newline="") as f:
        rejected = {int(r["line"]): r for r in csv.DictReader(f)}
    assert sorted(rejected) == [5, 6, 7]
    assert "メールアドレス" in rejected[5]["reason"] and "email" in rejected[5]["reason"]
    assert "購入日時" in rejected[6]["reason"] and "いつか" in rejected[6]["reason"]
    assert "cp932" in rejected[7]["reason"]
    assert rejected[7]["商品名"] == "\\x81 bad" and rejected[5]["受注番号"] == "A003"

    before = snapshot(db)
    clock.advance(timedelta(days=1))
    again = import_file(db, workspace, "orders", source)
    assert again.rows_imported == 4
    assert snapshot(db) == before


def test_full_width_phone_is_normalized_for_identity(db, workspace, tmp_path):
    source = tmp_path / "orders.csv"
    cp932_orders(source)
    import_file(db, workspace, "orders", source)
    with db.read() as conn:
        phones = [
            db.cipher.decrypt(r.value_enc)
            for r in conn.execute(sa.select(identities).where(identities.c.kind == "phone"))
        ]
    assert sorted(phones) == ["+81312345678", "+819012345678"]


CUSTOMER_CSV = (
    "顧客ID,メールアドレス,姓,名,セイ,メイ,郵便番号,都道府県,市区町村,住所,生年月日,性別,登録日\n"
    "C001,Taro@Example.jp,山田,太郎,ヤマダ,タロウ,１５０－０００１,東京都,渋谷区,神宮前1-1,1990/1/2,男性,2023/5/1\n"
    "C002,hanako@example.jp,佐藤,花子,サトウ,ハナコ,5300001,大阪府,大阪市北区,梅田1-1,1985年12月3日,女性,2023/6/1\n"
)


def customer_traits(db, user_id: str) -> dict[str, object]:
    with db.read() as conn:
        row = conn.execute(
            sa.select(customers).where(customers.c.shop_customer_id == user_id)
        ).one()
    plain = {
        c: db.cipher.decrypt_optional(row._mapping[c]) for c in row._mapping if c.endswith("_enc")
    }
    return {**row._mapping, **plain}


def test_utf8_bom_customers_import_and_rerun(db, workspace, clock, tmp_path):
    source = tmp_path / "customers.csv"
    source.write_bytes(CUSTOMER_CSV.encode("utf-8-sig"))
    summary = import_file(db, workspace, "customers", source)
    assert (summary.rows_imported, summary.rows_rejected) == (2, 0)
    taro = customer_traits(db, "C001")
    assert taro["email_enc"] == "taro@example.jp"
    assert taro["postal_code_enc"] == "150-0001"
    assert taro["birthday_enc"] == "1990-01-02" and taro["birth_md"] == "01-02"
    assert (taro["prefecture"], taro["city"], taro["gender"]) == ("東京都", "渋谷区", "男性")
    assert taro["last_name_kana_enc"] == "ヤマダ"
    assert customer_traits(db, "C002")["birthday_enc"] == "1985-12-03"
    before = snapshot(db)
    clock.advance(timedelta(hours=5))
    import_file(db, workspace, "customers", source)
    assert snapshot(db) == before


def test_changed_customer_trait_is_updated(db, workspace, clock, tmp_path):
    source = tmp_path / "customers.csv"
    source.write_text(CUSTOMER_CSV, encoding="utf-8")
    import_file(db, workspace, "customers", source)
    clock.advance(timedelta(days=1))
    source.write_text(CUSTOMER_CSV.replace("渋谷区,神宮前1-1", "港区,六本木1-1"), encoding="utf-8")
    import_file(db, workspace, "customers", source)
    taro, hanako = customer_traits(db, "C001"), customer_traits(db, "C002")
    assert (taro["city"], taro["address_enc"]) == ("港区", "六本木1-1")
    assert taro["updated_at"] == clock.now()
    assert hanako["updated_at"] == clock.now() - timedelta(days=1)


def test_jsonl_events_get_stable_message_ids(db, workspace, clock, tmp_path):
    source = tmp_path / "events.jsonl"
    lines = [
        {
            "user_id": "C001",
            "event": "Product Viewed",
            "timestamp": "2024-04-01T10:00:00+09:00",
            "sku": "SKU-1",
        },
        {
            "email": "x@example.jp",
            "event": "Signed Up",
            "timestamp": "2024/4/2 12:00",
            "messageId": "m-2",
        },
        {"user_id": "C003", "event": "Bad", "timestamp": "not a date"},
    ]
    body = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n{broken\n"
    source.write_text(body, encoding="utf-8")
    summary = import_file(db, workspace, "events", source)
    assert (summary.rows_read, summary.rows_imported, summary.rows_rejected) == (4, 2, 2)
    with db.read() as conn:
        rows = {r.name: r for r in conn.execute(sa.select(events))}
    assert rows["Product Viewed"].properties == {"sku": "SKU-1"}
    assert rows["Product Viewed"].occurred_at == datetime(2024, 4, 1, 1, 0, tzinfo=UTC)
    assert rows["Product Viewed"].message_id.startswith("file-")
    assert rows["Signed Up"].message_id == "m-2"
    before = snapshot(db)
    clock.advance(timedelta(days=1))
    import_file(db, workspace, "events", source)
    assert snapshot(db) == before


def test_parquet_products_in_batches(db, workspace, clock, tmp_path):
    source = tmp_path / "products.parquet"
    table = pa.table({
        "商品コード": [f"SKU-{n}" for n in range(10)],
        "商品名": [f"商品{n}" for n in range(10)],
        "価格": [100.0 * n for n in range(10)],
        "在庫数": list(range(10)),
        "ブランド": ["Kizuna"] * 10,
    })  # fmt: skip
    pq.write_table(table, source, row_group_size=4)
    summary = import_file(db, workspace, "products", source)
    assert summary.rows_imported == 10
    with db.read() as conn:
        got = conn.execute(sa.select(products).where(products.c.sku == "SKU-3")).one()
    assert (got.name, got.price, got.stock, got.brand) == ("商品3", 300.0, 3, "Kizuna")
    before = snapshot(db)
    clock.advance(timedelta(days=1))
    import_file(db, workspace, "products", source)
    assert snapshot(db) == before


def test_parquet_orders_with_timestamps(db, workspace, tmp_path):
    source = tmp_path / "orders.parquet"
    table = pa.table({
        "注文番号": ["P1", "P1", "P2"], "顧客ID": ["C1", "C1", "C2"],
        "注文日時": [datetime(2024, 4, 1, 10, 0)] * 3, "SKU": ["A", "B", "A"],
        "数量": [1, 2, 3], "単価": [100, 200, 100],
    })  # fmt: skip
    pq.write_table(table, source)
    import_file(db, workspace, "orders", source)
    with db.read() as conn:
        got = {r.order_id: r for r in conn.execute(sa.select(orders))}
    assert got["P1"].subtotal == 500 and got["P2"].total == 300
    assert got["P1"].ordered_at == datetime(2024, 4, 1, 1, 0, tzinfo=UTC)


def test_consents_with_japanese_values(db, workspace, clock, tmp_path):
    source = tmp_path / "consents.csv"
    source.write_text(
        "顧客ID,チャネル,配信許可,同意日時,取得方法\n"
        "C001,メール,許可,2024/4/1 10:00,会員登録フォーム\n"
        "C002,line,拒否,2024/4/2,\n"
        "C003,fax,許可,2024/4/2,\n",
        encoding="utf-8",
    )
    summary = import_file(db, workspace, "consents", source)
    assert (summary.rows_imported, summary.rows_rejected) == (2, 1)
    with db.read() as conn:
        got = sorted((r.channel, r.status) for r in conn.execute(sa.select(consents)))
    assert got == [("email", "opted_in"), ("line", "opted_out")]
    before = snapshot(db)
    clock.advance(timedelta(days=1))
    import_file(db, workspace, "consents", source)
    assert snapshot(db) == before


def test_mapping_file_maps_custom_headers(db, workspace, tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "columns:\n  伝票No: order_id\n  お客様番号: user_id\n  受付日: ordered_at\n"
        "  品番コード: sku\n  メモ: null\ndefaults:\n  channel: store\n",
        encoding="utf-8",
    )
    source = tmp_path / "pos.csv"
    source.write_text(
        "伝票No,お客様番号,受付日,品番コード,メモ\nR1,C9,2024/4/1,S1,x\n", encoding="utf-8"
    )
    summary = import_file(db, workspace, "orders", source, mapping=mapping)
    assert summary.rows_imported == 1 and summary.ignored_columns == ["メモ"]
    with db.read() as conn:
        assert conn.execute(sa.select(orders.c.channel)).scalar() == "store"


def test_missing_order_id_fails_before_importing(db, workspace, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text("顧客ID,購入日時\nC1,2024/4/1\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        import_file(db, workspace, "orders", source)
    assert "order_id" in str(caught.value) and "顧客ID, 購入日時" in str(caught.value)
    assert snapshot(db)["customers"] == []


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [("invoices", "a.csv", "unknown kind"), ("orders", "missing.csv", "no such file"),
     ("orders", "a.xlsx", "cannot tell the format")],
)  # fmt: skip
def test_bad_requests_are_refused(db, workspace, tmp_path, kind, name, expected):
    (tmp_path / "a.csv").write_text("受注番号\n1\n", encoding="utf-8")
    (tmp_path / "a.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(InvalidInput, match=expected):
        import_file(db, workspace, kind, tmp_path / name)


def test_value_too_long_for_the_store_is_rejected_alone(db, workspace, tmp_path):
    source = tmp_path / "orders.csv"
    long_sku = "S" * 300
    source.write_text(
        f"受注番号,顧客ID,購入日時,商品コード\nB1,C1,2024/4/1,ok\nB2,C2,2024/4/1,{long_sku}\nB3,C3,2024/4/1,ok\n",
        encoding="utf-8",
    )
    summary = import_file(db, workspace, "orders", source)
    with db.read() as conn:
        stored = sorted(conn.execute(sa.select(orders.c.order_id)).scalars())
    if db.dialect == "postgresql":
        assert stored == ["B1", "B3"] and summary.rows_rejected == 1
    else:  # SQLite does not enforce VARCHAR lengths
        assert stored == ["B1", "B2", "B3"]
