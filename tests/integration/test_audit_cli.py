"""``kizuna audit verify`` names tampered entries; ``kizuna audit log`` lists and filters them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from kizuna.cli import app
from kizuna.cli import audit as audit_cli
from kizuna.store.operation_log import log_operation
from kizuna.store.tables import operation_log

audit_cli.register(app)
runner = CliRunner()


def _log(db, action: str, target: str, workspace_id=None, **details) -> None:
    with db.write() as conn:
        log_operation(conn, workspace_id=workspace_id, at=db.clock.now(), actor="hanako",
                      origin="cli", action=action, target=target, details=details)  # fmt: skip


def _entries(db) -> list:
    with db.read() as conn:
        return conn.execute(sa.select(operation_log).order_by(operation_log.c.entry_id)).all()


def _text(result) -> str:
    """The output with Rich's line wrapping undone."""
    return " ".join(result.output.split())


@pytest.fixture
def logged(db, cli_env, workspace, clock):
    """Four entries, a day apart: two exports, a reveal and a key rotation."""
    for action, target in (("segment.export", "vip"), ("customer.reveal", "C100"),
                           ("segment.export", "lapsed"), ("keys.rotated", None)):  # fmt: skip
        ws = None if action.startswith("keys.") else workspace.workspace_id
        _log(db, action, target, ws, rows=3)
        clock.advance(timedelta(days=1))
    return _entries(db)


def test_an_intact_log_verifies_and_is_anchored(logged, cli_env):
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact: 4 entries" in _text(result) and str(logged[-1].entry_id) in _text(result)
    anchor = json.loads((cli_env.home / "audit.anchor").read_text())
    assert anchor == {"entry_id": str(logged[-1].entry_id),
                      "entry_hash": logged[-1].entry_hash.hex(), "entries": 4}  # fmt: skip


def test_an_edited_entry_is_named(db, logged):
    with db.write() as conn:
        conn.execute(
            operation_log.update()
            .where(operation_log.c.entry_id == logged[1].entry_id)
            .values(target="C999")
        )
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    text = _text(result)
    assert f"entry 2 ({logged[1].entry_id}, customer.reveal) was altered" in text
    assert "tampered" in text


def test_a_deleted_entry_is_named(db, logged):
    with db.write() as conn:
        conn.execute(operation_log.delete().where(operation_log.c.entry_id == logged[2].entry_id))
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    text = _text(result)
    assert f"entry 3 ({logged[3].entry_id}, keys.rotated) does not follow entry 2" in text
    assert "removed" in text and "(3 entries now)" in text


def test_deleting_the_newest_entries_is_caught_by_the_anchor(db, logged, tmp_path):
    anchor = tmp_path / "elsewhere" / "audit.anchor"
    assert runner.invoke(app, ["audit", "verify", "--anchor", str(anchor)]).exit_code == 0
    with db.write() as conn:
        conn.execute(operation_log.delete().where(operation_log.c.entry_id == logged[3].entry_id))
    result = runner.invoke(app, ["audit", "verify", "--anchor", str(anchor)])
    assert result.exit_code == 1
    assert f"entry {logged[3].entry_id}, the newest at the last clean check" in _text(result)
    assert "deleted from the end" in _text(result)


def test_an_empty_log_verifies(db, cli_env):
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0 and "empty" in result.output


def _json_lines(*args: str) -> list[dict]:
    result = runner.invoke(app, ["audit", "log", "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_audit_log_lists_and_filters_entries(logged, workspace):
    every = _json_lines()
    assert [e["action"] for e in every] == ["segment.export", "customer.reveal",
                                             "segment.export", "keys.rotated"]  # fmt: skip
    assert every[0]["workspace"] == "shop" and every[3]["workspace"] is None
    assert every[0]["actor"] == "hanako" and every[0]["details"] == {"rows": 3}
    assert [e["target"] for e in _json_lines("--action", "segment.*")] == ["vip", "lapsed"]
    assert [e["target"] for e in _json_lines("--action", "customer.reveal")] == ["C100"]
    # Local dates (Asia/Tokyo): the entries are at 12:00 JST on April 1st to 4th.
    assert len(_json_lines("--since", "2026-04-03")) == 2
    assert len(_json_lines("--workspace", "shop")) == 3
    assert [e["action"] for e in _json_lines("--limit", "1")] == ["keys.rotated"]
    table = runner.invoke(app, ["audit", "log"])
    assert table.exit_code == 0 and "hanako" in table.output and "C100" in table.output


def test_a_bad_since_is_reported(cli_env):
    result = runner.invoke(app, ["audit", "log", "--since", "someday"])
    assert result.exit_code == 2 and "since" in result.output


def test_audit_commands_have_help():
    for args in (["audit"], ["audit", "verify"], ["audit", "log"]):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
