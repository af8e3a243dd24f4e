"""``kizuna users`` and ``kizuna access``: accounts, roles, API tokens, IP allow-lists.

The CLI reads and writes the store directly, so whoever runs it with access to the
store (``KIZUNA_HOME`` and its key, or ``KIZUNA_DATABASE_URL``) is in effect an
administrator of every workspace: roles and allow-lists govern the HTTP API and
the console, not the machine the store lives on. Every change made here is written
to the operation log under the operating-system account that ran the command.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from kizuna.bootstrap import open_database
from kizuna.cli.app import WorkspaceOption, console, default_workspace, exit_on_error
from kizuna.security import accounts
from kizuna.security.masking import mask_email
from kizuna.security.permissions import ROLES
from kizuna.store.access import ApiToken
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor
from kizuna.store.users import Member, list_members, list_users
from kizuna.store.workspaces import get_workspace

__all__ = ["register"]

users_app = typer.Typer(help="Console and API accounts, their roles per workspace, API tokens.")
tokens_app = typer.Typer(help="Personal API tokens (shown once, when created).")
access_app = typer.Typer(help="IP allow-lists: networks allowed to use a workspace's console/API.")
users_app.add_typer(tokens_app, name="token")

EmailArgument = typer.Argument(help="The account's e-mail address (sign-in name)")
RoleOption = typer.Option("--role", "-r", help="One of: " + ", ".join(ROLES))
PersonalOption = typer.Option(
    "--personal-data/--no-personal-data", help="May see and export personal data in clear"
)
StdinOption = typer.Option("--password-stdin", help="Read the password from standard input")


def _actor() -> Actor:
    return Actor.os_user("cli")


def _workspace(workspace: str | None) -> str:
    return workspace or default_workspace()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("add")
def add_command(
    email: Annotated[str, EmailArgument],
    role: Annotated[str, RoleOption],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    personal_data: Annotated[bool, PersonalOption] = False,
    name: Annotated[str | None, typer.Option(help="Name shown in the console")] = None,
    password_stdin: Annotated[bool, StdinOption] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="API tokens only: the account cannot sign in")
    ] = False,
) -> None:
    """Create an account with a role in a workspace (asks for its password)."""
    with exit_on_error(), open_database() as db:
        _check_workspace(db, _workspace(workspace))
        password = None if no_password else _password(password_stdin)
        user = accounts.add_user(db, _actor(), email, name or email, password)
        member = accounts.grant(db, _actor(), _workspace(workspace), user.email, role,
                                personal_data=personal_data)  # fmt: skip
    console.print(f"Account [bold]{user.email}[/bold] created: {_describe(member)}.")


def _check_workspace(db: Database, workspace: str) -> None:
    # Fail before prompting for a password the command could not use.
    with db.read() as conn:
        get_workspace(conn, workspace)


def _describe(member: Member) -> str:
    clear = ", personal data in clear" if member.personal_data else ""
    return f"{member.role} in {member.workspace}{clear}"


@users_app.command("list")
def list_command(
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="Only members of this workspace")
    ] = None,
) -> None:
    """Accounts and their roles (all workspaces unless -w)."""
    with exit_on_error(), open_database() as db, db.read() as conn:
        ws_id = None if workspace is None else get_workspace(conn, workspace).workspace_id
        members = list_members(conn, workspace_id=ws_id)
        everyone = list_users(conn)
    table = Table(title="Accounts", title_justify="left")
    for header in ("e-mail", "name", "workspace", "role", "in clear", "state"):
        # Addresses and roles are what people copy from here: never cut them short.
        table.add_column(header, no_wrap=header in ("e-mail", "role"), overflow="fold")
    now = db.clock.now()
    for user in everyone:
        roles = [m for m in members if m.user_id == user.user_id]
        if workspace is not None and not roles:
            continue
        state = "disabled" if user.disabled_at else (
            "locked" if user.locked_until and user.locked_until > now else "active")  # fmt: skip
        if not roles:
            table.add_row(user.email, user.display_name, "—", "—", "—", state)
        for m in roles:
            table.add_row(user.email, user.display_name, m.workspace, m.role,
                          "yes" if m.personal_data else "no", state)  # fmt: skip
    console.print(table)


@users_app.command("grant")
def grant_command(
    email: Annotated[str, EmailArgument],
    role: Annotated[str, RoleOption],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    personal_data: Annotated[bool, PersonalOption] = False,
) -> None:
    """Give an account a role in a workspace (replacing the role it had there)."""
    with exit_on_error(), open_database() as db:
        member = accounts.grant(db, _actor(), _workspace(workspace), email, role,
                                personal_data=personal_data)  # fmt: skip
    console.print(f"{member.email}: {_describe(member)}.")


@users_app.command("revoke")
def revoke_command(
    email: Annotated[str, EmailArgument],
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Remove an account's role in a workspace (the account stays)."""
    with exit_on_error(), open_database() as db:
        member = accounts.revoke(db, _actor(), _workspace(workspace), email)
    console.print(f"{member.email} no longer has a role in {member.workspace}.")


