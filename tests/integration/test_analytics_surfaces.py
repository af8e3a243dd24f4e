"""Analytics through every surface: catalog, stored metrics, HTTP API, CLI, Python API."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.analytics.catalog import ANALYSES, AnalysisRequest, parse_request, run_analysis
from kizuna.analytics.metrics import MetricsRefresh, refresh_customer_metrics
from kizuna.analytics.rfm import rfm
from kizuna.api import build_app
from kizuna.cli import app
from kizuna.client import Kizuna
from kizuna.demo import DemoOptions, generate_demo_data
from kizuna.errors import InvalidInput
from kizuna.store.tables import customer_metrics

AUTH = {"Authorization": "Bearer test-token"}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def shop(db):
    """A small demo shop (its clock: the test clock)."""
    return generate_demo_data(db, DemoOptions(customers=300, workspace="demo")).workspace


def test_every_analysis_runs_and_breakdowns_are_checked(db, shop):
    request = AnalysisRequest(as_of=db.clock.now())
    with db.read() as conn:
        for name, analysis in ANALYSES.items():
            frame = run_analysis(conn, shop, name, request)
            assert isinstance(frame, pd.DataFrame) and len(frame.columns), name
            for by in analysis.by:
                run_analysis(conn, shop, name, AnalysisRequest(as_of=request.as_of, by=by))
        with pytest.raises(InvalidInput) as error:
            run_analysis(conn, shop, "deciles", AnalysisRequest(request.as_of, by="colour"))
    assert error.value.problems[0].field == "by"
    assert "customer, sku, category, brand" in error.value.problems[0].message


def test_bare_dates_are_local_days_and_windows_must_be_open(shop, clock):
    request = parse_request(shop, clock.now(), as_of="2026-03-31", since="2026/1/1")
    assert request.as_of.isoformat() == "2026-03-31T14:59:59.999999+00:00"  # 23:59:59 JST
    assert request.since is not None and request.since.isoformat() == "2025-12-31T15:00:00+00:00"
    with pytest.raises(InvalidInput) as error:
        parse_request(shop, clock.now(), as_of="2026-01-01", since="2026-02-01")
    assert error.value.problems[0].field == "since"


def test_stored_metrics_match_rfm_and_clv_and_are_replaced(db, shop):
    first = refresh_customer_metrics(db, shop)
    assert first.clv_fitted and first.clv_problem is None
    with db.read() as conn:
        expected = rfm(conn, shop, as_of=db.clock.now()).set_index("customer_id")
        stored = pd.DataFrame(
            conn.execute(
                sa.select(customer_metrics).where(
                    customer_metrics.c.workspace_id == shop.workspace_id
                )
            )
            .mappings()
            .all()
        )
    assert len(stored) == first.customers == len(expected)
    stored["customer_id"] = stored["customer_id"].astype(str)
    stored = stored.set_index("customer_id").loc[expected.index]
    assert (stored["rfm_segment"] == expected["segment"]).all()
    assert (stored["r_score"] == expected["r_score"]).all()
    assert (stored["frequency"] == expected["frequency"]).all()
    assert stored["p_alive"].between(0, 1).all() and (stored["clv"] >= 0).all()
    again = refresh_customer_metrics(db, shop)
    with db.read() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).select_from(customer_metrics)
            .where(customer_metrics.c.workspace_id == shop.workspace_id)
        ).scalar()  # fmt: skip
    assert count == again.customers == first.customers


def test_http_tables_plots_and_errors(db, shop):
    with TestClient(build_app(db, "test-token")) as http:
        listed = http.get("/api/workspaces/demo/analytics", headers=AUTH).json()
        assert {a["name"] for a in listed} == set(ANALYSES)
        table = http.get(
            "/api/workspaces/demo/analytics/deciles", params={"by": "category"}, headers=AUTH
        ).json()
        assert table["by"] == "category" and table["columns"][0] == "decile"
        shares = [row["revenue_share"] for row in table["rows"]]
        assert shares == sorted(shares, reverse=True) and abs(sum(shares) - 1) < 1e-9
        plot = http.get("/api/workspaces/demo/analytics/cohorts/plot", headers=AUTH)
        assert plot.status_code == 200 and plot.content.startswith(PNG)
        svg = http.get("/api/workspaces/demo/analytics/rfm/plot?format=svg", headers=AUTH)
        assert svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content
        bad = http.get("/api/workspaces/demo/analytics/rfm-area?by=planet", headers=AUTH)
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "by"
        missing = http.get("/api/workspaces/demo/analytics/horoscope", headers=AUTH)
        assert missing.status_code == 404 and "rfm" in missing.json()["message"]
        no_plot = http.get("/api/workspaces/demo/analytics/abc/plot", headers=AUTH)
        assert no_plot.status_code == 400
        assert http.get("/api/workspaces/demo/analytics/rfm").status_code == 401
        refreshed = http.post("/api/workspaces/demo/metrics/refresh", headers=AUTH).json()
        assert refreshed["customers"] > 0 and refreshed["clv_fitted"] is True


def test_cli_prints_the_table_and_writes_plot_and_csv(cli_env, db, shop, tmp_path):
    runner = CliRunner()
    plot, csv = tmp_path / "pareto.png", tmp_path / "pareto.csv"
    result = runner.invoke(app, ["analyze", "pareto", "--plot", str(plot), "--csv", str(csv)])
    assert result.exit_code == 0, result.output
    assert "パレート分析 / Pareto analysis" in result.output
    assert plot.read_bytes().startswith(PNG)
    assert list(pd.read_csv(csv).columns)[:2] == ["members", "revenue"]
    wrong = runner.invoke(app, ["analyze", "repeat", "--by", "moon_phase"])
    assert wrong.exit_code == 2 and "acquisition_month" in wrong.output
    refreshed = runner.invoke(app, ["analyze", "refresh"])
    assert refreshed.exit_code == 0 and "Stored metrics for" in refreshed.output


def test_python_api_returns_frames_and_figures(db, shop):
    client = Kizuna(db, "demo")
    assert set(client.analyses()["name"]) == set(ANALYSES)
    segments = client.analyze("rfm")
    assert segments["customers"].sum() == len(client.analyze("rfm-customers"))
    assert client.plot("repeat").axes
    client.refresh_metrics()
    metrics = client.metrics()
    assert len(metrics) == segments["customers"].sum()
    assert str(metrics["computed_at"].dt.tz) == "Asia/Tokyo"


def test_worker_refreshes_stale_workspaces_once_per_interval(db, shop, clock):
    from datetime import timedelta

    from kizuna.worker import MetricsRefresher

    refresher = MetricsRefresher(db, timedelta(hours=24))
    assert [w.slug for w in refresher.due()] == ["demo"]  # orders, never computed
    first = refresher.run_once()["demo"]
    assert isinstance(first, MetricsRefresh) and first.customers > 0
    assert refresher.run_once() == {}  # fresh
    clock.advance(timedelta(hours=25))
    assert [w.slug for w in refresher.due()] == ["demo"]
