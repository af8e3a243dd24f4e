"""The Python API's campaigns: list, save, check, test-send, submit, approve, cancel, audience.

Mixed into :class:`kizuna.client.Kizuna` (which holds ``db``, ``workspace`` and the
workspace's zone). Actions are logged under the OS account running Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from kizuna.campaigns.checks import CheckReport
from kizuna.campaigns.definition import CampaignSpec, load_campaign_text, parse_campaign
from kizuna.campaigns.flow import (
    approve_campaign,
    cancel_campaign,
    check_campaign,
    queue_campaign_test_send,
    submit_campaign,
)
from kizuna.segments.report import workspace_scope
from kizuna.store.campaigns import SavedCampaign, get_campaign, list_campaigns, save_campaign
from kizuna.store.database import Database
from kizuna.store.frames import read_frame
from kizuna.store.operation_log import Actor
from kizuna.store.profiles import find_customer_id
from kizuna.store.tables_campaigns import campaign_recipients
from kizuna.store.workspaces import Workspace

__all__ = ["CampaignsMixin"]

_LIST = ["key", "name", "status", "segment", "channel", "variants", "control_percent",
         "send_at", "frozen_at", "targeted", "held_out", "created_by", "approved_by",
         "updated_at"]  # fmt: skip
_TIMES = ("send_at", "frozen_at", "updated_at", "converted_at")


class CampaignsMixin:
    """One-shot campaigns of one workspace."""

    db: Database
    workspace: Workspace
    _zone: ZoneInfo

    def _local(self, frame: pd.DataFrame) -> pd.DataFrame:
        for column in _TIMES:
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(self._zone)
        return frame

    def campaigns(self) -> pd.DataFrame:
        """Campaigns, newest first: status, segment, channel, schedule, audience sizes."""
        with workspace_scope(self.db, self.workspace.slug) as scope:
            saved = list_campaigns(scope)
        rows = [[c.key, c.name, c.status, c.spec.segment, c.spec.channel,
                 ",".join(v.key for v in c.spec.variants), c.spec.control_percent, c.send_at,
                 c.frozen_at, c.targeted, c.held_out, c.created_by, c.approved_by, c.updated_at]
                for c in saved]  # fmt: skip
        return self._local(pd.DataFrame(rows, columns=_LIST))

    def campaign(self, key: str) -> SavedCampaign:
        """One campaign as stored (definition in ``.spec``, last checks in ``.checks``)."""
        with workspace_scope(self.db, self.workspace.slug) as scope:
            return get_campaign(scope, key)

    def save_campaign(self, spec: CampaignSpec | dict[str, Any] | str | Path) -> SavedCampaign:
        """Save a campaign from a spec, a dict, or a .yaml/.json file, as a draft."""
        if isinstance(spec, str | Path):
            path = Path(spec)
            fmt: Literal["yaml", "json"] = "json" if path.suffix.lower() == ".json" else "yaml"
            spec = load_campaign_text(path.read_text(encoding="utf-8-sig"), fmt)
        elif isinstance(spec, dict):
            spec = parse_campaign(spec)
        with workspace_scope(self.db, self.workspace.slug, write=True) as scope:
            return save_campaign(scope, spec, Actor.os_user("python").name)

    def check_campaign(self, key: str) -> pd.DataFrame:
        """Run the pre-send checks: one row per finding (code, severity, number, messages)."""
        with workspace_scope(self.db, self.workspace.slug, write=True) as scope:
            report = check_campaign(scope, key)
        return _findings(report)

    def test_send_campaign(
        self, key: str, *, variant: str | None = None, customer: str | None = None
    ) -> dict[str, list[str]]:
        """Send the variant (or all) to the seed list; returns the test message ids per variant."""
        with workspace_scope(self.db, self.workspace.slug, write=True) as scope:
            who = (find_customer_id(scope.conn, scope.cipher, scope.workspace_id, customer)
                   if customer else None)  # fmt: skip
            sent = queue_campaign_test_send(scope, key, variant=variant, customer_id=who)
        return {name: [str(i) for i in ids] for name, ids in sent.items()}

    def submit_campaign(self, key: str) -> pd.DataFrame:
        """Ask for approval (checks first; ``InvalidInput`` on a refusal); returns the checks."""
        with workspace_scope(self.db, self.workspace.slug, write=True) as scope:
            return _findings(submit_campaign(scope, key, Actor.os_user("python")))

    def approve_campaign(self, key: str) -> SavedCampaign:
        """Approve and schedule the send (needs the checks to pass again)."""
        with workspace_scope(self.db, self.workspace.slug, write=True) as scope:
            return approve_campaign(scope, key, Actor.os_user("python"))

    def cancel_campaign(self, key: str) -> SavedCampaign:
        """Cancel a campaign not yet sent."""
        with workspace_scope(self.db, self.workspace.slug, write=True) as scope:
            return cancel_campaign(scope, key, Actor.os_user("python"))

    def campaign_recipients(self, key: str) -> pd.DataFrame:
        """The frozen audience: customer_id, held_out, variant, message_id, send_at, outcomes."""
        r = campaign_recipients.c
        with workspace_scope(self.db, self.workspace.slug) as scope:
            campaign_id = get_campaign(scope, key).campaign_id
            query = (
                sa.select(r.customer_id, r.held_out, r.variant, r.message_id, r.send_at,
                          r.converted_at, r.conversions, r.revenue)
                .where(r.workspace_id == scope.workspace_id, r.campaign_id == campaign_id)
                .order_by(r.customer_id)
            )  # fmt: skip
            frame = read_frame(scope.conn, query)
        frame["held_out"] = frame["held_out"].astype(bool)
        return self._local(frame)


def _findings(report: CheckReport) -> pd.DataFrame:
    columns = ["code", "severity", "number", "message", "message_ja"]
    rows = [[getattr(f, c) for c in columns] for f in report.findings]
    return pd.DataFrame(rows, columns=columns)
