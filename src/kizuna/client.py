"""The Python API for analysts: tables of one workspace as pandas DataFrames.

>>> import kizuna
>>> shop = kizuna.connect("demo")          # KIZUNA_HOME / KIZUNA_DATABASE_URL as the CLI
>>> shop.orders(since="2025-01-01").groupby("channel")["total"].sum()
>>> shop.analyze("rfm")                    # RFM segments; shop.analyses() lists them all
>>> shop.plot("cohorts")                   # a matplotlib Figure

Times come back in the workspace's time zone. Personal data stays out of the
frames unless ``reveal=True`` is asked for explicitly.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from matplotlib.figure import Figure

from kizuna.analytics.catalog import (
    ANALYSES,
    AnalysisRequest,
    parse_request,
    plot_analysis,
    run_analysis,
)
from kizuna.analytics.metrics import MetricsRefresh, metrics_query, refresh_customer_metrics
from kizuna.bootstrap import open_database
from kizuna.client_automation import AutomationMixin
from kizuna.client_campaigns import CampaignsMixin
from kizuna.client_reports import ReportsMixin
from kizuna.config import load_settings
from kizuna.domain.normalize import parse_datetime
from kizuna.errors import InvalidInput, Problem
from kizuna.profiles import customer_profile, customer_timeline, profile_view
from kizuna.segments.definition import (
    Condition,
    SegmentSpec,
    load_spec,
    parse_condition,
    parse_spec,
)
from kizuna.segments.export import MEMBER_COLUMNS, open_export, preview_segment
from kizuna.segments.report import (
    FourRReport,
    ReportOptions,
    SegmentCounts,
    count_draft,
    count_segment,
    segment_report,
    workspace_scope,
)
from kizuna.store.customers import PII_TRAITS
from kizuna.store.database import Database
from kizuna.store.frames import read_frame
from kizuna.store.operation_log import Actor
from kizuna.store.segments import SavedSegment, list_segments, save_segment
from kizuna.store.tables import customers, events, order_items, orders, products
from kizuna.store.workspaces import Workspace, get_workspace

__all__ = ["Kizuna", "connect"]

_CLEAR_CUSTOMER_COLUMNS = (
    "customer_id",
    "shop_customer_id",
    "gender",
    "prefecture",
    "city",
    "birth_md",
    "membership_rank",
    "registered_at",
    "first_seen_at",
    "last_seen_at",
)


def connect(
    workspace: str = "demo", *, home: str | Path | None = None, database_url: str | None = None
) -> Kizuna:
    """Open a workspace of the configured store (arguments override the environment)."""
    env: dict[str, str] = {}
    if home is not None:
        env["KIZUNA_HOME"] = str(home)
    if database_url is not None:
        env["KIZUNA_DATABASE_URL"] = database_url
    settings = load_settings({**os.environ, **env})
    return Kizuna(open_database(settings), workspace)


class Kizuna(AutomationMixin, CampaignsMixin, ReportsMixin):
    """One workspace's data, read-only, as DataFrames."""

    def __init__(self, db: Database, workspace: str) -> None:
        self.db = db
        with db.read() as conn:
            self.workspace: Workspace = get_workspace(conn, workspace)
        self._zone = ZoneInfo(self.workspace.time_zone)

    def __enter__(self) -> Kizuna:
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()

    def _frame(self, query: sa.Select[Any], time_columns: tuple[str, ...]) -> pd.DataFrame:
        with self.db.read() as conn:
            frame = read_frame(conn, query)
        for column in time_columns:
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(self._zone)
        return frame

    def _window(
        self,
        query: sa.Select[Any],
        column: sa.ColumnElement[Any],
        since: str | datetime | None,
        until: str | datetime | None,
    ) -> sa.Select[Any]:
        tz = self.workspace.time_zone
        if since is not None:
            query = query.where(column >= parse_datetime(since, "since", tz))
        if until is not None:
            query = query.where(column < parse_datetime(until, "until", tz))
        return query

    def customers(self, *, reveal: bool = False, include_merged: bool = False) -> pd.DataFrame:
        """One row per customer; personal columns only with ``reveal=True`` (decrypted)."""
        columns = [customers.c[name] for name in _CLEAR_CUSTOMER_COLUMNS]
        if reveal:
            columns += [customers.c[col] for col in PII_TRAITS.values()]
        query = sa.select(*columns).where(customers.c.workspace_id == self.workspace.workspace_id)
        if not include_merged:
            query = query.where(customers.c.merged_into.is_(None))
        frame = self._frame(query, ("registered_at", "first_seen_at", "last_seen_at"))
        for name, col in PII_TRAITS.items():
            if col in frame:
                frame[name] = frame.pop(col).map(self.db.cipher.decrypt_optional)
        return frame

    def orders(
        self, *, since: str | datetime | None = None, until: str | datetime | None = None
    ) -> pd.DataFrame:
        """Orders (one row each) placed in ``[since, until)``, local times."""
        query = sa.select(orders).where(orders.c.workspace_id == self.workspace.workspace_id)
        query = self._window(query, orders.c.ordered_at, since, until).order_by(orders.c.ordered_at)
        frame = self._frame(query, ("ordered_at", "cancelled_at", "returned_at", "updated_at"))
        return frame.drop(columns=["workspace_id"])

    def order_items(self) -> pd.DataFrame:
        """Order lines with SKU, category, brand, price and sale flag."""
        query = sa.select(order_items).where(
            order_items.c.workspace_id == self.workspace.workspace_id
        )
        return self._frame(query, ()).drop(columns=["workspace_id"])

    def events(
        self,
        name: str | None = None,
        *,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Events (optionally of one name) in ``[since, until)``, oldest first."""
        query: sa.Select[Any] = sa.select(
            events.c.customer_id,
            events.c.event_id,
            events.c.type,
            events.c.name,
            events.c.properties,
            events.c.occurred_at,
            events.c.received_at,
        ).where(events.c.workspace_id == self.workspace.workspace_id)
        if name is not None:
            query = query.where(events.c.name == name)
        query = self._window(query, events.c.occurred_at, since, until)
        query = query.order_by(events.c.occurred_at)
        if limit is not None:
            query = query.limit(limit)
        return self._frame(query, ("occurred_at", "received_at"))

    def products(self) -> pd.DataFrame:
        """The catalogue with stock."""
        query = sa.select(products).where(products.c.workspace_id == self.workspace.workspace_id)
        return self._frame(query, ("updated_at",)).drop(columns=["workspace_id"])

    def profile(self, ref: str, *, reveal: bool = False) -> dict[str, Any]:
        """A customer's profile (masked unless ``reveal``) with their timeline."""
        _, profile = customer_profile(self.db, self.workspace.slug, ref)
        _, _, entries = customer_timeline(self.db, self.workspace.slug, ref)
        view = profile_view(profile, reveal=reveal)
        view["timeline"] = [asdict(e) for e in entries]
        return view

    def analyses(self) -> pd.DataFrame:
        """The analyses :meth:`analyze` runs: name, titles, breakdowns, whether they plot."""
        return pd.DataFrame(
            [
                {
                    "name": a.name,
                    "title_ja": a.title_ja,
                    "title_en": a.title_en,
                    "by": list(a.by),
                    "has_plot": a.plot is not None,
                }
                for a in ANALYSES.values()
            ]
        )

    def analyze(
        self,
        name: str,
        *,
        as_of: str | datetime | None = None,
        since: str | datetime | None = None,
        currency: str | None = None,
        by: str | None = None,
    ) -> pd.DataFrame:
        """Run analysis ``name`` (``rfm``, ``deciles``, ``repeat``, ``cohorts``, ``clv`` …)."""
        request = self._request(as_of, since, currency, by)
        with self.db.read() as conn:
            return run_analysis(conn, self.workspace, name, request)

    def plot(
        self,
        name: str,
        *,
        as_of: str | datetime | None = None,
        since: str | datetime | None = None,
        currency: str | None = None,
        by: str | None = None,
    ) -> Figure:
        """Analysis ``name``'s plot as a matplotlib Figure (shows itself in Jupyter)."""
        request = self._request(as_of, since, currency, by)
        with self.db.read() as conn:
            return plot_analysis(conn, self.workspace, name, request)

    def _request(
        self,
        as_of: str | datetime | None,
        since: str | datetime | None,
        currency: str | None,
        by: str | None,
    ) -> AnalysisRequest:
        return parse_request(self.workspace, self.db.clock.now(), as_of=as_of, since=since,
                             currency=currency, by=by)  # fmt: skip

    def refresh_metrics(self, *, as_of: str | datetime | None = None) -> MetricsRefresh:
        """Recompute the stored per-customer metrics (RFM, P(alive), CLV, next order)."""
        request = self._request(as_of, None, None, None)
        return refresh_customer_metrics(self.db, self.workspace, as_of=request.as_of)

    def metrics(self) -> pd.DataFrame:
        """The stored per-customer metrics, as the last refresh wrote them."""
        frame = self._frame(
            metrics_query(self.workspace), ("as_of", "expected_next_order_at", "computed_at")
        )
        return frame.drop(columns=["workspace_id"])

    # --- segments -------------------------------------------------------------------

    def segments(self) -> pd.DataFrame:
        """Saved segments by rank: key, name, rank, description, what changes them, times."""
        with workspace_scope(self.db, self.workspace.slug) as scope:
            saved = list_segments(scope)
        columns = ["key", "name", "rank", "description", "depends_on", "created_by",
                   "created_at", "updated_at", "refreshed_at"]  # fmt: skip
        frame = pd.DataFrame(
            [[getattr(s, c) for c in columns] for s in saved], columns=columns
        ).astype({"rank": "Int64"})
        frame["depends_on"] = frame["depends_on"].map(sorted)
        for column in ("created_at", "updated_at", "refreshed_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(self._zone)
        return frame

    def save_segment(self, spec: SegmentSpec | dict[str, Any] | str | Path) -> SavedSegment:
        """Save a segment from a spec, a dict, or a .yaml/.json file (replacing its key)."""
        if isinstance(spec, str | Path):
            path = Path(spec)
            fmt: Literal["yaml", "json"] = "json" if path.suffix.lower() == ".json" else "yaml"
            try:
                text = path.read_text(encoding="utf-8-sig")
            except OSError as exc:
                problem = Problem("unreadable_file", f"{path}: {exc.strerror}", "spec")
                raise InvalidInput(problem) from None
            spec = load_spec(text, fmt)
        elif isinstance(spec, dict):
            spec = parse_spec(spec)
        with workspace_scope(self.db, self.workspace.slug, write=True) as scope:
            return save_segment(scope, spec, Actor.os_user("python").name)

    def count(self, segment: str | Condition | SegmentSpec | dict[str, Any]) -> SegmentCounts:
        """Members of a saved segment (by key) or of an unsaved condition or spec, with reach.

        ``.customers`` is the total; ``.frame()`` the counts per channel.
        """
        if isinstance(segment, str):
            return count_segment(self.db, self.workspace.slug, segment)
        if isinstance(segment, SegmentSpec):
            segment = segment.condition
        condition = parse_condition(segment) if isinstance(segment, dict) else segment
        return count_draft(self.db, self.workspace.slug, condition)

    def segment_report(
        self, key: str, *, baseline: float = 0.02, control_share: float = 0.1,
        lift: float = 0.2, revenue_days: int = 365, currency: str | None = None,
    ) -> FourRReport:  # fmt: skip
        """The 4R report (``.frame()`` for Realistic/Response/Rank, ``.reach_frame()``)."""
        options = ReportOptions(baseline, control_share, lift, revenue_days, currency)
        return segment_report(self.db, self.workspace.slug, key, options)

    def preview(self, key: str, n: int = 20, *, reveal: bool = False) -> pd.DataFrame:
        """``n`` random members; personal data masked unless ``reveal`` (which is logged)."""
        sample = preview_segment(self.db, self.workspace.slug, key, limit=n, reveal=reveal,
                                 actor=Actor.os_user("python"))  # fmt: skip
        return sample.frame()

    def members(self, key: str, *, reveal: bool = False) -> pd.DataFrame:
        """Every member as a DataFrame (masked unless ``reveal``); logged as an export."""
        with open_export(self.db, self.workspace.slug, key, format="dataframe", reveal=reveal,
                         actor=Actor.os_user("python")) as export:  # fmt: skip
            frames = list(export.frames())
        if not frames:
            return pd.DataFrame(columns=list(MEMBER_COLUMNS))
        return pd.concat(frames, ignore_index=True)

    def export_segment(
        self, key: str, path: str | Path, *, format: str | None = None, reveal: bool = False
    ) -> int:
        """Stream the members to a CSV or Parquet file (by suffix); returns the row count."""
        path = Path(path)
        fmt = format or ("parquet" if path.suffix.lower() == ".parquet" else "csv")
        if fmt == "dataframe":
            raise InvalidInput(Problem("unknown_format", "use csv or parquet", "format"))
        export = open_export(self.db, self.workspace.slug, key, format=fmt, reveal=reveal,
                             actor=Actor.os_user("python"))  # fmt: skip
        with export, path.open("wb") as handle:
            for chunk in export.stream():
                handle.write(chunk)
        return export.rows
