"""Campaign and scenario reports through the store, HTTP, the CLI and the Python API."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from scipy.stats import ttest_ind
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from typer.testing import CliRunner

from kizuna.api import build_app
from kizuna.cli import app
from kizuna.client import Kizuna
from kizuna.errors import NotFound
from kizuna.measurement.metrics import message_metrics
from kizuna.measurement.report import campaign_report, scenario_report
from kizuna.scenarios.definition import ScenarioSpec
from kizuna.store.tables import customer_metrics, messages, scenario_runs, scenarios
from kizuna.store.tables_campaigns import attributions, campaign_recipients, campaigns

AUTH = {"Authorization": "Bearer test-token"}
runner = CliRunner()
FLOW = {
    "key": "welcome", "name": "ようこそ", "trigger": {"type": "event", "event": "Signed Up"},
    "start": "hello",
    "nodes": [{"id": "hello", "type": "send", "channel": "email", "template": "hello",
               "next": "done"}, {"id": "done", "type": "exit"}],
}  # fmt: skip


def _message(scope, customer, kind, source, n, *, step=None, variant=None, delivered=True,
             opened=False, clicked=False):  # fmt: skip
    sent = scope.now - timedelta(days=2 - n % 2)  # two local days
    return {
        "workspace_id": scope.workspace_id, "message_id": uuid.uuid4(), "customer_id": customer,
        "idempotency_key": f"{kind}:{source}:{customer}", "channel": "email",
        "purpose": "marketing", "params": {}, "source_kind": kind, "source_id": source,
        "step": step, "variant": variant, "status": "delivered" if delivered else "bounced",
        "attempts": 1, "not_before": sent, "created_at": sent, "sent_at": sent,
        "delivered_at": sent if delivered else None, "opened_at": sent if opened else None,
        "clicked_at": sent if clicked else None, "updated_at": sent,
    }  # fmt: skip


def _attribution(scope, msg, revenue, kind="campaign", source=None, variant=None):
    return {
        "workspace_id": scope.workspace_id, "attribution_id": uuid.uuid4(),
        "conversion_key": f"order:{uuid.uuid4()}", "customer_id": msg["customer_id"],
        "kind": "message", "source_kind": kind, "source_id": source or msg["source_id"],
        "step": msg["step"], "variant": variant or msg["variant"], "channel": "email",
        "message_id": msg["message_id"], "touch": "click", "revenue": revenue,
        "converted_at": scope.now, "attributed_at": scope.now,
    }  # fmt: skip


def _campaign(scope, key, n, held, converting_every, opened_every):
    """n recipients, ``held`` of them held out; variants A and B; every k-th converts."""
    campaign_id = uuid.uuid4()
    scope.conn.execute(campaigns.insert().values(
        workspace_id=scope.workspace_id, campaign_id=campaign_id, key=key, name=f"{key} セール",
        status="sent", checks={}, created_by="tester", created_at=scope.now,
        updated_at=scope.now, frozen_at=scope.now - timedelta(days=2), targeted=n, held_out=held,
        spec={"key": key, "name": f"{key} セール", "segment": "all", "channel": "email",
              "window_days": 7, "control_percent": 10,
              "variants": [{"key": "B", "template": "b", "weight": 50},
                           {"key": "A", "template": "a", "weight": 50}]},
    ))  # fmt: skip
    recipients, sent, credited = [], [], []
    for i in range(n):
        customer, variant, is_held = uuid.uuid4(), "AB"[i % 2], i < held
        converts = i % converting_every == 1
        revenue = 3000.0 + 100 * (i % 7) if converts else 0.0
        row = {"workspace_id": scope.workspace_id, "campaign_id": campaign_id,
               "customer_id": customer, "held_out": is_held, "variant": variant,
               "message_id": None, "send_at": scope.now, "converted_at": None,
               "conversions": int(converts), "revenue": revenue}  # fmt: skip
        if not is_held:
            msg = _message(scope, customer, "campaign", str(campaign_id), i, variant=variant,
                           delivered=i % 20 != 1, opened=i % opened_every == 0,
                           clicked=i % (2 * opened_every) == 0)  # fmt: skip
            row["message_id"] = msg["message_id"]
            sent.append(msg)
            if converts:
                credited.append(_attribution(scope, msg, revenue))
        if converts:
            row["converted_at"] = scope.now
        recipients.append(row)
    scope.conn.execute(campaign_recipients.insert(), recipients)
    scope.conn.execute(messages.insert(), sent)
    if credited:
        scope.conn.execute(attributions.insert(), credited)
    return campaign_id, recipients


@pytest.fixture
def shop(scope_factory):
    with scope_factory() as scope:
        _, recipients = _campaign(scope, "autumn", 400, 40, 4, 3)
        _campaign(scope, "other-1", 60, 6, 10, 2)
        _campaign(scope, "other-2", 60, 6, 10, 2)
        champions = [r["customer_id"] for r in recipients[40:100]]
        scope.conn.execute(customer_metrics.insert(), [
            {"workspace_id": scope.workspace_id, "customer_id": c, "as_of": scope.now,
             "frequency": 3, "monetary": 9000.0, "rfm_segment": "champions",
             "computed_at": scope.now} for c in champions])  # fmt: skip
    return recipients


def test_campaign_report_counts_and_uplift_match_statsmodels(shop, scope_factory):
    with scope_factory() as scope:
        report = campaign_report(scope, "autumn")
    treated = [r for r in shop if not r["held_out"]]
    control = [r for r in shop if r["held_out"]]
    c1, c0 = (sum(r["conversions"] > 0 for r in g) for g in (treated, control))
    assert report.total("sent") == 360 and report.total("targeted") == 400
    assert report.total("held_out") == 40 and report.total("conversions") == c1
    assert report.total("delivered") == 360 - len([i for i in range(40, 400) if i % 20 == 1])
    u = report.uplift
    assert (u.customers, u.reference_customers) == (360, 40)
    z, p = proportions_ztest([c1, c0], [360, 40])
    assert u.conversion.p_value == pytest.approx(p) and u.conversion.z == pytest.approx(z)
    low, high = confint_proportions_2indep(c1, 360, c0, 40, method="newcomb")
    assert (u.conversion.absolute_low, u.conversion.absolute_high) == pytest.approx((low, high))
    assert u.verdict == "not_enough_data" and u.still_needed > 0  # 40 held out is too few
    welch = ttest_ind([r["revenue"] for r in treated], [r["revenue"] for r in control],
                      equal_var=False)  # fmt: skip
    assert u.revenue.t == pytest.approx(welch.statistic)
    assert u.revenue.p_value == pytest.approx(welch.pvalue)
    assert [v.group for v in report.variant_uplift] == ["B", "A"]  # the spec's order
    assert [(v.group, v.reference) for v in report.variants] == [("A", "B")]
    assert set(report.by_variant["variant"]) == {"A", "B"}
    assert len(report.by_day) == 2 and report.by_day["sent"].sum() == 360
    assert "champions" in set(report.by_segment["rfm_segment"])
    assert any(f.dimension in ("variant", "rfm_segment") for f in report.factors)


def test_unknown_campaign_is_not_found(shop, scope_factory):
    with scope_factory() as scope, pytest.raises(NotFound, match="nope"):
        campaign_report(scope, "nope")


@pytest.fixture
def welcome(scope_factory):
    """A live scenario: 50 runs, 10 held out, one message step for the 40 others."""
    spec = ScenarioSpec.model_validate(FLOW)
    with scope_factory() as scope:
        scenario_id = uuid.uuid4()
        scope.conn.execute(scenarios.insert().values(
            workspace_id=scope.workspace_id, scenario_id=scenario_id, key="welcome",
            name="ようこそ", priority=0, status="live", live_version=1,
            draft=spec.model_dump(mode="json"), created_by="t", created_at=scope.now,
            updated_at=scope.now))  # fmt: skip
        runs, sent = [], []
        for i in range(50):
            customer = uuid.uuid4()
            runs.append(
                {
                    "workspace_id": scope.workspace_id,
                    "run_id": uuid.uuid4(),
                    "scenario_id": scenario_id,
                    "version": 1,
                    "customer_id": customer,
                    "run_key": "",
                    "status": "completed",
                    "held_out": i < 10,
                    "context": {},
                    "sends": int(i >= 10),
                    "steps": 1,
                    "entered_at": scope.now - timedelta(days=1),
                    "updated_at": scope.now,
                }
            )
            if i >= 10:
                sent.append(_message(scope, customer, "scenario", "welcome", i, step="hello",
                                     opened=i % 2 == 0))  # fmt: skip
        scope.conn.execute(scenario_runs.insert(), runs)
        scope.conn.execute(messages.insert(), sent)


def test_scenario_report_by_step_and_held_out_runs(welcome, scope_factory):
    with scope_factory() as scope:
        report = scenario_report(scope, "welcome")
    assert report.kind == "scenario" and report.total("sent") == 40
    assert report.total("targeted") == 50 and report.total("held_out") == 10
    assert list(report.by_step["step"]) == ["hello"]
    assert (report.uplift.customers, report.uplift.reference_customers) == (40, 10)
    assert report.uplift.verdict == "not_enough_data"  # nobody ordered: no rate to compare
    assert json.dumps(report.as_dict(), allow_nan=False)


@pytest.fixture
def http(db, workspace):
    with TestClient(build_app(db, "test-token")) as client:
        yield client


def test_http_report_and_plots(http, shop):
    base = "/api/workspaces/shop/reports/campaigns/autumn"
    body = http.get(base, headers=AUTH).json()
    assert body["totals"]["sent"] == 360 and body["uplift"]["verdict"] == "not_enough_data"
    assert body["plots"]["funnel"][0]["stage"] == "targeted" and body["factors"]
    png = http.get(f"{base}/plots/funnel.png", headers=AUTH)
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    svg = http.get(f"{base}/plots/uplift.svg", headers=AUTH)
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    assert http.get(f"{base}/plots/pie.png", headers=AUTH).status_code in (400, 422)
    assert http.get(base.replace("autumn", "nope"), headers=AUTH).status_code == 404
    assert http.get(base).status_code == 401
    scenario = "/api/workspaces/shop/reports/scenarios"
    assert http.get(f"{scenario}/nope", headers=AUTH).status_code == 404


def test_http_scenario_report(http, welcome):
    base = "/api/workspaces/shop/reports/scenarios/welcome"
    body = http.get(base, headers=AUTH).json()
    assert body["kind"] == "scenario" and body["by_step"][0]["step"] == "hello"
    assert body["totals"]["sent"] == 40
    png = http.get(f"{base}/plots/funnel.png", headers=AUTH)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_cli_scenario_report(cli_env, welcome):
    found = runner.invoke(app, ["reports", "scenario", "welcome", "-w", "shop"])
    assert found.exit_code == 0, found.output
    assert "ステップ別" in found.output and "hello" in found.output


def test_cli_prints_tables_and_writes_plots(cli_env, shop, tmp_path):
    found = runner.invoke(app, ["reports", "campaign", "autumn", "-w", "shop", "--plots",
                                str(tmp_path / "plots"), "--format", "svg"])  # fmt: skip
    assert found.exit_code == 0, found.output
    for label in (
        "配信数 (IMP)",
        "配信成功率",
        "開封率",
        "データ不足",
        "treatment",
        "改善ポイント",
    ):
        assert label in found.output
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "autumn-daily.svg", "autumn-funnel.svg", "autumn-uplift.svg"]  # fmt: skip
    missing = runner.invoke(app, ["reports", "campaign", "nope", "-w", "shop"])
    assert missing.exit_code == 1 and "nope" in missing.output
    for command in (["reports", "--help"], ["reports", "campaign", "--help"],
                    ["reports", "scenario", "--help"]):  # fmt: skip
        assert runner.invoke(app, command).exit_code == 0


def test_python_api_returns_dataframes(db, shop):
    report = Kizuna(db, "shop").campaign_report("autumn")
    assert report.totals.loc[0, "sent"] == 360
    assert list(report.uplift["group"])[:1] == ["treatment"]
    assert {"stage", "conversions_lost"} <= set(report.factors.columns)
    assert report.plot("daily").axes


def test_breakdowns_summed_up_equal_the_stores_own(shop, scope_factory):
    with scope_factory() as scope:
        report = campaign_report(scope, "autumn")
        pairs = ((report.totals, ()), (report.by_variant, ("variant",)),
                 (report.by_segment, ("rfm_segment",)), (report.by_day, ("day",)),
                 (report.by_channel, ("channel",)))  # fmt: skip
        for frame, by in pairs:
            direct = message_metrics(scope, "campaign", report.source_id, by=by)
            if by == ("rfm_segment",):  # one scan: the audience by segment is left out
                assert frame["targeted"].isna().all()
                direct = direct.assign(targeted=float("nan"), held_out=float("nan"))
            if by:
                frame, direct = (
                    f.sort_values(list(by), na_position="last") for f in (frame, direct)
                )
            pd.testing.assert_frame_equal(
                frame.reset_index(drop=True), direct.reset_index(drop=True), check_dtype=False
            )
