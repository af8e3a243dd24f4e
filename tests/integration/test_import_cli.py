"""``kizuna import`` through Typer's test runner, on the backend under test."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from kizuna.cli import app
from kizuna.store.tables import orders
from kizuna.store.workspaces import create_workspace

CSV = "受注番号,顧客ID,購入日時,商品コード,数量\nA1,C1,2024/4/1,S1,1\nA2,C2,いつか,S1,1\n"


@pytest.fixture
def cli_env(settings, monkeypatch, db):
    monkeypatch.setenv("KIZUNA_HOME", str(settings.home))
    monkeypatch.setenv("KIZUNA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KIZUNA_SECRET_KEY", settings.secret_key)
    monkeypatch.delenv("KIZUNA_WORKSPACE", raising=False)
    with db.write() as conn:
        create_workspace(conn, "demo", now=db.clock.now())
    return db


def test_help_lists_the_options():
    result = CliRunner().invoke(app, ["import", "--help"])
    assert result.exit_code == 0
    for option in ("--workspace", "--mapping", "--reject-file", "--format"):
        assert option in result.output


def test_import_orders_prints_a_summary_and_writes_rejects(cli_env, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_bytes(CSV.encode("cp932"))
    rejects = tmp_path / "bad.csv"
    result = CliRunner().invoke(
        app, ["import", "orders", str(source), "--reject-file", str(rejects)]
    )
    assert result.exit_code == 0, result.output
    assert "read 2 rows, imported 1, rejected 1" in result.output
    assert str(rejects) in result.output.replace("\n", "")
    assert "line" in rejects.read_text(encoding="utf-8-sig").splitlines()[0]
    with cli_env.read() as conn:
        assert conn.execute(sa.select(orders.c.order_id)).scalars().all() == ["A1"]


def test_workspace_from_environment(cli_env, tmp_path, monkeypatch):
    monkeypatch.setenv("KIZUNA_WORKSPACE", "nope")
    source = tmp_path / "orders.csv"
    source.write_text(CSV, encoding="utf-8")
    result = CliRunner().invoke(app, ["import", "orders", str(source)])
    assert result.exit_code == 1
    assert "no workspace nope" in result.output


def test_missing_column_fails_with_the_headers(cli_env, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text("顧客ID,購入日時\nC1,2024/4/1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["import", "orders", str(source)])
    assert result.exit_code == 2
    assert "order_id" in result.output and "顧客ID, 購入日時" in result.output


def test_unknown_kind_is_refused(cli_env, tmp_path):
    source = tmp_path / "x.csv"
    source.write_text("a\n1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["import", "invoices", str(source)])
    assert result.exit_code == 2
    assert "unknown kind 'invoices'" in result.output
