"""The core CLI: init, workspaces, keys, customers show."""

from __future__ import annotations

import re

import sqlalchemy as sa
from typer.testing import CliRunner

from kizuna.cli import app
from kizuna.store.tables import operation_log

runner = CliRunner()


def test_every_command_has_help():
    for args in (
        [],
        ["init"],
        ["serve"],
        ["workspaces", "list"],
        ["keys", "create"],
        ["customers", "show"],
        ["import"],
        ["demo-data"],
    ):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, args
        assert "Usage" in result.output


def test_init_creates_production_and_development_workspaces(cli_env):
    result = runner.invoke(app, ["init", "--workspace", "acme"])
    assert result.exit_code == 0, result.output
    keys = re.findall(r"kz_[A-Za-z0-9_-]+", result.output)
    assert len(keys) == 2
    listing = runner.invoke(app, ["workspaces", "list"])
    assert "acme-dev" in listing.output and "development" in listing.output
    again = runner.invoke(app, ["init", "--workspace", "acme"])
    assert "already exists" in again.output


def test_keys_create_list_and_revoke(cli_env):
    runner.invoke(app, ["init", "--workspace", "demo"])
    created = runner.invoke(app, ["keys", "create", "--name", "shopify"])
    key = re.search(r"kz_[A-Za-z0-9_-]+", created.output).group(0)
    listing = runner.invoke(app, ["keys", "list"])
    assert "shopify" in listing.output and key[:10] in listing.output
    assert key not in listing.output
    revoked = runner.invoke(app, ["keys", "revoke", key[:10]])
    assert revoked.exit_code == 0 and "Revoked 1" in revoked.output


def test_bad_input_is_reported_with_the_field(cli_env):
    result = runner.invoke(app, ["workspaces", "create", "Bad Slug", "--time-zone", "Nowhere/X"])
    assert result.exit_code == 2
    assert "slug" in result.output and "time_zone" in result.output


def test_customers_show_masks_by_default(cli_env, hanako, db):
    result = runner.invoke(app, ["customers", "show", "C100", "-w", "shop"])
    assert result.exit_code == 0, result.output
    assert "h***@example.jp" in result.output
    assert "hanako@example.jp" not in result.output
    assert "Order O-2" in result.output and "opted_in" in result.output
    revealed = runner.invoke(app, ["customers", "show", "C100", "-w", "shop", "--reveal"])
    assert "hanako@example.jp" in revealed.output
    with db.read() as conn:  # the clear view is logged, naming the customer by id only
        logged = conn.execute(
            sa.select(
                operation_log.c.action, operation_log.c.target, operation_log.c.details
            ).where(operation_log.c.action == "customer.reveal")
        ).all()
    assert len(logged) == 1 and "hanako" not in str(logged)


def test_unknown_customer_exits_1_with_a_message(cli_env, hanako):
    result = runner.invoke(app, ["customers", "show", "ghost", "-w", "shop"])
    assert result.exit_code == 1
    assert "no customer matches" in result.output
