"""Templates through the HTTP API and the CLI; the example templates on the demo shop."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.api import build_app
from kizuna.api import templates as templates_api
from kizuna.cli import templates as templates_cli
from kizuna.demo import DemoOptions, generate_demo_data
from kizuna.store.operation_log import verify_log
from kizuna.store.tables import customers, operation_log, orders
from tests.delivery.test_content_context import build_content_shop

AUTH = {"Authorization": "Bearer test-token"}
BASE = "/api/workspaces/shop/templates"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "templates"
EMAIL = {
    "key": "welcome",
    "channel": "email",
    "name": "ようこそメール",
    "subject": "{{ last_name | default('お客') }}様、ご登録ありがとうございます",
    "body": "{{ full_name | default('お客様') }}様\nご登録ありがとうございます。\n",
    "html": "<html><body><p>{{ full_name | default('お客様') }}様</p>"
    "<p>{{ email | default('') }}</p></body></html>",
}
BAD_YAML = """# a template with a typo on the third line of its body
key: broken
channel: sms
name: 壊れたテンプレート
body: |
  {{ last_name | default('お客') }}様
  こんにちは
  {{ frist_name }}
"""


@pytest.fixture
def shop(db, workspace):
    return build_content_shop(db, workspace)


@pytest.fixture
def http(db, shop):
    app = build_app(db, "test-token")
    if not any(getattr(r, "path", "").startswith(BASE.replace("shop", "{workspace}"))
               for r in app.routes):  # fmt: skip
        app.include_router(templates_api.router)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def cli_env(settings, monkeypatch):
    """Point the CLI's environment at the test store (as tests/integration/conftest.py does)."""
    monkeypatch.setenv("KIZUNA_HOME", str(settings.home))
    monkeypatch.setenv("KIZUNA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KIZUNA_SECRET_KEY", settings.secret_key or "")
    monkeypatch.delenv("KIZUNA_WORKSPACE", raising=False)
    return settings


@pytest.fixture
def cli(cli_env):
    app = typer.Typer()
    templates_cli.register(app)
    app.command("noop")(lambda: None)  # a second command keeps "templates" a sub-command
    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, ["templates", *args])

    return run


def _log(db):
    with db.read() as conn:
        assert verify_log(conn) == []
        return conn.execute(sa.select(operation_log).order_by(operation_log.c.entry_id)).all()


# --- HTTP API ---------------------------------------------------------------------------


def test_http_save_list_read_version_and_archive(http):
    saved = http.post(BASE, json=EMAIL, headers=AUTH)
    assert saved.status_code == 200, saved.text
    assert (saved.json()["version"], saved.json()["created_by"]) == (1, "api-token")
    again = http.post(BASE, json={**EMAIL, "body": "改訂版\n"}, headers=AUTH).json()
    assert again["version"] == 2 and again["body"] == "改訂版\n"
    assert [t["key"] for t in http.get(BASE, headers=AUTH).json()] == ["welcome"]
    assert http.get(f"{BASE}?channel=sms", headers=AUTH).json() == []
    assert http.get(f"{BASE}/welcome", headers=AUTH).json()["subject"] == EMAIL["subject"]
    assert http.delete(f"{BASE}/welcome", headers=AUTH).status_code == 204
    assert http.get(f"{BASE}/welcome", headers=AUTH).status_code == 404
    assert http.get(BASE).status_code == 401
    assert http.get("/api/workspaces/nowhere/templates", headers=AUTH).status_code == 404


def test_http_validate_and_save_report_part_and_line(http):
    assert http.post(f"{BASE}/validate", json=EMAIL, headers=AUTH).json() == {
        "ok": True, "problems": []}  # fmt: skip
    broken = {**EMAIL, "html": "<p>\n{{ frist_name }}\n</p>"}
    checked = http.post(f"{BASE}/validate", json=broken, headers=AUTH).json()
    assert checked["ok"] is False
    assert [(p["code"], p["field"], p["line"]) for p in checked["problems"]] == [
        ("unknown_variable", "html", 2)]  # fmt: skip
    refused = http.post(BASE, json=broken, headers=AUTH)
    assert refused.status_code == 400 and refused.json()["errors"][0]["line"] == 2
    shape = http.post(f"{BASE}/validate", json={"key": "x", "channel": "fax", "name": "x"},
                      headers=AUTH).json()  # fmt: skip
    assert shape["ok"] is False and shape["problems"][0]["field"] == "channel"


def test_http_preview_masks_unless_revealed_and_logs_reveals(http, db):
    http.post(BASE, json=EMAIL, headers=AUTH)
    masked = http.get(f"{BASE}/welcome/preview", params={"customer": "C1"}, headers=AUTH)
    assert masked.status_code == 200, masked.text
    body = masked.json()
    assert body["revealed"] is False and body["version"] == 1
    assert body["text"].startswith("山田 *様\n") and "花子" not in body["html"]
    assert "h***@example.jp" in body["html"]
    assert "配信元: 株式会社絆" in body["text"] and body["warnings"] == []  # marketing footer
    assert _log(db) == []
    shown = http.get(f"{BASE}/welcome/preview", params={"customer": "hanako@example.jp",
                                                        "reveal": "true",
                                                        "purpose": "transactional"},
                     headers=AUTH).json()  # fmt: skip
    assert shown["subject"] == "山田様、ご登録ありがとうございます"
    assert shown["text"] == "山田 花子様\nご登録ありがとうございます。\n"  # no footer
    (entry,) = _log(db)
    assert (entry.action, entry.target, entry.actor) == ("template.preview", "welcome",
                                                         "api-token")  # fmt: skip
    assert entry.details["revealed"] is True
    assert http.get(f"{BASE}/welcome/preview", params={"customer": "nobody"},
                    headers=AUTH).status_code == 404  # fmt: skip


