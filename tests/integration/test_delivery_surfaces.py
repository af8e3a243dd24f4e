"""Delivery through its edges: the HTTP API, the CLI and the Python API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.api import build_app
from kizuna.cli import app
from kizuna.client import Kizuna
from kizuna.store.messages import list_messages
from tests.delivery.smtp_server import SmtpServer
from tests.delivery.test_tracking import make_customer

AUTH = {"Authorization": "Bearer test-token"}
TEMPLATE = {
    "key": "receipt", "channel": "email", "name": "ご注文確認",
    "subject": "ご注文ありがとうございます",
    "body": "{{ last_name | default('お客') }}様、ご注文を承りました。",
}  # fmt: skip
runner = CliRunner()


@pytest.fixture
def http(db, workspace):
    with TestClient(build_app(db, "test-token")) as client:
        yield client


def test_http_settings_providers_seeds_and_messages(http, db, scope_factory, clock):
    base = "/api/workspaces/shop"
    bad = http.put(f"{base}/delivery/settings", json={"frequency_caps": [{"channel": "fax"}]},
                   headers=AUTH)  # fmt: skip
    assert bad.status_code == 400
    fields = {p["field"] for p in bad.json()["errors"]}
    assert {"frequency_caps.0.channel", "frequency_caps.0.max_messages"} <= fields
    good = {"sender": {"name": "絆コスメ", "postal_address": "東京都渋谷区1-2-3",
                       "contact": "support@shop.example.jp"},
            "frequency_caps": [{"channel": "email", "max_messages": 2, "days": 7}]}  # fmt: skip
    assert http.put(f"{base}/delivery/settings", json=good, headers=AUTH).status_code == 200
    assert http.get(f"{base}/delivery/settings", headers=AUTH).json()["frequency_caps"][0][
        "max_messages"] == 2  # fmt: skip

    provider = {"provider": "twilio", "settings": {"from_number": "+815012345678"},
                "secrets": {"account_sid": "AC123", "auth_token": "very-secret"}}  # fmt: skip
    assert (
        http.put(f"{base}/delivery/providers/sms", json=provider, headers=AUTH).status_code == 200
    )
    listed = http.get(f"{base}/delivery/providers", headers=AUTH)
    assert listed.json()[0]["provider"] == "twilio" and "very-secret" not in listed.text
    unknown = http.put(f"{base}/delivery/providers/sms", json={"provider": "fax"}, headers=AUTH)
    assert unknown.status_code == 400

    http.post(f"{base}/delivery/seeds", json={"channel": "email", "address": "qa@shop.example.jp"},
              headers=AUTH)  # fmt: skip
    seeds = http.get(f"{base}/delivery/seeds", headers=AUTH).json()
    assert seeds == [{"channel": "email", "address": "q***@shop.example.jp", "label": None}]

    make_customer(scope_factory, clock, "hanako@example.jp")
    intents = [
        {"customer": "hanako@example.jp", "channel": "email", "template_key": "receipt",
         "idempotency_key": "order:1"},
        {"customer": "hanako@example.jp", "channel": "fax", "idempotency_key": "order:2"},
    ]  # fmt: skip
    refused = http.post(f"{base}/messages", json=intents, headers=AUTH)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "intents[1]"
    with scope_factory() as scope:
        assert list_messages(scope) == []  # nothing of a refused request is queued
    queued = http.post(f"{base}/messages", json=intents[:1], headers=AUTH)
    assert queued.status_code == 202
    (message_id,) = queued.json()["message_ids"]
    log = http.get(f"{base}/messages", params={"customer": "hanako@example.jp"}, headers=AUTH)
    assert [m["message_id"] for m in log.json()] == [message_id]
    assert http.get(f"{base}/messages/{message_id}", headers=AUTH).json()["status"] == "queued"
    assert http.get(f"{base}/messages", headers={}).status_code == 401


def test_every_delivery_command_has_help():
    for command in ("settings", "providers", "provider", "seed", "seeds", "send", "test-send",
                    "drain", "messages"):  # fmt: skip
        result = runner.invoke(app, ["delivery", command, "--help"])
        assert result.exit_code == 0, command
        assert "Usage" in result.output


def test_cli_configures_sends_and_shows_the_log(cli_env, db, workspace, scope_factory, clock):
    make_customer(scope_factory, clock, "hanako@example.jp")
    with Kizuna(db, "shop") as kz:
        kz.save_template(TEMPLATE)
    with SmtpServer() as smtp:
        configured = runner.invoke(app, [
            "delivery", "provider", "email", "smtp", "-w", "shop",
            "--setting", "host=127.0.0.1", "--setting", f"port={smtp.port}",
            "--setting", "starttls=false",
            "--setting", "from_address=news@shop.example.jp"])  # fmt: skip
        assert configured.exit_code == 0, configured.output
        bad = runner.invoke(app, ["delivery", "provider", "email", "smtp", "-w", "shop",
                                  "--setting", "oops"])  # fmt: skip
        assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
        sent = runner.invoke(app, ["delivery", "send", "hanako@example.jp", "receipt",
                                   "--key", "order:1", "-w", "shop"])  # fmt: skip
        assert sent.exit_code == 0, sent.output
        drained = runner.invoke(app, ["delivery", "drain"])
        assert drained.exit_code == 0 and "sent 1" in drained.output
        assert [m.rcpt_tos for m in smtp.messages] == [("hanako@example.jp",)]
    shown = runner.invoke(app, ["delivery", "messages", "-w", "shop"])
    assert "receipt" in shown.output and "sent" in shown.output


def test_python_api_saves_templates_sends_and_reads_the_log(db, workspace, scope_factory, clock):
    make_customer(scope_factory, clock, "hanako@example.jp")
    with Kizuna(db, "shop") as kz:
        saved = kz.save_template(TEMPLATE)
        assert saved.version == 1
        assert list(kz.templates()["key"]) == ["receipt"]
        first = kz.send("hanako@example.jp", "receipt", key="order:7")
        assert kz.send("hanako@example.jp", "receipt", key="order:7") == first
        log = kz.messages()
        assert list(log["message_id"].astype(str)) == [first]
        assert log.loc[0, "status"] == "queued"
        assert str(log["created_at"].dt.tz) == "Asia/Tokyo"
