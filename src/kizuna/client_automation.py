"""The Python API's automation half: templates, sends, the message log, scenario reports.

Mixed into :class:`kizuna.client.Kizuna` (which holds ``db``, ``workspace`` and the
workspace's zone); split out so each module stays readable.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd

from kizuna.content.library import save_template
from kizuna.content.spec import TemplateSpec, load_template_text, parse_template_spec
from kizuna.scenarios.checks import load_scenario_text, parse_scenario
from kizuna.scenarios.definition import ScenarioSpec
from kizuna.scenarios.simulate import Simulation, simulate
from kizuna.scenarios.stats import ScenarioStats, node_stats
from kizuna.segments.report import workspace_scope
from kizuna.store.database import Database
from kizuna.store.messages import SendIntent, enqueue, list_messages
from kizuna.store.operation_log import Actor
from kizuna.store.profiles import find_customer_id
from kizuna.store.templates import TemplateRecord, list_templates
from kizuna.store.workspaces import Workspace

__all__ = ["AutomationMixin"]


class AutomationMixin:
    """Templates, sending and scenario reports for one workspace."""

    db: Database
    workspace: Workspace
    _zone: ZoneInfo

    def templates(self) -> pd.DataFrame:
        """Message templates: key, channel, name, version, who saved it and when."""
        with workspace_scope(self.db, self.workspace.slug) as scope:
            saved = list_templates(scope)
        columns = ["key", "channel", "name", "version", "created_by", "updated_at"]
        frame = pd.DataFrame([[getattr(t, c) for c in columns] for t in saved], columns=columns)
        frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True).dt.tz_convert(
            self._zone
        )
        return frame

    def save_template(self, spec: TemplateSpec | dict[str, Any] | str | Path) -> TemplateRecord:
        """Save a template from a spec, a dict, or a .yaml/.json file (checked first)."""
        if isinstance(spec, str | Path):
            path = Path(spec)
            fmt: Literal["yaml", "json"] = "json" if path.suffix.lower() == ".json" else "yaml"
            spec = load_template_text(path.read_text(encoding="utf-8-sig"), fmt)
        elif isinstance(spec, dict):
            spec = parse_template_spec(spec)
        with workspace_scope(self.db, self.workspace.slug, write=True) as scope:
            return save_template(scope, spec, Actor.os_user("python").name)

    def send(
        self, customer: str, template: str, *, channel: str = "email", key: str,
        purpose: str = "transactional", params: dict[str, Any] | None = None,
    ) -> str:  # fmt: skip
        """Queue one message (the same ``key`` is sent once); returns its message id."""
        with workspace_scope(self.db, self.workspace.slug, write=True) as scope:
            who = find_customer_id(scope.conn, scope.cipher, scope.workspace_id, customer)
            intent = SendIntent(who, channel, template, key, purpose=purpose, params=params or {})
            return str(enqueue(scope, [intent])[0])

    def messages(self, *, status: str | None = None, limit: int = 1000) -> pd.DataFrame:
        """The message log, newest first: channel, template, source, status, reason, times."""
        with workspace_scope(self.db, self.workspace.slug) as scope:
            found = list_messages(scope, status=status, limit=limit)
        columns = ["message_id", "customer_id", "channel", "purpose", "template_key",
                   "source_kind", "source_id", "step", "variant", "status", "reason",
                   "attempts", "created_at", "sent_at", "delivered_at"]  # fmt: skip
        frame = pd.DataFrame([[getattr(m, c) for c in columns] for m in found], columns=columns)
        for column in ("created_at", "sent_at", "delivered_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(self._zone)
        return frame

    def scenario_stats(self, key: str, version: int | None = None) -> ScenarioStats:
        """Per-node statistics of a scenario (``.frame()``) with totals (``.totals``)."""
        with workspace_scope(self.db, self.workspace.slug) as scope:
            return node_stats(scope, key, version)

    def simulate(
        self, spec: ScenarioSpec | dict[str, Any] | str | Path, since: datetime, until: datetime
    ) -> Simulation:
        """Replay history through a draft (a spec, dict or file); nothing is kept or sent."""
        if isinstance(spec, str | Path):
            path = Path(spec)
            fmt: Literal["yaml", "json"] = "json" if path.suffix.lower() == ".json" else "yaml"
            spec = load_scenario_text(path.read_text(encoding="utf-8-sig"), fmt)
        elif isinstance(spec, dict):
            spec = parse_scenario(spec)
        return simulate(self.db, self.workspace.slug, spec, since, until)
