"""Segments through every surface: HTTP API, CLI and Python API, bad input at each edge."""

from __future__ import annotations

import csv
import getpass
import io
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.api import build_app
from kizuna.cli import app
from kizuna.client import Kizuna
from kizuna.errors import InvalidInput, NotFound
from kizuna.store.operation_log import verify_log
from kizuna.store.tables import operation_log
from tests.integration.segment_shop import TOKYO, build_shop

AUTH = {"Authorization": "Bearer test-token"}
BASE = "/api/workspaces/shop/segments"
EMAIL_BUYERS = {
    "key": "email-buyers",
    "name": "メール配信可能な購入者",
    "rank": 1,
    "condition": {"type": "and", "conditions": [
        {"type": "segment", "segment": "tokyo"},
        {"type": "channel", "channel": "email", "state": "opted_in"},
    ]},
}  # fmt: skip
BAD_YAML = """key: lapsed
name: 休眠
condition:
  type: and
  conditions:
    - type: location
      prefectures: [東京都]
    - type: orders
      within:
        days: -5
"""


@pytest.fixture
def shop(scope_factory):
    with scope_factory() as scope:
        return build_shop(scope)


@pytest.fixture
def http(db, shop):
    with TestClient(build_app(db, "test-token")) as client:
        yield client


def _log(db):
    with db.read() as conn:
        assert verify_log(conn) == []
        return conn.execute(sa.select(operation_log).order_by(operation_log.c.entry_id)).all()


# --- HTTP API ---------------------------------------------------------------------------


def test_http_save_list_read_count_and_archive(http, db):
    saved = http.post(BASE, json=EMAIL_BUYERS, headers=AUTH)
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["created_by"] == "api-token" and "segment:tokyo" in body["depends_on"]
    assert [s["key"] for s in http.get(BASE, headers=AUTH).json()] == ["email-buyers", "tokyo"]
    one = http.get(f"{BASE}/email-buyers", headers=AUTH).json()
    assert one["condition"]["conditions"][1] == {"type": "channel", "channel": "email",
                                                  "state": "opted_in"}  # fmt: skip
    counted = http.get(f"{BASE}/email-buyers/count", headers=AUTH).json()
    assert counted["customers"] == 2
    email = next(c for c in counted["channels"] if c["channel"] == "email")
    assert (email["reachable"], email["suppressed"], email["label_ja"]) == (1, 1, "メール")
    refused = http.delete(f"{BASE}/tokyo", headers=AUTH)  # email-buyers still refers to it
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "segment_in_use"
    assert http.delete(f"{BASE}/email-buyers", headers=AUTH).status_code == 204
    assert http.get(f"{BASE}/email-buyers", headers=AUTH).status_code == 404
    assert http.get(BASE).status_code == 401
    assert http.get("/api/workspaces/nowhere/segments", headers=AUTH).status_code == 404


def test_http_counts_a_draft_and_reports_its_problems(http):
    draft = {"type": "and", "conditions": [{"type": "location", "regions": ["関東"]},
                                           {"type": "orders", "within": {"days": 90}}]}  # fmt: skip
    counted = http.post(f"{BASE}/count", json=draft, headers=AUTH)
    assert counted.status_code == 200 and counted.json()["customers"] == 2  # C1, C2
    bad = {
        "type": "and",
        "conditions": [
            {"type": "trait", "trait": "shoe_size", "op": "eq", "value": 1},
            {"type": "orders", "within": {"days": 0}},
        ],
    }
    answer = http.post(f"{BASE}/count", json=bad, headers=AUTH)
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["conditions[1].within.days"]
    unknown = http.post(f"{BASE}/count", json=bad["conditions"][0], headers=AUTH)
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["field"] == "trait"


def test_http_validate_and_save_name_spec_paths(http):
    ok = http.post(f"{BASE}/validate", json=EMAIL_BUYERS, headers=AUTH).json()
    assert ok == {"ok": True, "problems": []}
    unknown = {**EMAIL_BUYERS, "condition": {"type": "and", "conditions": [
        {"type": "segment", "segment": "nobody"}]}}  # fmt: skip
    checked = http.post(f"{BASE}/validate", json=unknown, headers=AUTH).json()
    assert checked["ok"] is False
    assert checked["problems"][0]["field"] == "condition.conditions[0].segment"
    shape = {**EMAIL_BUYERS, "key": "Bad Key", "condition": {"type": "planet"}}
    fields = {p["field"] for p in http.post(f"{BASE}/validate", json=shape,
                                           headers=AUTH).json()["problems"]}  # fmt: skip
    assert fields == {"key", "condition"}
    rejected = http.post(BASE, json=unknown, headers=AUTH)
    assert rejected.status_code == 400
    assert rejected.json()["errors"][0]["field"] == "condition.conditions[0].segment"
    assert http.get(f"{BASE}/email-buyers", headers=AUTH).status_code == 404
    schema = http.get(f"{BASE}/schema", headers=AUTH).json()
    assert {"key", "name", "condition"} <= set(schema["properties"])


