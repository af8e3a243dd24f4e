"""Checks before a campaign sends, each with the number that made it so.

Refused (the campaign cannot be approved):

- ``segment_empty`` — the segment has no members now (number: 0);
- ``render_failed`` — a variant's template fails for a sample member (number: the
  failures; details: the customer id and the template's error);
- ``no_reachable`` — no member can be reached on the channel (opted in with an
  unsuppressed address; number: 0 reachable of N members);
- ``no_provider`` — no provider is configured for the channel: every message would
  fail (number: 0).

Warned:

- ``schedule_past`` — the scheduled time has passed: approved now, it sends at once
  (number: hours late);
- ``no_control`` — the control group is 0 %: no uplift can be measured;
- ``control_too_small`` — the minimum detectable effect (95 % confidence, 80 %
  power, :mod:`kizuna.segments.power`) for the planned treatment and control sizes
  and the segment's own recent conversion rate is above the hoped-for lift (number:
  the relative MDE).

The result is stored in ``campaigns.checks`` by :mod:`kizuna.campaigns.flow`.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.campaigns.definition import CampaignSpec, send_instant
from kizuna.content.context import build_contexts, message_context, sample_links
from kizuna.content.render import open_renderer
from kizuna.delivery.settings import load_delivery_settings
from kizuna.errors import KizunaError
from kizuna.segments.compiler import CompileContext, compile_segment
from kizuna.segments.definition import Condition
from kizuna.segments.power import minimum_detectable_effect, required_size
from kizuna.segments.report import ALPHA, POWER, count_condition
from kizuna.store.providers import load_provider_state
from kizuna.store.scope import Scope
from kizuna.store.segments import compile_context, get_segment
from kizuna.store.tables import customers, orders
from kizuna.store.workspaces import get_workspace

__all__ = ["HOPED_LIFT", "SAMPLE_SIZE", "CheckReport", "Finding", "check_campaign_spec"]

SAMPLE_SIZE = 5  # sample members each variant is rendered for
HOPED_LIFT = 0.2  # a lift worth measuring (+20 %), as the segments' 4R report assumes
DEFAULT_BASELINE = 0.02  # when the segment bought nothing (or everything) lately


@dataclass(frozen=True, slots=True)
class Finding:
    """One refusal or warning, with the number behind it."""

    code: str
    severity: str  # refusal | warning
    message: str
    message_ja: str
    number: float | int | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The checks of one campaign: refusals stop approval; warnings are for the marketer."""

    checked_at: datetime
    members: int
    reachable: int
    treatment: int
    control: int
    findings: list[Finding]

    @property
    def refused(self) -> bool:
        """Whether any check refuses the send."""
        return any(f.severity == "refusal" for f in self.findings)

    def document(self) -> dict[str, Any]:
        """As stored in ``campaigns.checks`` (JSON)."""
        body = asdict(self)
        body["checked_at"] = self.checked_at.isoformat()
        body["refused"] = self.refused
        return body


def _sample(scope: Scope, condition: Condition, ctx: CompileContext) -> list[uuid.UUID]:
    query = compile_segment(condition, ctx).order_by(customers.c.customer_id).limit(SAMPLE_SIZE)
    return list(scope.conn.execute(query).scalars())


def _render_failures(scope: Scope, spec: CampaignSpec, sample: list[uuid.UUID]) -> list[Finding]:
    settings = load_delivery_settings(scope.conn, scope.workspace_id)
    contexts = build_contexts(scope, sample, settings=settings)
    links = sample_links(settings.public_url, mailto=settings.sender.unsubscribe_mailto)
    renderer = open_renderer(scope, {v.template for v in spec.variants})
    found = []
    for variant in spec.variants:
        for customer_id in sample:
            context = message_context(contexts.get(customer_id, {}), links=links)
            try:
                renderer.render(variant.template, context)
            except KizunaError as exc:
                found.append(Finding(
                    "render_failed", "refusal",
                    f"variant {variant.key}: template {variant.template!r} fails for customer "
                    f"{customer_id}: {exc}",
                    f"バリエーション {variant.key}: テンプレート {variant.template!r} が顧客 "
                    f"{customer_id} で表示できません: {exc}",
                    1, {"variant": variant.key, "template": variant.template,
                        "customer_id": str(customer_id), "error": str(exc)},
                ))  # fmt: skip
                break  # one failing customer per variant says enough
    return found


def _baseline(scope: Scope, condition: Condition, ctx: CompileContext, members: int,
              days: int) -> float:  # fmt: skip
    """The members' share with a placed order in the last ``days`` (the rate without a send)."""
    if members == 0:
        return DEFAULT_BASELINE
    ids = compile_segment(condition, ctx).subquery("m")
    o = orders.c
    bought = sa.select(sa.func.count(sa.distinct(o.customer_id))).where(
        o.workspace_id == scope.workspace_id, o.status == "placed",
        o.ordered_at >= scope.now - timedelta(days=days), o.customer_id.in_(sa.select(ids)),
    )  # fmt: skip
    rate = int(scope.conn.execute(bought).scalar_one()) / members
    return rate if 0 < rate < 1 else DEFAULT_BASELINE


