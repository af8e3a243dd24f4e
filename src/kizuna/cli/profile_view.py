"""Rich rendering of a customer profile and timeline, times in the workspace's zone."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from kizuna.store.profiles import TimelineEntry
from kizuna.store.workspaces import Workspace

__all__ = ["render_profile"]

_LABELS = {
    "email": "Email / メール",
    "phone": "Phone / 電話",
    "last_name": "Last name / 姓",
    "first_name": "First name / 名",
    "last_name_kana": "Last name kana / セイ",
    "first_name_kana": "First name kana / メイ",
    "gender": "Gender / 性別",
    "birthday": "Birthday / 生年月日",
    "postal_code": "Postal code / 郵便番号",
    "prefecture": "Prefecture / 都道府県",
    "city": "City / 市区町村",
    "address": "Address / 住所",
    "membership_rank": "Rank / 会員ランク",
    "registered_at": "Registered / 登録日",
}


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def render_profile(
    console: Console, ws: Workspace, view: dict[str, Any], entries: list[TimelineEntry]
) -> None:
    """Print the profile panel, consent table and timeline."""
    zone = ZoneInfo(ws.time_zone)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("Kizuna id", str(view["customer_id"]))
    facts.add_row("Shop id / 顧客ID", view["shop_customer_id"] or "—")
    for name, label in _LABELS.items():
        value = view["traits"].get(name)
        if value is not None:
            facts.add_row(label, _local(value, zone) if isinstance(value, datetime) else str(value))
    facts.add_row("Orders / 購入回数", f"{view['order_count']}  (¥{view['revenue']:,.0f})")
    facts.add_row(
        "First / last seen",
        f"{_local(view['first_seen_at'], zone)} / {_local(view['last_seen_at'], zone)}",
    )
    for kind, values in view["identities"].items():
        facts.add_row(f"id: {kind}", ", ".join(values))
    if view["attributes"]:
        facts.add_row("Attributes", json.dumps(view["attributes"], ensure_ascii=False))
    title = "Customer" + (" (personal data masked)" if view["masked"] else "")
    console.print(Panel(facts, title=title, subtitle=f"{ws.slug} · {ws.time_zone}"))
    consent = Table("channel", "status", f"changed ({ws.time_zone})", title="Consent / 同意")
    for channel, state in sorted(view["consents"].items()):
        consent.add_row(channel, state["status"], _local(state["changed_at"], zone))
    console.print(consent)
    timeline = Table(f"when ({ws.time_zone})", "kind", "what", "detail", title="Timeline")
    for entry in entries:
        detail = {k: v for k, v in entry.detail.items() if k not in ("message_id",) and v}
        timeline.add_row(
            _local(entry.at, zone),
            entry.kind,
            entry.title,
            json.dumps(detail, ensure_ascii=False, default=str)[:80],
        )
    console.print(timeline)
