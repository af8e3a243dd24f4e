"""Preview and export of a segment's members: masking, formats, chunks, snapshot, the log."""

from __future__ import annotations

import csv
import io

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from kizuna.domain.records import CustomerTraits, Identifiers
from kizuna.errors import InvalidInput, NotFound
from kizuna.segments.export import MEMBER_COLUMNS, open_export, preview_segment
from kizuna.store.customers import apply_traits
from kizuna.store.identity import IdentityResolver
from kizuna.store.operation_log import Actor, verify_log
from kizuna.store.tables import operation_log
from tests.integration.segment_shop import build_shop

ANALYST = Actor("analyst", "cli")


@pytest.fixture
def shop(scope_factory):
    with scope_factory() as scope:
        return build_shop(scope)


def _log(db):
    with db.read() as conn:
        assert verify_log(conn) == []
        return conn.execute(sa.select(operation_log).order_by(operation_log.c.entry_id)).all()


def _by_shop_id(rows):
    return {r["shop_customer_id"]: r for r in rows}


def test_a_masked_preview_is_not_logged(db, shop):
    preview = preview_segment(db, "shop", "tokyo", limit=10, actor=ANALYST)
    assert preview.members == 4 and not preview.revealed
    rows = _by_shop_id(preview.rows)
    assert set(rows) == {"C1", "C2", "C3", "C4"}
    c1 = rows["C1"]
    assert (c1["email"], c1["phone"], c1["last_name"]) == ("t***@example.jp", "090-****-2222",
                                                          "山 *")  # fmt: skip
    assert c1["first_name"] == "***" and c1["prefecture"] == "東京都"
    assert c1["rfm_segment"] == "champions" and c1["clv"] == 12345.5
    assert rows["C4"]["email"] is None and rows["C4"]["clv"] is None
    assert list(preview.frame().columns) == list(MEMBER_COLUMNS)
    assert _log(db) == []
    assert len(preview_segment(db, "shop", "tokyo", limit=2, actor=ANALYST).rows) == 2


def test_a_revealed_preview_is_logged(db, shop, workspace):
    preview = preview_segment(db, "shop", "tokyo", limit=10, reveal=True, actor=ANALYST)
    assert _by_shop_id(preview.rows)["C1"]["email"] == "taro@example.jp"
    (entry,) = _log(db)
    assert (entry.actor, entry.origin, entry.action, entry.target) == (
        "analyst", "cli", "segment.preview", "tokyo")  # fmt: skip
    assert entry.workspace_id == workspace.workspace_id
    assert entry.details == {"rows": 4, "revealed": True, "members": 4}
    assert entry.at == db.clock.now()


def test_bad_preview_and_export_requests_log_nothing(db, shop):
    with pytest.raises(InvalidInput) as error:
        preview_segment(db, "shop", "tokyo", limit=0, reveal=True, actor=ANALYST)
    assert error.value.problems[0].field == "limit"
    with pytest.raises(InvalidInput) as error:
        open_export(db, "shop", "tokyo", format="xlsx", reveal=True, actor=ANALYST)
    assert error.value.problems[0].field == "format"
    with pytest.raises(NotFound):
        open_export(db, "shop", "ghosts", format="csv", reveal=True, actor=ANALYST)
    assert _log(db) == []


def test_csv_export_is_masked_chunked_and_logged(db, shop):
    with open_export(db, "shop", "tokyo", format="csv", reveal=False, actor=ANALYST,
                     chunk_rows=1) as export:  # fmt: skip
        assert export.rows == 4 and export.filename == "tokyo.csv"
        batches = list(export.batches())
    assert [rows for _, rows in batches] == [0, 1, 1, 1, 1]  # header, then one member each
    data = b"".join(chunk for chunk, _ in batches)
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM, for Excel
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == 4 and list(rows[0]) == list(MEMBER_COLUMNS)
    c1 = _by_shop_id(rows)["C1"]
    assert c1["email"] == "t***@example.jp" and c1["city"] == "渋谷区"
    assert c1["attributes"] == '{"skin_type": "dry"}'
    assert "taro@example.jp" not in data.decode("utf-8-sig")
    (entry,) = _log(db)
    assert (entry.action, entry.target, entry.actor) == ("segment.export", "tokyo", "analyst")
    assert entry.details == {"rows": 4, "format": "csv", "revealed": False}


def test_parquet_export_reveals_when_asked(db, shop):
    with open_export(db, "shop", "tokyo", format="parquet", reveal=True, actor=ANALYST,
                     chunk_rows=3) as export:  # fmt: skip
        data = b"".join(export.stream())
    parquet = pq.ParquetFile(io.BytesIO(data))
    assert parquet.metadata.num_rows == 4 and parquet.metadata.num_row_groups == 2
    table = parquet.read()
    assert str(table.schema.field("registered_at").type) == "timestamp[us, tz=Asia/Tokyo]"
    rows = _by_shop_id(table.to_pylist())
    assert rows["C1"]["email"] == "taro@example.jp" and rows["C1"]["p_alive"] == 0.9
    assert _log(db)[0].details == {"rows": 4, "format": "parquet", "revealed": True}


def test_an_export_reads_one_snapshot(db, shop, scope_factory):
    export = open_export(db, "shop", "tokyo", format="dataframe", reveal=False, actor=ANALYST)
    with scope_factory() as scope:  # a new Tokyo customer arrives mid-export
        resolver = IdentityResolver(scope)
        late = resolver.resolve(Identifiers(user_id="C11"), scope.now)
        resolver.flush()
        apply_traits(scope, late, CustomerTraits(prefecture="東京都"))
    frames = list(export.frames())
    assert sum(len(f) for f in frames) == export.rows == 4
    again = open_export(db, "shop", "tokyo", format="dataframe", reveal=False, actor=ANALYST)
    again.close()
    assert again.rows == 5 and [e.details["rows"] for e in _log(db)] == [4, 5]


def test_csv_cells_that_excel_would_run_as_formulas_are_neutralized(db, shop, scope_factory):
    with scope_factory() as scope:
        resolver = IdentityResolver(scope)
        c2 = resolver.resolve(Identifiers(user_id="C2"), scope.now)
        resolver.flush()
        apply_traits(scope, c2, CustomerTraits(city='=HYPERLINK("http://evil.example","x")'))
    with open_export(db, "shop", "tokyo", format="csv", reveal=True, actor=ANALYST) as export:
        data = b"".join(chunk for chunk, _ in export.batches()).decode("utf-8-sig")
    rows = _by_shop_id(list(csv.DictReader(io.StringIO(data))))
    assert rows["C2"]["city"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows["C1"]["phone"].startswith("+81")  # E.164 phones stay as stored
