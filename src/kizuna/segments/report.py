"""Live counts and the 4R report of a segment, computed in SQL.

* **Realistic** (規模): members, their share of the workspace's live customers and
  of net revenue over a window (default the last 365 days).
* **Reach** (到達): per channel, members opted in, with an address, whose
  addresses are none suppressed, and reachable (opted in with an unsuppressed
  address) — the compiler's own reachability, so counts agree with ``channel`` nodes.
* **Response** (効果測定): the members split into treatment and control; the minimum
  detectable lift at 95% confidence (two-sided) and 80% power for a baseline
  conversion rate, and whether it is within the lift the marketer hopes to see.
* **Rank** (優先度): the marketer's priority saved with the segment.

Every number is an aggregate query; no customer row reaches Python.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.analytics.base import purchases, resolve_currency
from kizuna.errors import InvalidInput, Problem
from kizuna.segments.compiler import CHANNELS, CompileContext, compile_counts, compile_segment
from kizuna.segments.definition import Condition
from kizuna.segments.power import minimum_detectable_effect, required_size
from kizuna.store.database import Database
from kizuna.store.scope import Scope
from kizuna.store.segments import check_condition_in, compile_context, get_segment
from kizuna.store.tables import customers
from kizuna.store.workspaces import get_workspace

__all__ = [
    "CHANNEL_LABELS",
    "SECTION_LABELS",
    "ChannelReach",
    "FourRReport",
    "Realistic",
    "ReportOptions",
    "Response",
    "SegmentCounts",
    "count_condition",
    "count_draft",
    "count_segment",
    "four_r_report",
    "report_rows",
    "segment_report",
    "workspace_scope",
]

ALPHA, POWER = 0.05, 0.8  # 95% confidence, two-sided; 80% power
CHANNEL_LABELS = {"email": ("メール", "Email"), "line": ("LINE", "LINE"),
                  "sms": ("SMS", "SMS"), "push": ("アプリプッシュ", "App push")}  # fmt: skip
SECTION_LABELS = {"realistic": ("規模", "Realistic"), "reach": ("到達", "Reach"),
                  "response": ("効果測定", "Response"), "rank": ("優先度", "Rank")}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChannelReach:
    """Members by consent and address on one channel."""

    channel: str
    label_ja: str
    label_en: str
    opted_in: int
    opted_out: int
    has_address: int
    suppressed: int  # with at least one suppressed address
    not_suppressed: int  # with an address, none of them suppressed
    reachable: int  # opted in and at least one unsuppressed address
    reachable_share: float | None  # of the members


@dataclass(frozen=True, slots=True)
class SegmentCounts:
    """How many customers match, and how many of them each channel reaches."""

    customers: int
    channels: list[ChannelReach]

    def reachable(self, channel: str) -> int:
        """Members reachable on ``channel`` (email, line, sms, push)."""
        return next(c.reachable for c in self.channels if c.channel == channel)

    def frame(self) -> pd.DataFrame:
        """One row per channel (the index), the counts as columns."""
        return _reach_frame(self.channels)


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """The marketer's assumptions behind the Response section and the revenue window."""

    baseline: float = 0.02  # expected conversion rate without the message
    control_share: float = 0.1  # share of members held out as the control group
    lift: float = 0.2  # the relative lift hoped for (0.2: +20%)
    revenue_days: int = 365
    currency: str | None = None

    def check(self) -> None:
        """Raise ``InvalidInput`` naming every option out of range."""
        problems = [
            Problem("out_of_range", "must be strictly between 0 and 1", name)
            for name, value in (("baseline", self.baseline), ("control_share", self.control_share))
            if not 0 < value < 1
        ]
        if not self.lift > 0 or (0 < self.baseline < 1 and self.baseline * (1 + self.lift) >= 1):
            problems.append(
                Problem("out_of_range", "must be above 0 and keep the rate under 100%", "lift")
            )
        if not 1 <= self.revenue_days <= 36_600:
            problems.append(Problem("out_of_range", "must be 1 to 36600 days", "revenue_days"))
        if problems:
            raise InvalidInput(problems)


@dataclass(frozen=True, slots=True)
class Realistic:
    """Size: members and their share of customers and of revenue."""

    members: int
    customers: int
    customer_share: float | None
    revenue: float
    total_revenue: float
    revenue_share: float | None
    currency: str | None
    revenue_since: datetime
    as_of: datetime


