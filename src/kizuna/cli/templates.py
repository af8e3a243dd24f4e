"""``kizuna templates …``: save, validate, show and preview message templates; blocks.

Templates are YAML or JSON files (by suffix) with ``key``, ``channel``, ``name`` and
the channel's parts (see ``examples/templates/``). A problem is reported with the
file's name and the line in the file: a template error on line 3 of a ``body: |``
block is shown at that line of the file. Revealed previews are logged under the OS
account running the CLI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import yaml
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from kizuna.bootstrap import open_database
from kizuna.cli.app import WorkspaceOption, console, default_workspace, err_console, exit_on_error
from kizuna.content.library import (
    TemplatePreview,
    preview_template,
    save_block,
    save_template,
    validate_template,
)
from kizuna.content.spec import TemplateSpec, load_template_text
from kizuna.errors import InvalidInput, Problem
from kizuna.segments.report import workspace_scope
from kizuna.store.operation_log import Actor
from kizuna.store.profiles import find_customer_id
from kizuna.store.templates import archive_template, get_block, get_template, list_blocks
from kizuna.store.templates import list_templates as stored_templates

__all__ = ["read_template_file", "register"]

templates_app = typer.Typer(
    help="Message templates: save, validate, show, preview for a customer; reusable blocks.",
    no_args_is_help=True,
)
blocks_app = typer.Typer(help="Reusable blocks, included as {% include \"block:KEY\" %}.",
                         no_args_is_help=True)  # fmt: skip
templates_app.add_typer(blocks_app, name="blocks")
KeyArgument = typer.Argument(help="The template's key")
FileArgument = typer.Argument(help="A template file, .yaml/.yml or .json")


def _node(text: str, field: str) -> Any:
    try:
        node: Any = yaml.compose(text)
    except yaml.YAMLError:
        return None
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", field):
        if isinstance(node, yaml.SequenceNode) and part.startswith("["):
            children = node.value[int(part[1:-1]) : int(part[1:-1]) + 1]
        elif isinstance(node, yaml.MappingNode):
            children = [v for k, v in node.value if getattr(k, "value", None) == part]
        else:
            children = []
        if not children:
            return None
        node = children[0]
    return node


def _file_line(text: str, field: str | None, line: int | None) -> int | None:
    """The file line of ``line`` within the part at ``field`` (or of the field itself)."""
    node = _node(text, field) if field else None
    if node is None:
        return line if field is None else None
    start = int(node.start_mark.line) + 1
    if line is None:
        return start
    block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
    return start + line if block else start + line - 1  # a block scalar starts below its key


def _located(exc: InvalidInput, text: str) -> InvalidInput:
    return InvalidInput(
        [Problem(p.code, p.message, p.field, _file_line(text, p.field, p.line) or p.line)
         for p in exc.problems]
    )  # fmt: skip


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(Problem("unreadable_file", exc.strerror or "cannot read")) from None


def read_template_file(path: Path) -> TemplateSpec:
    """Load a template file; ``InvalidInput`` whose problems name the file's lines."""
    text = _text(path)
    fmt: Literal["yaml", "json"] = "json" if path.suffix.lower() == ".json" else "yaml"
    try:
        return load_template_text(text, fmt)
    except InvalidInput as exc:
        raise _located(exc, text) from None