def _control(spec: CampaignSpec, treatment: int, control: int, baseline: float) -> list[Finding]:
    if spec.control_percent == 0:
        return [Finding("no_control", "warning",
                        "control group 0 %: the campaign's uplift cannot be measured",
                        "コントロール群が 0 %: 効果(アップリフト)を測定できません", 0)]  # fmt: skip
    mde = minimum_detectable_effect(treatment, control, baseline, ALPHA, POWER)
    if mde.relative is not None and mde.relative <= HOPED_LIFT:
        return []
    needed = required_size(baseline, HOPED_LIFT, control_share=spec.control_percent / 100,
                           alpha=ALPHA, power=POWER)  # fmt: skip
    if mde.absolute is None or mde.relative is None:
        shown_en, shown_ja = "no lift up to 100 % is detectable", "100 % までの改善も検出できません"
    else:
        pts, rel = mde.absolute * 100, mde.relative * 100
        shown_en = f"the smallest detectable lift is +{pts:.2f} pt (+{rel:.0f} %)"
        shown_ja = f"検出可能な最小の改善は +{pts:.2f} pt (+{rel:.0f} %)"
    details = {"treatment": treatment, "control": control, "baseline": baseline,
               "confidence": 1 - ALPHA, "power": POWER, "mde_absolute": mde.absolute,
               "mde_relative": mde.relative, "members_needed": needed.total,
               "hoped_lift": HOPED_LIFT}  # fmt: skip
    return [Finding(
        "control_too_small", "warning",
        f"control group too small to measure: with {treatment:,} treated, {control:,} held out "
        f"and a baseline conversion rate of {baseline:.2%}, {shown_en} at 95 % confidence / "
        f"80 % power; +{HOPED_LIFT:.0%} needs {needed.total:,} members",
        f"コントロール群が小さすぎます: 配信群 {treatment:,} 人・コントロール群 {control:,} 人・"
        f"想定CVR {baseline:.2%} では{shown_ja}(信頼度95 %・検出力80 %)。+{HOPED_LIFT:.0%} の"
        f"検出には {needed.total:,} 人が必要です",
        mde.relative if mde.relative is not None else math.inf, details,
    )]  # fmt: skip


def _schedule(scope: Scope, spec: CampaignSpec) -> list[Finding]:
    zone = get_workspace(scope.conn, scope.workspace_id).time_zone
    late = scope.now - send_instant(spec, scope.now, zone)
    if late <= timedelta(0):
        return []
    hours = late.total_seconds() / 3600
    return [Finding("schedule_past", "warning",
                    f"the scheduled time passed {hours:,.1f} h ago: approved, it sends at once",
                    f"配信予定時刻を {hours:,.1f} 時間過ぎています: 承認するとすぐに配信されます",
                    round(hours, 1))]  # fmt: skip


def check_campaign_spec(scope: Scope, spec: CampaignSpec) -> CheckReport:
    """Run every pre-send check of ``spec`` on the segment as it is now."""
    condition = get_segment(scope, spec.segment).condition
    ctx = compile_context(scope)
    counts = count_condition(scope.conn, condition, ctx)
    members, reachable = counts.customers, counts.reachable(spec.channel)
    control = math.floor(members * spec.control_percent / 100)
    treatment = members - control
    findings = _schedule(scope, spec)
    if load_provider_state(scope, spec.channel) is None:
        findings.append(Finding("no_provider", "refusal",
                                f"no provider is configured for {spec.channel}: every message "
                                f"would fail (kizuna delivery provider {spec.channel} …)",
                                f"{spec.channel} の配信プロバイダが未設定です: このままでは"
                                "全件が配信失敗になります", 0))  # fmt: skip
    if members == 0:
        findings.append(Finding("segment_empty", "refusal",
                                f"segment {spec.segment!r} has no members now (0 customers)",
                                f"セグメント {spec.segment!r} の対象者が 0 人です", 0))  # fmt: skip
    else:
        if reachable == 0:
            findings.append(Finding(
                "no_reachable", "refusal",
                f"no member can be reached on {spec.channel}: 0 reachable of {members:,} "
                "(opted in, with an unsuppressed address)",
                f"{spec.channel} で届けられる対象者が 0 人です(対象者 {members:,} 人)", 0,
                {"members": members, "channel": spec.channel},
            ))  # fmt: skip
        findings += _render_failures(scope, spec, _sample(scope, condition, ctx))
        baseline = _baseline(scope, condition, ctx, members, spec.window_days)
        findings += _control(spec, treatment, control, baseline)
    return CheckReport(scope.now, members, reachable, treatment, control, findings)