def test_http_preview_of_an_unsaved_template_and_blocks(http):
    put = http.put(f"{BASE}/blocks/sign", json={"body": "-- {{ sender.name }}"}, headers=AUTH)
    assert put.status_code == 200 and put.json()["updated_by"] == "api-token"
    assert [b["key"] for b in http.get(f"{BASE}/blocks", headers=AUTH).json()] == ["sign"]
    assert http.get(f"{BASE}/blocks/sign", headers=AUTH).json()["body"] == "-- {{ sender.name }}"
    sms = {"key": "hello", "channel": "sms", "name": "x",
           "body": '{{ last_name | default("お客") }}様 {% include "block:sign" %}'}  # fmt: skip
    preview = http.post(f"{BASE}/preview", json={"template": sms, "customer": "C2"}, headers=AUTH)
    assert preview.status_code == 200, preview.text
    assert preview.json()["text"] == "佐 *様 -- 株式会社絆"
    assert http.get(f"{BASE}/hello", headers=AUTH).status_code == 404  # not saved
    bad = http.put(f"{BASE}/blocks/sign", json={"body": "{% if %}"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "body"
    context = http.get(f"{BASE}/context", headers=AUTH).json()
    assert context["last_order"]["items"][0]["sku"] and "links" not in context


# --- CLI --------------------------------------------------------------------------------


def test_cli_save_list_show_preview_and_delete(cli, shop, tmp_path, db):
    path = tmp_path / "welcome.yaml"
    text = "key: welcome\nchannel: sms\nname: ようこそ\nbody: |\n"
    text += "  {{ last_name | default('お客') }}様、ようこそ\n"
    path.write_text(text, encoding="utf-8")
    saved = cli("save", str(path), "-w", "shop")
    assert saved.exit_code == 0, saved.output
    assert "version 1" in saved.output
    listed = cli("list", "-w", "shop")
    assert "welcome" in listed.output and "ようこそ" in listed.output
    shown = cli("show", "welcome", "-w", "shop")
    assert "channel: sms" in shown.output and "{{ last_name | default('お客') }}様" in shown.output
    masked = cli("preview", "welcome", "--customer", "C1", "-w", "shop")
    assert masked.exit_code == 0, masked.output
    assert "山 *様、ようこそ" in masked.output and "masked" in masked.output
    revealed = cli("preview", "welcome", "--customer", "C1", "-w", "shop", "--reveal")
    assert "山田様、ようこそ" in revealed.output
    (entry,) = _log(db)
    assert entry.actor == getpass.getuser() and entry.origin == "cli"
    assert cli("delete", "welcome", "-w", "shop").exit_code == 0
    assert cli("show", "welcome", "-w", "shop").exit_code == 1


def test_cli_reports_problems_at_the_files_line(cli, shop, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BAD_YAML, encoding="utf-8")
    checked = cli("validate", str(path), "-w", "shop")
    assert checked.exit_code == 2
    assert f"{path}: line 8, field 'body': frist_name is not a value" in " ".join(
        checked.output.split())  # fmt: skip
    path.write_text(BAD_YAML.replace("{{ frist_name }}", "{% if %}"), encoding="utf-8")
    syntax = cli("save", str(path), "-w", "shop")
    assert syntax.exit_code == 2 and "line 8, field 'body'" in syntax.output
    path.write_text("key: x\nchannel: sms\nname: x\nbody: [\n", encoding="utf-8")
    assert "line 5" in cli("validate", str(path), "-w", "shop").output


def test_cli_blocks(cli, shop, tmp_path):
    block = tmp_path / "sign.txt"
    block.write_text("--\n{{ sender.name }}\n", encoding="utf-8")
    assert cli("blocks", "save", "sign", str(block), "-w", "shop").exit_code == 0
    assert "sign" in cli("blocks", "list", "-w", "shop").output
    assert cli("blocks", "show", "sign", "-w", "shop").output == "--\n{{ sender.name }}\n"


@pytest.mark.parametrize(
    "command",
    [["list"], ["show"], ["save"], ["validate"], ["preview"], ["delete"], ["blocks", "list"],
     ["blocks", "show"], ["blocks", "save"]],
)  # fmt: skip
def test_cli_every_command_has_help(cli, command):
    answer = cli(*command, "--help")
    assert answer.exit_code == 0 and "Usage:" in answer.output and "--workspace" in answer.output


# --- The examples on the demo shop ------------------------------------------------------


@pytest.fixture
def demo(db, cli_env):
    generate_demo_data(db, DemoOptions(customers=200, seed=7, workspace="demo", chunk_size=200))
    with db.read() as conn:
        buyer = conn.execute(
            sa.select(customers.c.shop_customer_id)
            .join(orders, sa.and_(orders.c.workspace_id == customers.c.workspace_id,
                                  orders.c.customer_id == customers.c.customer_id))
            .where(customers.c.shop_customer_id.is_not(None))
            .order_by(orders.c.ordered_at.desc())
            .limit(1)
        ).scalar()  # fmt: skip
    return buyer


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_each_example_validates_and_renders_on_the_demo_shop(cli, demo, name):
    path = EXAMPLES / name
    checked = cli("validate", str(path), "-w", "demo")
    assert checked.exit_code == 0, checked.output
    preview = cli("preview", str(path), "--customer", demo, "-w", "demo")
    assert preview.exit_code == 0, preview.output
