"""``kizuna users`` and ``kizuna access``: accounts, roles, tokens and allow-lists."""

from __future__ import annotations

import getpass
import re

import pytest
import sqlalchemy as sa
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.api import build_app
from kizuna.cli import users
from kizuna.store.tables import operation_log
from kizuna.store.tables_access import users as users_table

runner = CliRunner()
PASSWORD = "correct horse battery staple"


@pytest.fixture
def cli(cli_env, workspace):
    """The users and access commands on a root app of their own."""
    app = typer.Typer()
    users.register(app)
    return lambda *args, stdin=None: runner.invoke(app, list(args), input=stdin)


def _actions(db) -> list[tuple[str, str, str | None]]:
    with db.read() as conn:
        rows = conn.execute(sa.select(operation_log).order_by(operation_log.c.entry_id)).all()
    return [(r.actor, r.action, r.target) for r in rows]


def test_accounts_roles_and_tokens_round_trip(cli, db):
    added = cli("users", "add", "Taro@Shop.example.jp", "--role", "analyst", "-w", "shop",
                "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "taro@shop.example.jp" in added.output and "analyst in shop" in added.output
    again = cli("users", "add", "taro@shop.example.jp", "--role", "analyst", "-w", "shop",
                "--no-password")  # fmt: skip
    assert again.exit_code == 1 and "already exists" in again.output
    unknown = cli("users", "grant", "taro@shop.example.jp", "--role", "root", "-w", "shop")
    assert unknown.exit_code == 2 and "unknown role" in unknown.output
    granted = cli("users", "grant", "taro@shop.example.jp", "--role", "scenario_designer",
                  "-w", "shop", "--personal-data")  # fmt: skip
    assert granted.exit_code == 0 and "personal data in clear" in granted.output
    listing = cli("users", "list", "-w", "shop")
    assert "scenario_designer" in listing.output and "yes" in listing.output
    made = cli("users", "token", "create", "taro@shop.example.jp", "--name", "notebook")
    token = re.search(r"^(kzp_\S+)$", made.output, re.M)
    assert made.exit_code == 0 and token is not None
    with TestClient(build_app(db, "test-token")) as http:
        auth = {"Authorization": f"Bearer {token.group(1)}"}
        assert http.get("/api/workspaces/shop/segments", headers=auth).status_code == 200
        listed = cli("users", "token", "list", "taro@shop.example.jp")
        assert token.group(1)[:12] in listed.output and token.group(1) not in listed.output
        revoked = cli("users", "token", "revoke", "taro@shop.example.jp", token.group(1)[:12])
        assert revoked.exit_code == 0
        assert http.get("/api/workspaces/shop/segments", headers=auth).status_code == 401
        assert cli("users", "revoke", "taro@shop.example.jp", "-w", "shop").exit_code == 0
    me = getpass.getuser()
    actions = [(a, act) for a, act, _ in _actions(db)]
    assert actions == [(me, "user.create"), (me, "role.grant"), (me, "role.grant"),
                       (me, "api_token.create"), (me, "api_token.revoke"),
                       (me, "role.revoke")]  # fmt: skip


def test_password_reset_unlocks_and_disable_stops_the_account(cli, db):
    cli("users", "add", "hana@shop.example.jp", "--role", "analyst", "-w", "shop",
        "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    with db.write() as conn:
        conn.execute(users_table.update().values(failed_attempts=3, locked_until=db.clock.now()
                                                 .replace(year=2099)))  # fmt: skip
    weak = cli("users", "password", "hana@shop.example.jp", "--password-stdin", stdin="short\n")
    assert weak.exit_code == 2 and "12 characters" in weak.output
    reset = cli("users", "password", "hana@shop.example.jp", "--password-stdin",
                stdin="another long passphrase\n")  # fmt: skip
    assert reset.exit_code == 0
    with TestClient(build_app(db, "test-token")) as http:
        body = {"email": "hana@shop.example.jp", "password": "another long passphrase"}
        assert http.post("/api/auth/sign-in", json=body).status_code == 200
        assert cli("users", "disable", "hana@shop.example.jp").exit_code == 0
        assert http.get("/api/auth/me").status_code == 401
        assert "disabled" in cli("users", "list").output
        assert http.post("/api/auth/sign-in", json=body).status_code == 401
        assert cli("users", "enable", "hana@shop.example.jp").exit_code == 0
        assert http.post("/api/auth/sign-in", json=body).status_code == 200


def test_the_allow_list_from_the_shell(cli, db):
    assert "every address" in cli("access", "list", "-w", "shop").output
    bad = cli("access", "allow", "10.0.0.300/8", "-w", "shop")
    assert bad.exit_code == 2 and "not an IPv4 or IPv6 network" in bad.output
    allowed = cli("access", "allow", "203.0.113.7/24", "-w", "shop", "--note", "office")
    assert allowed.exit_code == 0 and "203.0.113.0/24 allowed" in allowed.output
    assert cli("access", "allow", "2001:db8::1", "-w", "shop").exit_code == 0
    listing = cli("access", "list", "-w", "shop").output
    assert "203.0.113.0/24" in listing and "2001:db8::1/128" in listing and "office" in listing
    outside = TestClient(build_app(db, "test-token"), client=("198.51.100.7", 1))
    inside = TestClient(build_app(db, "test-token"), client=("203.0.113.99", 1))
    auth = {"Authorization": "Bearer test-token"}
    assert outside.get("/api/workspaces/shop/segments", headers=auth).status_code == 403
    assert inside.get("/api/workspaces/shop/segments", headers=auth).status_code == 200
    assert cli("access", "deny", "203.0.113.0/24", "-w", "shop").exit_code == 0
    missing = cli("access", "deny", "203.0.113.0/24", "-w", "shop")
    assert missing.exit_code == 1 and "not on the allow-list" in missing.output
    assert cli("access", "deny", "2001:db8::1/128", "-w", "shop").exit_code == 0
    assert outside.get("/api/workspaces/shop/segments", headers=auth).status_code == 200
    targets = [(act, t) for _, act, t in _actions(db) if act.startswith("access.")]
    assert targets == [("access.allow", "203.0.113.0/24"), ("access.allow", "2001:db8::1/128"),
                       ("access.ip_denied", None), ("access.deny", "203.0.113.0/24"),
                       ("access.deny", "2001:db8::1/128")]  # fmt: skip
