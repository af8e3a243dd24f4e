"""``kizuna journeys …``: save, validate, show, publish, pause, resume and archive scenarios.

Definitions are YAML or JSON files (by suffix; see ``examples/scenarios/``). A
problem in a file is reported with the file's name, the line of the node, and the
node's path (``nodes.remind.template``). Publishing, pausing, resuming and
archiving are logged under the OS account running the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
import yaml
from rich.table import Table

from kizuna.bootstrap import open_database
from kizuna.cli.app import (
    WorkspaceOption,
    console,
    default_workspace,
    exit_on_error,
    file_errors,
)
from kizuna.documents import read_text
from kizuna.scenarios.checks import load_scenario_text, scenario_schema
from kizuna.scenarios.definition import ScenarioSpec
from kizuna.segments.report import workspace_scope
from kizuna.store.operation_log import Actor
from kizuna.store.scenarios import (
    SavedScenario,
    archive_scenario,
    check_spec,
    get_scenario,
    get_version,
    list_scenarios,
    pause_scenario,
    publish_scenario,
    resume_scenario,
    save_scenario,
)

__all__ = ["journeys_app", "read_scenario_file", "register"]

journeys_app = typer.Typer(
    help="Scenarios (journeys): save definitions as drafts, publish versions, pause, resume.",
    no_args_is_help=True,
)
KeyArgument = typer.Argument(help="The scenario's key")
FileArgument = typer.Argument(help="A scenario definition, .yaml/.yml or .json")


def read_scenario_file(path: Path) -> ScenarioSpec:
    """Load a definition file; ``InvalidInput`` whose problems name the file's lines."""
    fmt: Literal["yaml", "json"] = "json" if path.suffix.lower() == ".json" else "yaml"
    return load_scenario_text(read_text(path), fmt)


def _workspace(workspace: str | None) -> str:
    return workspace or default_workspace()


def _actor() -> Actor:
    return Actor.os_user("cli")


def _status(saved: SavedScenario) -> str:
    if saved.status in ("live", "paused") and saved.changed:
        return f"{saved.status} (v{saved.live_version}, draft changed)"
    return f"{saved.status} (v{saved.live_version})" if saved.live_version else saved.status


@journeys_app.command("list")
def list_command(workspace: Annotated[str | None, WorkspaceOption] = None) -> None:
    """List the workspace's scenarios, highest priority first."""
    with exit_on_error(), open_database() as db, workspace_scope(db, _workspace(workspace)) as s:
        saved = list_scenarios(s)
    table = Table(title="Scenarios / シナリオ (highest priority first)")
    for header in ("key", "name / 名前", "trigger", "status / 状態", "priority", "updated"):
        table.add_column(header, no_wrap=header in ("key", "status / 状態", "updated"))
    for scenario in saved:
        table.add_row(scenario.key, scenario.name, scenario.draft.trigger.type,
                      _status(scenario), str(scenario.priority),
                      scenario.updated_at.strftime("%Y-%m-%d"))  # fmt: skip
    console.print(table if saved else "No scenarios yet (kizuna journeys save FILE.yaml).")


@journeys_app.command("save")
def save_command(
    file: Annotated[Path, FileArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Save the scenario in FILE as a draft (checked first; publish to make it live)."""
    slug = _workspace(workspace)
    with exit_on_error(), file_errors(file), open_database() as db:
        spec = read_scenario_file(file)
        with workspace_scope(db, slug, write=True) as scope:
            saved = save_scenario(scope, spec, _actor().name)
    console.print(f"Saved scenario [bold]{saved.key}[/bold] ({saved.name}) in {slug} as a draft; "
                  f"status {_status(saved)}. Publish it with: kizuna journeys publish "
                  f"{saved.key}")  # fmt: skip


@journeys_app.command("validate")
def validate_command(
    file: Annotated[Path, FileArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Check FILE against the workspace without saving it (exit 2 with each problem)."""
    with exit_on_error(), file_errors(file), open_database() as db:
        spec = read_scenario_file(file)
        with workspace_scope(db, _workspace(workspace)) as scope:
            check_spec(scope, spec)
    console.print(f"{file}: OK — scenario {spec.key} can be saved ({len(spec.nodes)} nodes).")


@journeys_app.command("show")
def show_command(
    key: Annotated[str, KeyArgument],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    version: Annotated[
        int | None, typer.Option(help="Show this published version [default: the draft]")
    ] = None,
) -> None:
    """Show a scenario's status, versions and definition (as YAML)."""
    with exit_on_error(), open_database() as db, workspace_scope(db, _workspace(workspace)) as s:
        saved = get_scenario(s, key)
        spec = saved.draft
        if version is not None:
            spec = get_version(s.conn, s.workspace_id, saved.scenario_id, version)
    console.print(f"[bold]{saved.key}[/bold] — {saved.name}  (priority {saved.priority}, "
                  f"{_status(saved)})")  # fmt: skip
    for v in saved.versions:
        console.print(f"  v{v.version}: published by {v.published_by} "
                      f"{v.published_at:%Y-%m-%d %H:%M} UTC")  # fmt: skip
    console.print(f"Created by {saved.created_by}, updated {saved.updated_at:%Y-%m-%d %H:%M} UTC")
    console.print("Draft:" if version is None else f"Version {version}:")
    document = spec.model_dump(mode="json", exclude_defaults=True)
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    console.print(text, highlight=False, markup=False, soft_wrap=True)


@journeys_app.command("publish")
def publish_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Publish the draft as a new version and make it live (runs under way keep theirs)."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        version = publish_scenario(scope, key, _actor())
    console.print(f"Published scenario [bold]{key}[/bold] of {slug}: version {version} is live.")


@journeys_app.command("pause")
def pause_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Pause a live scenario: no new customers enter."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        pause_scenario(scope, key, _actor())
    console.print(f"Paused scenario {key} of {slug}: no new entries until it is resumed.")


@journeys_app.command("resume")
def resume_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Resume a paused scenario: customers enter it again."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        resume_scenario(scope, key, _actor())
    console.print(f"Resumed scenario {key} of {slug}.")


@journeys_app.command("archive")
def archive_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Archive a scenario: no new entries; its key may be used again."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        archive_scenario(scope, key, _actor())
    console.print(f"Archived scenario {key} of {slug}.")


@journeys_app.command("schema")
def schema_command(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file")] = None,
) -> None:
    """Print the JSON Schema of a scenario definition (for editors and validators)."""
    text = json.dumps(scenario_schema(), ensure_ascii=False, indent=2)
    if out is None:
        console.print_json(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        console.print(f"Wrote the schema to {out}")


def register(app: typer.Typer) -> None:
    """Add ``kizuna journeys`` (with ``stats`` and ``simulate``) to ``app``."""
    from kizuna.cli.journeys_reports import add_report_commands

    add_report_commands(journeys_app)
    app.add_typer(journeys_app, name="journeys")
