"""Campaigns through every surface: HTTP API, CLI and Python API, with their permissions."""

from __future__ import annotations

import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.api import build_app
from kizuna.campaigns.send import send_due_campaigns
from kizuna.cli import app
from kizuna.client import Kizuna
from kizuna.store.seed_addresses import add_seed_address
from kizuna.store.tables import messages, operation_log
from tests.integration.access_people import make_people
from tests.integration.campaign_shop import SPRING, build_shop

AUTH = {"Authorization": "Bearer test-token"}
BASE = "/api/workspaces/shop/campaigns"
runner = CliRunner()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_http_save_check_test_send_submit_approve_and_read_the_audience(db, scope_factory, clock):
    build_shop(scope_factory, clock, customers_=4)
    with scope_factory() as scope:
        add_seed_address(scope, "email", "qa@shop.example.jp")
    people = make_people(db)
    with TestClient(build_app(db, "test-token")) as http:
        bad = http.post(BASE, json={**SPRING, "variants": [{"key": "A", "template": "nope"}]},
                        headers=AUTH)  # fmt: skip
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["field"] == "variants[0].template"
        saved = http.put(f"{BASE}/spring", json=SPRING, headers=AUTH)
        assert saved.status_code == 200, saved.text
        assert saved.json()["status"] == "draft"
        checked = http.post(f"{BASE}/spring/check", headers=AUTH).json()
        assert checked["members"] == 4 and not checked["refused"]
        assert [f["code"] for f in checked["findings"]] == ["control_too_small"]
        tested = http.post(f"{BASE}/spring/test-send", json={"variant": "B"}, headers=AUTH)
        assert tested.status_code == 202 and list(tested.json()["message_ids"]) == ["B"]
        assert http.post(f"{BASE}/spring/submit", headers=AUTH).status_code == 200
        analyst = _bearer(people["analyst"].token)
        assert http.post(f"{BASE}/spring/approve", headers=analyst).status_code == 403
        designer = _bearer(people["scenario_designer"].token)
        approved = http.post(f"{BASE}/spring/approve", headers=designer)
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "scheduled"
        assert http.post(f"{BASE}/spring/approve", headers=designer).status_code == 409
        send_due_campaigns(db)
        listed = http.get(BASE, headers=analyst).json()
        assert [(c["key"], c["status"], c["targeted"]) for c in listed] == [("spring", "sent", 4)]
        audience = http.get(f"{BASE}/spring/recipients", headers=analyst).json()
        assert sum(g["customers"] for g in audience) == 4
        assert http.post(f"{BASE}/spring/cancel", headers=designer).status_code == 409
        assert http.get(f"{BASE}/schema", headers=AUTH).json()["title"] == "CampaignSpec"
    with db.read() as conn:
        tests = conn.execute(sa.select(messages.c.source_kind, messages.c.template_key)
                             .where(messages.c.source_kind == "test")).all()  # fmt: skip
        actions = conn.execute(sa.select(operation_log.c.action, operation_log.c.actor)).all()
    assert [tuple(t) for t in tests] == [("test", "spring-b")]
    approvals = [a for a in actions if a.action == "campaign.approve"]
    assert len(approvals) == 1 and approvals[0].actor.startswith("user:")


def test_cli_save_check_submit_approve_list_show_and_a_bad_file(
    cli_env, db, scope_factory, clock, tmp_path
):
    build_shop(scope_factory, clock, customers_=3)
    good = tmp_path / "spring.yaml"
    good.write_text(yaml.safe_dump({**SPRING, "control_percent": 0}, allow_unicode=True))
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: spring\nname: x\nsegment: buyers\nchannel: email\nvariants:\n"
                   "  - {key: A, template: spring-a, weight: 0}\n")  # fmt: skip
    refused = runner.invoke(app, ["campaigns", "save", str(bad), "-w", "shop"])
    assert refused.exit_code == 2
    assert "line 6" in refused.output and "variants[0].weight" in refused.output
    assert runner.invoke(app, ["campaigns", "save", str(good), "-w", "shop"]).exit_code == 0
    checked = runner.invoke(app, ["campaigns", "check", "spring", "-w", "shop"])
    assert checked.exit_code == 0 and "no_control" in checked.output
    assert runner.invoke(app, ["campaigns", "submit", "spring", "-w", "shop"]).exit_code == 0
    approved = runner.invoke(app, ["campaigns", "approve", "spring", "-w", "shop"])
    assert approved.exit_code == 0, approved.output
    done = runner.invoke(app, ["worker", "--once"])
    assert done.exit_code == 0 and "campaigns: 1 sent" in done.output
    listed = runner.invoke(app, ["campaigns", "list", "-w", "shop"])
    assert "spring" in listed.output and "配信済み" in listed.output
    shown = runner.invoke(app, ["campaigns", "show", "spring", "-w", "shop"])
    assert shown.exit_code == 0 and "treatment / 配信群" in shown.output
    again = runner.invoke(app, ["campaigns", "cancel", "spring", "-w", "shop"])
    assert again.exit_code == 1 and "sent" in again.output
    assert "no_control" in shown.output  # the last checks, as stored
    schema = runner.invoke(app, ["campaigns", "schema"])
    assert schema.exit_code == 0 and "control_percent" in schema.output
    commands = ("list", "show", "save", "check", "test-send", "submit", "approve", "cancel")
    for command in commands:
        assert runner.invoke(app, ["campaigns", command, "--help"]).exit_code == 0


def test_python_api_round_trip(db, scope_factory, clock):
    build_shop(scope_factory, clock, customers_=5)
    kizuna = Kizuna(db, "shop")
    saved = kizuna.save_campaign({**SPRING, "control_percent": 20})
    assert saved.status == "draft"
    findings = kizuna.check_campaign("spring")
    assert list(findings["code"]) == ["control_too_small"]
    kizuna.submit_campaign("spring")
    assert kizuna.approve_campaign("spring").status == "scheduled"
    send_due_campaigns(db)
    frame = kizuna.campaigns()
    assert frame.loc[0, "status"] == "sent" and frame.loc[0, "targeted"] == 5
    audience = kizuna.campaign_recipients("spring")
    assert len(audience) == 5 and audience["held_out"].dtype == bool
    assert audience.loc[~audience["held_out"], "message_id"].notna().all()