def test_http_report(http):
    report = http.get(f"{BASE}/tokyo/report", params={"baseline": 0.1, "control_share": 0.5},
                      headers=AUTH).json()  # fmt: skip
    assert report["rank"] == 2 and report["realistic"]["members"] == 4
    assert report["realistic"]["revenue_share"] == 0.9
    assert (report["response"]["treatment"], report["response"]["control"]) == (2, 2)
    assert report["labels"]["response"] == ["効果測定", "Response"]
    assert {c["channel"] for c in report["reach"]} == {"email", "line", "sms", "push"}
    bad = http.get(f"{BASE}/tokyo/report", params={"baseline": 2}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "baseline"


def test_http_preview_and_export_mask_and_log(http, db):
    masked = http.get(f"{BASE}/tokyo/preview", params={"limit": 10}, headers=AUTH).json()
    emails = {r["shop_customer_id"]: r["email"] for r in masked["rows"]}
    assert emails["C1"] == "t***@example.jp" and masked["revealed"] is False
    assert _log(db) == []
    clear = http.get(f"{BASE}/tokyo/preview", params={"reveal": True}, headers=AUTH).json()
    assert "taro@example.jp" in {r["email"] for r in clear["rows"]}
    exported = http.get(f"{BASE}/tokyo/export", headers=AUTH)
    assert exported.status_code == 200 and exported.headers["x-kizuna-rows"] == "4"
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="tokyo.csv"' in exported.headers["content-disposition"]
    assert exported.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 4 and "taro@example.jp" not in exported.text
    parquet = http.get(f"{BASE}/tokyo/export", params={"format": "parquet", "reveal": True},
                       headers=AUTH)  # fmt: skip
    table = pq.read_table(io.BytesIO(parquet.content))
    assert "taro@example.jp" in table.column("email").to_pylist()
    entries = [(e.actor, e.origin, e.action, e.details) for e in _log(db)]
    assert entries == [
        ("api-token", "testclient", "segment.preview",
         {"rows": 4, "revealed": True, "members": 4}),
        ("api-token", "testclient", "segment.export",
         {"rows": 4, "format": "csv", "revealed": False}),
        ("api-token", "testclient", "segment.export",
         {"rows": 4, "format": "parquet", "revealed": True}),
    ]  # fmt: skip
    wrong = http.get(f"{BASE}/tokyo/export", params={"format": "xlsx"}, headers=AUTH)
    assert wrong.status_code == 400 and len(_log(db)) == 3


# --- CLI --------------------------------------------------------------------------------

runner = CliRunner()


def test_every_segments_command_has_help():
    for command in ("list", "create", "validate", "count", "show", "report", "preview",
                    "export", "delete", "schema"):  # fmt: skip
        result = runner.invoke(app, ["segments", command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, command


def test_cli_create_count_show_report_preview_export_delete(cli_env, shop, db, tmp_path):
    spec = tmp_path / "email-buyers.yaml"
    spec.write_text(json.dumps(EMAIL_BUYERS, ensure_ascii=False), encoding="utf-8")
    created = runner.invoke(app, ["segments", "create", str(spec), "-w", "shop"])
    assert created.exit_code == 0, created.output
    assert "email-buyers" in created.output and "2 customers" in created.output
    listed = runner.invoke(app, ["segments", "list", "-w", "shop"])
    assert "email-buyers" in listed.output and "tokyo" in listed.output
    counted = runner.invoke(app, ["segments", "count", "tokyo", "-w", "shop"])
    assert counted.exit_code == 0 and "4 customers" in counted.output
    assert "メール" in counted.output and "配信可能" in counted.output
    draft = runner.invoke(app, ["segments", "count", str(spec), "-w", "shop"])
    assert draft.exit_code == 0 and "2 customers" in draft.output
    shown = runner.invoke(app, ["segments", "show", "email-buyers", "-w", "shop"])
    assert "segment: tokyo" in shown.output and "segment:tokyo" in shown.output
    report = runner.invoke(app, ["segments", "report", "tokyo", "-w", "shop"])
    assert report.exit_code == 0, report.output
    assert "Realistic" in report.output and "効果測定" in report.output and "Reach" in report.output
    preview = runner.invoke(app, ["segments", "preview", "tokyo", "-w", "shop"])
    assert "t***@example.jp" in preview.output and "taro@example.jp" not in preview.output
    out = tmp_path / "tokyo.parquet"
    exported = runner.invoke(app, ["segments", "export", "tokyo", "--out", str(out), "-w", "shop",
                                   "--reveal"])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert "Wrote 4 members" in exported.output
    assert pq.read_table(out).num_rows == 4
    (entry,) = _log(db)
    assert (entry.actor, entry.origin, entry.action) == (getpass.getuser(), "cli",
                                                         "segment.export")  # fmt: skip
    assert entry.details == {"rows": 4, "format": "parquet", "revealed": True}
    deleted = runner.invoke(app, ["segments", "delete", "email-buyers", "-w", "shop"])
    assert deleted.exit_code == 0 and "Archived" in deleted.output


def test_cli_names_the_file_line_and_path_of_bad_input(cli_env, shop, tmp_path):
    bad = tmp_path / "lapsed.yaml"
    bad.write_text(BAD_YAML, encoding="utf-8")
    result = runner.invoke(app, ["segments", "validate", str(bad), "-w", "shop"])
    assert result.exit_code == 2
    assert f"{bad}: line 10, field 'condition.conditions[1].within.days'" in result.output
    unknown = tmp_path / "unknown.yaml"
    nobody = "type: segment\n      segment: nobody\n    - type: location"
    unknown.write_text(
        BAD_YAML.replace("days: -5", "days: 5").replace("type: location", nobody),
        encoding="utf-8",
    )
    checked = runner.invoke(app, ["segments", "create", str(unknown), "-w", "shop"])
    assert checked.exit_code == 2
    assert "line 7, field 'condition.conditions[0].segment'" in checked.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: x\nname: [unclosed\n", encoding="utf-8")
    syntax = runner.invoke(app, ["segments", "validate", str(broken), "-w", "shop"])
    assert syntax.exit_code == 2 and "line 3" in syntax.output
    missing = runner.invoke(app, ["segments", "show", "ghosts", "-w", "shop"])
    assert missing.exit_code == 1 and "no segment 'ghosts'" in missing.output
    fine = runner.invoke(app, ["segments", "validate", str(unknown).replace("unknown", "x")])
    assert fine.exit_code == 2  # no such file
    wrong = runner.invoke(app, ["segments", "export", "tokyo", "-o", str(tmp_path / "t.xlsx"),
                                "--format", "xlsx", "-w", "shop"])  # fmt: skip
    assert wrong.exit_code == 2 and "format" in wrong.output


def test_cli_schema(cli_env, tmp_path):
    out = tmp_path / "segment.schema.json"
    result = runner.invoke(app, ["segments", "schema", "--out", str(out)])
    assert result.exit_code == 0
    assert "condition" in json.loads(out.read_text(encoding="utf-8"))["properties"]


# --- Python API -------------------------------------------------------------------------


def test_python_api(db, shop, tmp_path):
    client = Kizuna(db, "shop")
    path = tmp_path / "email-buyers.json"
    path.write_text(json.dumps(EMAIL_BUYERS, ensure_ascii=False), encoding="utf-8")
    saved = client.save_segment(path)
    assert saved.key == "email-buyers" and saved.rank == 1
    frame = client.segments()
    assert list(frame["key"]) == ["email-buyers", "tokyo"]
    assert str(frame["updated_at"].dt.tz) == "Asia/Tokyo"
    assert client.count("tokyo").customers == 4
    draft = client.count({"type": "channel", "channel": "line"})
    assert draft.customers == 1 and draft.frame().loc["line", "reachable"] == 1
    report = client.segment_report("tokyo", baseline=0.05)
    table = report.frame().set_index("metric")
    assert table.loc["members", "value"] == 4 and table.loc["baseline", "label_ja"] == "想定CVR"
    assert report.reach_frame().loc["email", "suppressed"] == 1
    preview = client.preview("tokyo", 3)
    assert len(preview) == 3 and preview["email"].dropna().str.contains(r"\*\*\*").all()
    members = client.members("tokyo", reveal=True)
    assert isinstance(members, pd.DataFrame) and len(members) == 4
    assert "taro@example.jp" in set(members["email"])
    written = client.export_segment("tokyo", tmp_path / "tokyo.csv")
    assert written == 4
    entries = [(e.actor, e.origin, e.details["format"]) for e in _log(db)]
    assert entries == [(getpass.getuser(), "python", "dataframe"),
                       (getpass.getuser(), "python", "csv")]  # fmt: skip


def test_python_api_bad_input(db, shop, tmp_path):
    client = Kizuna(db, "shop")
    with pytest.raises(InvalidInput) as error:
        client.save_segment({**TOKYO, "key": "t2", "condition": {"type": "segment",
                                                                "segment": "t2"}})  # fmt: skip
    assert error.value.problems[0].field == "condition.segment"
    with pytest.raises(InvalidInput) as error:
        client.count({"type": "orders", "within": {"days": 0}})
    assert error.value.problems[0].field == "within.days"
    with pytest.raises(InvalidInput) as error:
        client.save_segment(tmp_path / "missing.yaml")
    assert error.value.problems[0].field == "spec"
    with pytest.raises(NotFound):
        client.preview("ghosts")
    with pytest.raises(InvalidInput):
        client.preview("tokyo", 0)
