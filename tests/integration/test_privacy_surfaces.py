"""Data-subject requests and retention through the HTTP API and the CLI, bad input included."""

from __future__ import annotations

import getpass
import io
import json
import zipfile

import pytest
import sqlalchemy as sa
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.api import build_app
from kizuna.api import privacy as privacy_api
from kizuna.cli import privacy as privacy_cli
from kizuna.store.operation_log import verify_log
from kizuna.store.tables import operation_log
from kizuna.store.tables_privacy import privacy_requests
from tests.integration.test_privacy_shop import EMAIL, plant_person

AUTH = {"Authorization": "Bearer test-token"}
BASE = "/api/workspaces/shop/privacy"
runner = CliRunner()


@pytest.fixture
def http(db, workspace):
    app = build_app(db, "test-token")
    if not any(
        getattr(r, "path", "").startswith("/api/workspaces/{workspace}/privacy") for r in app.routes
    ):
        app.include_router(privacy_api.router)  # until the app mounts it itself
    with TestClient(app) as client:
        yield client


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    privacy_cli.register(app)
    return app


def _log(db) -> list:
    with db.read() as conn:
        assert verify_log(conn) == []
        return conn.execute(sa.select(operation_log).order_by(operation_log.c.entry_id)).all()


def test_http_disclose_as_zip_or_json(http, db):
    hanako = plant_person(db)
    answer = http.post(f"{BASE}/disclose", json={"ref": EMAIL}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert f"disclosure-{hanako}.zip" in answer.headers["content-disposition"]
    bundle = json.loads(zipfile.ZipFile(io.BytesIO(answer.content)).read("disclosure.json"))
    assert bundle["profile"]["traits"]["email"] == EMAIL
    as_json = http.post(f"{BASE}/disclose", json={"ref": "C200", "format": "json"}, headers=AUTH)
    assert as_json.json()["customer_id"] == str(hanako)
    disclosed = [e for e in _log(db) if e.action == "privacy.disclose"]
    assert [(e.actor, e.origin, e.target) for e in disclosed] == [
        ("api-token", "testclient", str(hanako))
    ] * 2


def test_http_correct_stop_erase_and_list(http, db):
    hanako = plant_person(db)
    bad = http.post(
        f"{BASE}/correct", json={"ref": "C200", "fields": {"email": "nope"}}, headers=AUTH
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "email"
    fixed = http.post(
        f"{BASE}/correct", json={"ref": "C200", "fields": {"last_name": "鈴木"}}, headers=AUTH
    )
    assert fixed.status_code == 200 and fixed.json()["details"]["fields"] == ["last_name"]
    stopped = http.post(f"{BASE}/stop", json={"ref": "C200"}, headers=AUTH).json()
    assert stopped["kind"] == "stop" and stopped["details"]["runs_exited"] == 1
    unconfirmed = http.post(f"{BASE}/erase", json={"ref": "C200"}, headers=AUTH)
    assert unconfirmed.status_code == 400
    assert unconfirmed.json()["errors"][0]["field"] == "confirm"
    erased = http.post(f"{BASE}/erase", json={"ref": "C200", "confirm": True}, headers=AUTH)
    assert erased.status_code == 200 and erased.json()["customer_id"] == str(hanako)
    again = http.post(f"{BASE}/erase", json={"ref": str(hanako), "confirm": True}, headers=AUTH)
    assert again.status_code == 409
    gone = http.post(f"{BASE}/stop", json={"ref": EMAIL}, headers=AUTH)
    assert gone.status_code == 404
    listed = http.get(f"{BASE}/requests", headers=AUTH).json()
    assert [r["kind"] for r in listed] == ["erase", "stop", "correct"]
    only = http.get(f"{BASE}/requests", params={"kind": "stop"}, headers=AUTH).json()
    assert [r["kind"] for r in only] == ["stop"]
    assert http.get(f"{BASE}/requests", params={"kind": "peek"}, headers=AUTH).status_code == 400


def test_http_retention_report_purge_and_settings(http, db):
    plant_person(db)
    report = http.post(f"{BASE}/retention/report", json={"address": EMAIL}, headers=AUTH)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["address"] == "h***@example.jp" and body["lines"][0]["channel"] == "email"
    assert body["lines"][0]["evidence"][0]["ip"] == "203.0.113.*"
    assert EMAIL not in report.text
    clear = http.post(
        f"{BASE}/retention/report", json={"address": EMAIL, "reveal": True}, headers=AUTH
    ).json()
    assert clear["lines"][0]["evidence"][0]["address"] == EMAIL
    dry = http.post(f"{BASE}/retention/purge", json={"dry_run": True}, headers=AUTH).json()
    assert dry["dry_run"] is True and dry["months"] == 1
    assert http.get(f"{BASE}/settings", headers=AUTH).json() == {"evidence_retention_months": 1}
    wrong = http.put(f"{BASE}/settings", json={"evidence_retention_months": 0}, headers=AUTH)
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["field"] == "evidence_retention_months"
    put = http.put(f"{BASE}/settings", json={"evidence_retention_months": 6}, headers=AUTH)
    assert put.json() == {"evidence_retention_months": 6}
    actions = [e.action for e in _log(db)]
    assert actions.count("privacy.retention_report") == 1 and "privacy.settings" in actions


def test_http_needs_credentials_and_names_bad_bodies(http, db):
    plant_person(db)
    assert http.post(f"{BASE}/stop", json={"ref": "C200"}).status_code == 401
    empty = http.post(f"{BASE}/stop", json={"ref": ""}, headers=AUTH)
    assert empty.status_code == 400 and empty.json()["errors"][0]["field"] == "ref"
    extra = http.post(f"{BASE}/stop", json={"ref": "C200", "why": "x"}, headers=AUTH)
    assert extra.status_code == 400
    with db.read() as conn:
        assert conn.execute(sa.select(privacy_requests)).all() == []


def test_every_privacy_command_has_help(cli):
    for args in (
        ["privacy"],
        ["privacy", "disclose"],
        ["privacy", "correct"],
        ["privacy", "stop"],
        ["privacy", "erase"],
        ["privacy", "requests"],
        ["privacy", "retention", "report"],
        ["privacy", "retention", "purge"],
        ["privacy", "retention", "settings"],
    ):
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, args


def test_cli_disclose_correct_stop(cli, cli_env, db, workspace, tmp_path):
    hanako = plant_person(db)
    out = tmp_path / "bundle.zip"
    disclosed = runner.invoke(cli, ["privacy", "disclose", "C200", "--out", str(out), "-w", "shop"])
    assert disclosed.exit_code == 0, disclosed.output
    assert "disclosure.json" in zipfile.ZipFile(out).namelist() and EMAIL not in disclosed.output
    folder = tmp_path / "bundle"
    runner.invoke(cli, ["privacy", "disclose", EMAIL, "--out", str(folder), "-w", "shop"])
    assert (folder / "events.csv").exists()
    bad = runner.invoke(
        cli, ["privacy", "correct", "C200", "--field", "phone", "--value", "12", "-w", "shop"]
    )
    assert bad.exit_code == 2 and "field 'phone'" in bad.output
    unpaired = runner.invoke(cli, ["privacy", "correct", "C200", "--field", "city", "-w", "shop"])
    assert unpaired.exit_code != 0
    fixed = runner.invoke(
        cli,
        [
            "privacy",
            "correct",
            "C200",
            "--field",
            "city",
            "--value",
            "目黒区",
            "--field",
            "phone",
            "--value",
            "",
            "-w",
            "shop",
        ],
    )
    assert fixed.exit_code == 0, fixed.output
    assert "city, phone (removed)" in fixed.output and str(hanako) in fixed.output
    stopped = runner.invoke(cli, ["privacy", "stop", "C200", "-w", "shop"])
    assert stopped.exit_code == 0 and "1 scenario runs ended" in stopped.output
    entries = [e for e in _log(db) if e.action.startswith("privacy.")]
    assert {(e.actor, e.origin) for e in entries} == {(getpass.getuser(), "cli")}
    assert [e.action for e in entries] == ["privacy.disclose"] * 2 + [
        "privacy.correct",
        "privacy.stop",
    ]


def test_cli_retention_then_erase_after_asking(cli, cli_env, db, workspace):
    plant_person(db)
    report = runner.invoke(cli, ["privacy", "retention", "report", "-w", "shop"])
    assert report.exit_code == 0, report.output
    assert "consented" in report.output and "2 evidence rows in 2 lines" in report.output
    one = runner.invoke(cli, ["privacy", "retention", "report", "--address", EMAIL, "-w", "shop"])
    assert "h***@example.jp" in one.output and EMAIL not in one.output
    dry = runner.invoke(cli, ["privacy", "retention", "purge", "-w", "shop"])
    assert dry.exit_code == 0 and "run with --yes" in dry.output
    declined = runner.invoke(cli, ["privacy", "erase", "C200", "-w", "shop"], input="n\n")
    assert declined.exit_code == 1
    with db.read() as conn:
        assert conn.execute(sa.select(privacy_requests)).all() == []
    # The CLI runs on the wall clock, months after this data: no evidence is still needed.
    erased = runner.invoke(cli, ["privacy", "erase", "C200", "--yes", "-w", "shop"])
    assert erased.exit_code == 0, erased.output
    assert "4 identifiers deleted" in erased.output and "kept for the law: 0 rows" in erased.output
    missing = runner.invoke(cli, ["privacy", "stop", EMAIL, "-w", "shop"])
    assert missing.exit_code == 1 and "no customer matches" in missing.output
    listed = runner.invoke(cli, ["privacy", "requests", "-w", "shop"])
    assert "erase" in listed.output
    purged = runner.invoke(cli, ["privacy", "retention", "purge", "--yes", "-w", "shop"])
    assert purged.exit_code == 0 and "Purged 0 evidence rows" in purged.output
    bad = runner.invoke(cli, ["privacy", "retention", "settings", "--months", "0", "-w", "shop"])
    assert bad.exit_code == 2 and "evidence_retention_months" in bad.output
    good = runner.invoke(cli, ["privacy", "retention", "settings", "--months", "2", "-w", "shop"])
    assert good.exit_code == 0 and "kept 2 month(s)" in good.output