@dataclass(frozen=True, slots=True)
class Response:
    """Whether a control-group test on the members could show the hoped-for lift."""

    baseline: float
    control_share: float
    treatment: int
    control: int
    confidence: float
    power: float
    effect_size: float | None  # Cohen's h of the minimum detectable effect
    mde_absolute: float | None  # rate points over the baseline
    mde_relative: float | None
    detectable_rate: float | None
    lift: float
    measurable: bool  # the minimum detectable lift is at most ``lift``
    members_needed: int  # segment size at which ``lift`` becomes detectable


@dataclass(frozen=True, slots=True)
class FourRReport:
    """The 4R check of one segment."""

    key: str
    name: str
    rank: int | None
    realistic: Realistic
    reach: list[ChannelReach]
    response: Response
    labels: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(SECTION_LABELS))

    def frame(self) -> pd.DataFrame:
        """Realistic, Response and Rank as rows: section, metric, label_ja, label_en, value."""
        columns = ["section", "metric", "label_ja", "label_en", "value"]
        return pd.DataFrame(report_rows(self), columns=columns)

    def reach_frame(self) -> pd.DataFrame:
        """Reach: one row per channel (the index), the counts as columns."""
        return _reach_frame(self.reach)


def _reach_frame(channels: list[ChannelReach]) -> pd.DataFrame:
    return pd.DataFrame([asdict(c) for c in channels]).set_index("channel")


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _channels(row: Any, members: int) -> list[ChannelReach]:
    reach = []
    for channel in CHANNELS:
        count = {state: int(row[f"{state}_{channel}"] or 0) for state in (
            "opted_in", "opted_out", "has_address", "suppressed", "reachable")}  # fmt: skip
        ja, en = CHANNEL_LABELS[channel]
        # Every suppressed address is an address, so the difference has no overlap.
        not_suppressed = count["has_address"] - count["suppressed"]
        reach.append(ChannelReach(channel, ja, en, not_suppressed=not_suppressed,
                                  reachable_share=_share(count["reachable"], members),
                                  **count))  # fmt: skip
    return reach


def count_condition(conn: Connection, condition: Condition, ctx: CompileContext) -> SegmentCounts:
    """Members of ``condition`` and their reach per channel, in one query."""
    row = conn.execute(compile_counts(condition, ctx)).one()._mapping
    members = int(row["customers"])
    return SegmentCounts(members, _channels(row, members))


def _live_customers(conn: Connection, ctx: CompileContext) -> int:
    query = sa.select(sa.func.count()).where(
        customers.c.workspace_id == ctx.workspace.workspace_id, customers.c.merged_into.is_(None)
    )
    return int(conn.execute(query).scalar_one())


def _revenue(
    conn: Connection, condition: Condition, ctx: CompileContext, since: datetime, currency: str
) -> tuple[float, float]:
    window = purchases(ctx.workspace.workspace_id, ctx.now, since=since, currency=currency)
    bought = window.subquery("p")
    members = compile_segment(condition, ctx).subquery("m")
    member_amount = sa.case((members.c.customer_id.is_not(None), bought.c.amount), else_=0.0)
    query = sa.select(
        sa.func.coalesce(sa.func.sum(bought.c.amount), 0.0),
        sa.func.coalesce(sa.func.sum(member_amount), 0.0),
    ).select_from(bought.outerjoin(members, members.c.customer_id == bought.c.customer_id))
    total, of_members = conn.execute(query).one()
    return float(of_members), float(total)


def _realistic(
    conn: Connection, condition: Condition, ctx: CompileContext, members: int,
    options: ReportOptions,
) -> Realistic:  # fmt: skip
    workspace_id = ctx.workspace.workspace_id
    currency = resolve_currency(conn, workspace_id, ctx.now, options.currency)
    since = ctx.now - timedelta(days=options.revenue_days)
    revenue, total = (0.0, 0.0)
    if currency is not None:
        revenue, total = _revenue(conn, condition, ctx, since, currency)
    everyone = _live_customers(conn, ctx)
    return Realistic(members, everyone, _share(members, everyone), revenue, total,
                     _share(revenue, total), currency, since, ctx.now)  # fmt: skip


