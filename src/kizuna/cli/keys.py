"""``kizuna keys rotate`` and ``kizuna keys status``: the personal-data encryption key.

They join the ``keys`` group next to the ingestion write keys (``keys list``,
``create``, ``revoke``). The files and the rules are in :mod:`kizuna.security.keys`;
the re-encryption in :mod:`kizuna.store.rotation`.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from kizuna.bootstrap import open_database
from kizuna.cli.app import console, err_console, exit_on_error
from kizuna.config import load_settings
from kizuna.security.keys import KeyLocation, Keyring, environment_for_rotation, read_keyring
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor
from kizuna.store.rotation import RotationOutcome, rotate_keys, values_by_key

__all__ = ["register", "rotate", "status"]

_KEEP_RETIRED = (
    "It is kept so that links in messages sent before the rotation (tracking, unsubscribe, "
    "preference centre) keep working and backups made before it stay readable. Nothing "
    "deletes it: delete it yourself once those no longer matter."
)


def rotate(
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction")] = 500,
    prepare: Annotated[
        bool,
        typer.Option(
            "--prepare",
            help="Key kept in KIZUNA_SECRET_KEY: print the variables to set before rotating",
        ),
    ] = False,
) -> None:
    """Make a new personal-data key current and re-encrypt every stored value under it.

    Runs while Kizuna serves (small transactions; old keys keep decrypting). Running it
    again after an interruption carries on where it stopped.
    """
    settings = load_settings()
    location = KeyLocation.from_settings(settings)
    if prepare:
        with exit_on_error():
            _print_environment(location)
        return
    with exit_on_error(), open_database(settings) as db:
        outcome = _run(db, location, batch_size)
    _say_outcome(location, outcome)
    if not outcome.report.complete:
        raise typer.Exit(1)


def _run(db: Database, location: KeyLocation, batch_size: int) -> RotationOutcome:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("re-encrypting", total=None)

        def started(total: int) -> None:
            bar.update(task, total=total)

        def advanced(table: str, rows: int) -> None:
            bar.update(task, advance=rows, description=f"re-encrypting {table}")

        return rotate_keys(db, location, Actor.os_user("cli"), batch_size=batch_size,
                           progress=advanced, on_start=started)  # fmt: skip


def _say_outcome(location: KeyLocation, outcome: RotationOutcome) -> None:
    report = outcome.report
    verb = "is now" if outcome.started else "is"
    console.print(f"Key [bold]{outcome.current.hex}[/bold] {verb} current: new personal data "
                  "is encrypted with it.")  # fmt: skip
    console.print(f"Re-encrypted {report.rewritten:,} rows.")
    for key in outcome.retired:
        console.print(f"Key [bold]{key.hex}[/bold] retired: {key.origin}. No stored value uses "
                      f"it any more. {_KEEP_RETIRED}")  # fmt: skip
    for key in outcome.emptied:
        if key.state == "older":
            console.print(f"Key [bold]{key.hex}[/bold] (KIZUNA_SECRET_KEYS_OLD) no longer "
                          f"protects any stored value. {_KEEP_RETIRED}")  # fmt: skip
    if report.complete:
        return
    for table, rows in sorted(report.remaining.items()):
        err_console.print(f"[red]not yet re-encrypted:[/red] {table}: {rows:,} rows")
    for table, rows in sorted(report.unreadable.items()):
        err_console.print(f"[red]no key opens[/red] values in {rows:,} rows of {table}")
    err_console.print(
        "The old key stays in use for those rows; run `kizuna keys rotate` again to carry on "
        "(`kizuna keys status` shows where each key is used)."
    )


def _print_environment(location: KeyLocation) -> None:
    if not location.from_environment:
        console.print("The key is in a file (secret.key): `kizuna keys rotate` does everything.")
        return
    err_console.print("[yellow]These are secrets.[/yellow] Put them in your secret store (not "
                      "in shell history), set them on every Kizuna process, restart them, then "
                      "run `kizuna keys rotate` to re-encrypt.")  # fmt: skip
    for name, value in environment_for_rotation(location).items():
        console.print(f"{name}={value}", highlight=False, soft_wrap=True)


def status() -> None:
    """Show the personal-data keys: which is current, which still protect stored values."""
    settings = load_settings()
    location = KeyLocation.from_settings(settings)
    with exit_on_error(), open_database(settings) as db:
        ring = read_keyring(location)
        with db.read() as conn:
            held = values_by_key(conn)
    console.print(_keyring_table(ring, held))
    console.print(f"Lookup key (hashes for matching, never rotated): {ring.lookup_origin}")
    known = {k.key_id for k in ring.keys}
    for kid, where in sorted((k, w) for k, w in held.items() if k not in known):
        places = ", ".join(f"{name} ({count:,})" for name, count in sorted(where.items()))
        err_console.print(f"[red]values under key {kid.hex()}, which is not in the keyring:[/red] "
                          f"{places}")  # fmt: skip
    if ring.rotating:
        console.print("A rotation is not finished: run `kizuna keys rotate` to carry on.")


def _keyring_table(ring: Keyring, held: dict[bytes, dict[str, int]]) -> Table:
    table = Table("key", "state", "where", "values it protects")
    for key in ring.keys:
        count = sum(held.get(key.key_id, {}).values())
        state: str = key.state
        if state == "older":
            state = "older (still in use)" if count else "older (no longer used)"
        table.add_row(key.hex, state, key.origin, f"{count:,}")
    return table


def register(app: typer.Typer) -> None:
    """Add ``rotate`` and ``status`` to the ``keys`` group (safe to call twice)."""
    del app  # the group already exists: the write-key commands created it
    from kizuna.cli.core import keys_app

    if any(info.callback is rotate for info in keys_app.registered_commands):
        return
    keys_app.command("rotate")(rotate)
    keys_app.command("status")(status)