@contextmanager
def _file_errors(path: Path) -> Iterator[None]:
    """Print a file's problems as ``FILE: line N, field 'body': message``; exit 2."""
    try:
        yield
    except InvalidInput as exc:
        located = _located(exc, _text(path)) if path.is_file() else exc
        for problem in located.problems:
            message = f"[red]error:[/red] {path}: {problem.describe()}"
            err_console.print(message, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line strings as ``|`` blocks, the way template files are written."""


def _text_node(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text_node)


def _workspace(workspace: str | None) -> str:
    return workspace or default_workspace()


@templates_app.command("list")
def list_command(
    workspace: Annotated[str | None, WorkspaceOption] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel's")] = None,
) -> None:
    """List the workspace's templates."""
    with exit_on_error(), open_database() as db, workspace_scope(db, _workspace(workspace)) as s:
        found = stored_templates(s, channel=channel)
    table = Table(title="Templates")
    table.add_column("key", no_wrap=True)
    for header in ("channel", "name / 名前", "version", "saved by", "updated (UTC)"):
        table.add_column(header)
    for t in found:
        table.add_row(t.key, t.channel, t.name, str(t.version), t.created_by,
                      t.updated_at.strftime("%Y-%m-%d %H:%M"))  # fmt: skip
    console.print(table if found else "No templates yet (kizuna templates save FILE.yaml).")


@templates_app.command("show")
def show_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Show a template as YAML (the file format ``save`` reads)."""
    with exit_on_error(), open_database() as db, workspace_scope(db, _workspace(workspace)) as s:
        record = get_template(s, key)
    console.print(f"[bold]{record.key}[/bold] — {record.name} ({record.channel}, "
                  f"version {record.version}, saved by {record.created_by} "
                  f"{record.updated_at:%Y-%m-%d %H:%M} UTC)")  # fmt: skip
    spec = record.spec().model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    text = yaml.dump({"key": record.key, **spec}, Dumper=_Dumper, allow_unicode=True,
                     sort_keys=False)  # fmt: skip
    console.print(text, highlight=False, markup=False, soft_wrap=True)


@templates_app.command("save")
def save_command(
    file: Annotated[Path, FileArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Save the template in FILE (checked first; a changed template gets a new version)."""
    slug = _workspace(workspace)
    with exit_on_error(), _file_errors(file), open_database() as db:
        spec = read_template_file(file)
        with workspace_scope(db, slug, write=True) as scope:
            saved = save_template(scope, spec, Actor.os_user("cli").name)
    console.print(f"Saved template [bold]{saved.key}[/bold] ({saved.name}) in {slug}: "
                  f"version {saved.version}.")  # fmt: skip


@templates_app.command("validate")
def validate_command(
    file: Annotated[Path, FileArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Check FILE against the workspace without saving it (exit 2 with each problem)."""
    with exit_on_error(), _file_errors(file), open_database() as db:
        spec = read_template_file(file)
        with workspace_scope(db, _workspace(workspace)) as scope:
            problems = validate_template(scope, spec)
        if problems:
            raise InvalidInput(problems)
    console.print(f"{file}: OK — template {spec.key} can be saved.")


def _print_preview(preview: TemplatePreview, html_out: Path | None) -> None:
    c = preview.content
    notes = [preview.channel]
    if preview.channel == "email":
        notes.append(preview.purpose)  # only email's purpose changes what is sent (the footer)
    if not preview.revealed:
        notes.append("personal data masked")
    title = f"{preview.key} ({', '.join(notes)})"
    if c.subject is not None:
        console.print(f"[bold]Subject / 件名:[/bold] {escape(c.subject)}", highlight=False)
    if c.text:
        console.print(Panel(c.text, title=title, title_align="left"), highlight=False)
    if c.payload:
        console.print_json(json.dumps(dict(c.payload), ensure_ascii=False))
    if c.html is not None and html_out is not None:
        html_out.write_text(c.html, encoding="utf-8")
        console.print(f"Wrote the HTML part to {html_out}")
    elif c.html is not None:
        console.print(f"HTML part: {len(c.html):,} characters (--html-out FILE to write it)")
    for warning in preview.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


@templates_app.command("preview")
def preview_command(
    target: Annotated[str, typer.Argument(help="A saved template's key, or a template file")],
    customer: Annotated[str, typer.Option(help="Kizuna id, shop customer id, email or phone")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
    purpose: Annotated[
        str | None, typer.Option(help="marketing or transactional [default: marketing for email]")
    ] = None,
    reveal: Annotated[bool, typer.Option(help="Personal data in clear (logged)")] = False,
    html_out: Annotated[Path | None, typer.Option(help="Write the HTML part here")] = None,
) -> None:
    """Render a template for a real customer (a file is previewed without saving it)."""
    path = Path(target)
    with exit_on_error(), _file_errors(path), open_database() as db:
        template: str | TemplateSpec = read_template_file(path) if path.is_file() else target
        if purpose not in (None, "marketing", "transactional"):
            raise InvalidInput(Problem("invalid_purpose", "marketing or transactional", "purpose"))
        with workspace_scope(db, _workspace(workspace), write=reveal) as scope:
            customer_id = find_customer_id(scope.conn, scope.cipher, scope.workspace_id, customer)
            preview = preview_template(scope, template, customer_id, actor=Actor.os_user("cli"),
                                       reveal=reveal, purpose=purpose)  # fmt: skip
    _print_preview(preview, html_out)


@templates_app.command("delete")
def delete_command(
    key: Annotated[str, KeyArgument], workspace: Annotated[str | None, WorkspaceOption] = None
) -> None:
    """Archive a template (queued messages using it fail with that reason)."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db, workspace_scope(db, slug, write=True) as scope:
        archive_template(scope, key)
    console.print(f"Archived template {key} of {slug}.")


@blocks_app.command("list")
def blocks_list_command(workspace: Annotated[str | None, WorkspaceOption] = None) -> None:
    """List the workspace's blocks."""
    with exit_on_error(), open_database() as db, workspace_scope(db, _workspace(workspace)) as s:
        found = list_blocks(s)
    table = Table("key", "lines", "saved by", "updated (UTC)", title="Blocks")
    for b in found:
        table.add_row(b.key, str(b.body.count("\n") + 1), b.updated_by,
                      b.updated_at.strftime("%Y-%m-%d %H:%M"))  # fmt: skip
    console.print(table if found else "No blocks yet (kizuna templates blocks save KEY FILE).")


@blocks_app.command("show")
def blocks_show_command(
    key: Annotated[str, typer.Argument(help="The block's key")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Print a block's body."""
    with exit_on_error(), open_database() as db, workspace_scope(db, _workspace(workspace)) as s:
        block = get_block(s, key)
    console.print(block.body, highlight=False, markup=False, end="")


@blocks_app.command("save")
def blocks_save_command(
    key: Annotated[str, typer.Argument(help="The block's key (a-z, 0-9, _ and -)")],
    file: Annotated[Path, typer.Argument(help="A text file holding the block's template")],
    workspace: Annotated[str | None, WorkspaceOption] = None,
) -> None:
    """Save FILE as block KEY (refused when it breaks a template that includes blocks)."""
    slug = _workspace(workspace)
    with exit_on_error(), open_database() as db:
        body = _text(file)
        with workspace_scope(db, slug, write=True) as scope:
            save_block(scope, key, body, Actor.os_user("cli").name)
    console.print(f"Saved block [bold]{key}[/bold] in {slug}; include it as "
                  f'{{% include "block:{key}" %}}.', highlight=False, markup=True)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``kizuna templates`` to ``app``."""
    app.add_typer(templates_app, name="templates")