def _response(members: int, options: ReportOptions) -> Response:
    control = math.floor(members * options.control_share)
    treatment = members - control
    mde = minimum_detectable_effect(treatment, control, options.baseline, ALPHA, POWER)
    needed = required_size(options.baseline, options.lift, control_share=options.control_share,
                           alpha=ALPHA, power=POWER)  # fmt: skip
    measurable = mde.relative is not None and mde.relative <= options.lift
    return Response(
        options.baseline, options.control_share, treatment, control, 1 - ALPHA, POWER,
        mde.effect_size if math.isfinite(mde.effect_size) else None, mde.absolute,
        mde.relative, mde.treatment_rate, options.lift, measurable, needed.total,
    )  # fmt: skip


def four_r_report(
    conn: Connection,
    *,
    key: str,
    name: str,
    rank: int | None,
    condition: Condition,
    ctx: CompileContext,
    options: ReportOptions | None = None,
) -> FourRReport:
    """The 4R report of ``condition`` (saved as ``key``); ``InvalidInput`` for bad options.

    Revenue is net purchases in ``[now - revenue_days, now]``; a workspace whose orders
    use several currencies must name one (``options.currency``).
    """
    options = options or ReportOptions()
    options.check()
    counts = count_condition(conn, condition, ctx)
    realistic = _realistic(conn, condition, ctx, counts.customers, options)
    return FourRReport(key, name, rank, realistic, counts.channels,
                       _response(counts.customers, options))  # fmt: skip


def report_rows(report: FourRReport) -> list[tuple[str, str, str, str, Any]]:
    """The report as rows of (section, metric, label_ja, label_en, value), reach excluded."""
    r, s = report.realistic, report.response
    rows: list[tuple[str, str, str, str, Any]] = [
        ("realistic", "members", "対象者数", "Members", r.members),
        ("realistic", "customer_share", "顧客に占める割合", "Share of customers", r.customer_share),
        ("realistic", "revenue", "売上", "Revenue", r.revenue),
        ("realistic", "revenue_share", "売上に占める割合", "Share of revenue", r.revenue_share),
        ("response", "treatment", "配信群", "Treatment group", s.treatment),
        ("response", "control", "コントロール群", "Control group", s.control),
        ("response", "baseline", "想定CVR", "Baseline conversion rate", s.baseline),
        ("response", "mde_absolute", "検出可能な差(pt)", "Detectable lift (points)",
         s.mde_absolute),
        ("response", "mde_relative", "検出可能な改善率", "Detectable lift (relative)",
         s.mde_relative),
        ("response", "lift", "期待する改善率", "Hoped-for lift", s.lift),
        ("response", "measurable", "効果測定可能", "Measurable", s.measurable),
        ("response", "members_needed", "必要な対象者数", "Members needed", s.members_needed),
        ("rank", "rank", "優先度", "Rank", report.rank),
    ]  # fmt: skip
    return rows


# --- services shared by the API, the CLI and the Python API ---------------------------


@contextmanager
def workspace_scope(db: Database, workspace: str, *, write: bool = False) -> Iterator[Scope]:
    """A read (or write) scope on the workspace named by slug; ``NotFound`` if unknown."""
    with db.write() if write else db.read() as conn:
        ws = get_workspace(conn, workspace)
        yield Scope(conn, db.cipher, ws.workspace_id, db.clock.now())


def count_draft(db: Database, workspace: str, condition: Condition) -> SegmentCounts:
    """Count an unsaved condition (checked first: ``InvalidInput`` with node paths)."""
    with workspace_scope(db, workspace) as scope:
        return count_condition(scope.conn, condition, check_condition_in(scope, condition))


def count_segment(db: Database, workspace: str, key: str) -> SegmentCounts:
    """Count a saved segment's members now; ``NotFound`` for an unknown key."""
    with workspace_scope(db, workspace) as scope:
        saved = get_segment(scope, key)
        return count_condition(scope.conn, saved.condition, compile_context(scope))


def segment_report(
    db: Database, workspace: str, key: str, options: ReportOptions | None = None
) -> FourRReport:
    """The 4R report of a saved segment; ``NotFound`` or ``InvalidInput`` (options)."""
    with workspace_scope(db, workspace) as scope:
        saved = get_segment(scope, key)
        ctx = compile_context(scope)
        return four_r_report(scope.conn, key=saved.key, name=saved.name, rank=saved.rank,
                             condition=saved.condition, ctx=ctx, options=options)  # fmt: skip