@users_app.command("password")
def password_command(
    email: Annotated[str, EmailArgument],
    password_stdin: Annotated[bool, StdinOption] = False,
) -> None:
    """Set a new password (lifts a lock-out and ends the account's sessions)."""
    with exit_on_error(), open_database() as db:
        accounts.user_by_email(db, email)
        user = accounts.reset_password(db, _actor(), email, _password(password_stdin))
    console.print(f"Password of {user.email} changed; its sessions were ended.")


@users_app.command("disable")
def disable_command(email: Annotated[str, EmailArgument]) -> None:
    """Stop an account: it cannot sign in, its sessions end, its tokens stop working."""
    with exit_on_error(), open_database() as db:
        user = accounts.set_user_disabled(db, _actor(), email, True)
    console.print(f"{user.email} is disabled.")


@users_app.command("enable")
def enable_command(email: Annotated[str, EmailArgument]) -> None:
    """Let a disabled account sign in again."""
    with exit_on_error(), open_database() as db:
        user = accounts.set_user_disabled(db, _actor(), email, False)
    console.print(f"{user.email} is enabled.")


@tokens_app.command("create")
def token_create_command(
    email: Annotated[str, EmailArgument],
    name: Annotated[str, typer.Option("--name", "-n", help="What the token is for")],
) -> None:
    """Create a personal API token acting as the account; printed once, never again."""
    with exit_on_error(), open_database() as db:
        user = accounts.user_by_email(db, email)
        token, record = accounts.create_token(db, _actor(), user.user_id, name)
    console.print(f"Token {record.prefix}… for {user.email} ({record.name}):")
    # Plain print, so the token can be piped; it is not shown again.
    typer.echo(token)


def _token_row(token: ApiToken) -> tuple[str, ...]:
    def day(value: object) -> str:
        return "—" if value is None else f"{value:%Y-%m-%d %H:%M}"

    return (token.prefix + "…", token.name, day(token.created_at), day(token.last_used_at),
            day(token.revoked_at), str(token.token_id))  # fmt: skip


@tokens_app.command("list")
def token_list_command(email: Annotated[str, EmailArgument]) -> None:
    """The account's tokens (prefixes only), newest first."""
    with exit_on_error(), open_database() as db:
        user = accounts.user_by_email(db, email)
        tokens = accounts.list_tokens(db, user.user_id)
    table = Table(title=f"API tokens of {mask_email(user.email)}", title_justify="left")
    for header in ("prefix", "name", "created (UTC)", "last used", "revoked", "id"):
        table.add_column(header, no_wrap=header == "prefix", overflow="fold")
    for token in tokens:
        table.add_row(*_token_row(token))
    console.print(table)


@tokens_app.command("revoke")
def token_revoke_command(
    email: Annotated[str, EmailArgument],
    ref: Annotated[str, typer.Argument(help="Token id or prefix (kzp_…)")],
) -> None:
    """Revoke one of the account's tokens; it stops working at once."""
    with exit_on_error(), open_database() as db:
        user = accounts.user_by_email(db, email)
        record = accounts.revoke_token(db, _actor(), user.user_id, ref.rstrip("…"))
    console.print(f"Token {record.prefix}… ({record.name}) revoked.")


CidrArgument = typer.Argument(help="A network (203.0.113.0/24) or one address")


@access_app.command("allow")
def allow_command(
    cidr: Annotated[str, CidrArgument],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    note: Annotated[str | None, typer.Option(help="Why it is allowed")] = None,
) -> None:
    """Allow a network to use the workspace's console and admin API."""
    with exit_on_error(), open_database() as db:
        network = accounts.allow(db, _actor(), _workspace(workspace), cidr, note)
    console.print(f"{network.cidr} allowed in {_workspace(workspace)}.")


@access_app.command("list")
def access_list_command(workspace: Annotated[str | None, WorkspaceOption] = None) -> None:
    """The workspace's allow-list (empty: every address may use it)."""
    with exit_on_error(), open_database() as db:
        networks = accounts.networks(db, _workspace(workspace))
    if not networks:
        console.print(f"{_workspace(workspace)} has no allow-list: every address may use it.")
        return
    table = Table(title=f"IP allow-list of {_workspace(workspace)}", title_justify="left")
    for header in ("network", "note", "since (UTC)"):
        table.add_column(header)
    for n in networks:
        table.add_row(n.cidr, n.note or "—", f"{n.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


@access_app.command("deny")
def deny_command(
    cidr: Annotated[str, CidrArgument],
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Remove a network from the allow-list (the last one removed: every address allowed)."""
    with exit_on_error(), open_database() as db:
        network = accounts.deny(db, _actor(), _workspace(workspace), cidr)
    console.print(f"{network} removed from the allow-list of {_workspace(workspace)}.")


def register(app: typer.Typer) -> None:
    """Add ``kizuna users`` and ``kizuna access`` to ``app``."""
    app.add_typer(users_app, name="users")
    app.add_typer(access_app, name="access")
