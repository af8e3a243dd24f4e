"""Campaign report speed: the full report over a campaign of N recipients vs one plain scan.

Usage: .venv/bin/python bench/campaign_report.py [--recipients N] [--database-url URL]

A workspace holds one sent campaign of N recipients (default 1,000,000 on
PostgreSQL, 100,000 on SQLite), built by bulk SQL in the store (``generate_series``
on PostgreSQL, a recursive CTE on SQLite) — not timed: 10 % held out, variants A and
B, one message per treated recipient spread over three days (98 % delivered, 28 %
opened, 3 % clicked), conversions and revenue per recipient (4.1 % of the treated,
3.1 % of the held out), attributions for two thirds of the treated conversions,
and RFM segments for a quarter of the customers. Cached: a rerun with the same size starts
measuring at once.

Timed (best of ``--repeat``): ``campaign_report`` — totals, by variant, day,
channel and RFM segment, group outcomes, uplift and variant statistics, workspace
medians and factors — and its JSON form, as ``GET …/reports/campaigns/{key}``
answers it. The anchor, measured in the same run: a single plain
``SELECT count(*), sum(revenue) FROM campaign_recipients WHERE campaign`` — the
floor of any report that reads the audience once. Aim: under 2 s on PostgreSQL.

    .venv/bin/python bench/campaign_report.py --database-url \\
        postgresql+psycopg://kizuna:kizuna@127.0.0.1:54329/kizuna_bench3
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kizuna.bootstrap import open_database
from kizuna.clock import FixedClock
from kizuna.config import load_settings
from kizuna.errors import NotFound
from kizuna.measurement.report import campaign_report
from kizuna.store.database import Database
from kizuna.store.scope import Scope
from kizuna.store.tables_campaigns import campaigns
from kizuna.store.workspaces import create_workspace, get_workspace

NOW = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)
SENT = datetime(2026, 3, 25, 1, 0, tzinfo=UTC)
KEY = "bench-sale"
AIM_SECONDS = 2.0
SPEC = {"key": KEY, "name": "ベンチセール", "segment": "all", "channel": "email",
        "purpose": "marketing", "control_percent": 10,
        "window_days": 7, "variants": [{"key": "A", "template": "a", "weight": 50},
                                       {"key": "B", "template": "b", "weight": 50}]}  # fmt: skip
# Statements over i = 1..N. {id:TAG} is a UUID made of TAG and i, {day} a time 0-2 days
# after :sent, {ws}/{campaign} the bound ids; "convert" draws from i like a hash would.
_CONVERTS = "((i % 100003) * 7919) % 97 < CASE WHEN i % 10 = 0 THEN 3 ELSE 4 END"
_RECIPIENTS = f"""
INSERT INTO campaign_recipients (workspace_id, campaign_id, customer_id, held_out, variant,
    message_id, send_at, converted_at, conversions, revenue)
SELECT {{ws}}, {{campaign}}, {{id:1}}, i % 10 = 0, CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END,
    CASE WHEN i % 10 = 0 THEN NULL ELSE {{id:2}} END, :sent,
    CASE WHEN {_CONVERTS} THEN {{day}} END, CASE WHEN {_CONVERTS} THEN 1 ELSE 0 END,
    CASE WHEN {_CONVERTS} THEN 3000 + (i % 50) * 100 ELSE 0 END
FROM {{series}}"""
_MESSAGES = """
INSERT INTO messages (workspace_id, message_id, customer_id, idempotency_key, channel, purpose,
    template_key, params, source_kind, source_id, variant, status, attempts, not_before,
    created_at, sent_at, delivered_at, opened_at, clicked_at, updated_at)
SELECT {ws}, {id:2}, {id:1}, 'campaign:' || {campaign_text} || ':' || i, 'email', 'marketing',
    CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END, '{{}}', 'campaign', {campaign_text},
    CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END,
    CASE WHEN i % 47 = 1 THEN 'bounced' ELSE 'delivered' END, 1, {day}, {day}, {day},
    CASE WHEN i % 47 = 1 THEN NULL ELSE {day} END,
    CASE WHEN i % 7 < 2 AND i % 47 <> 1 THEN {day} END,
    CASE WHEN i % 35 = 0 AND i % 47 <> 1 THEN {day} END, {day}
FROM {series} WHERE i % 10 <> 0"""
_ATTRIBUTIONS = f"""
INSERT INTO attributions (workspace_id, attribution_id, conversion_key, customer_id, kind,
    source_kind, source_id, variant, channel, message_id, touch, revenue, converted_at,
    attributed_at)
SELECT {{ws}}, {{id:3}}, 'order:' || i, {{id:1}}, 'message', 'campaign', {{campaign_text}},
    CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END, 'email', {{id:2}}, 'delivery',
    3000 + (i % 50) * 100, {{day}}, :now
FROM {{series}} WHERE i % 10 <> 0 AND {_CONVERTS} AND i % 3 > 0"""
_METRICS = """
INSERT INTO customer_metrics (workspace_id, customer_id, as_of, frequency, monetary,
    rfm_segment, computed_at)
SELECT {ws}, {id:1}, :now, 1 + i % 5, 1000 * (i % 9),
    CASE i % 16 WHEN 0 THEN 'champions' WHEN 4 THEN 'loyal' WHEN 8 THEN 'at_risk'
    ELSE 'new' END, :now
FROM {series} WHERE i % 4 = 0"""


def _dialect_parts(dialect: str, ws: uuid.UUID, campaign: uuid.UUID) -> dict[str, str]:
    if dialect == "postgresql":
        return {"series": "generate_series(1, :n) AS g(i)", "ws": f"'{ws}'::uuid",
                "campaign": f"'{campaign}'::uuid", "campaign_text": f"'{campaign}'",
                "day": "(:sent + (i % 3) * interval '1 day' + (i % 600) * interval '1 second')",
                "id": "lpad(to_hex({tag}::bigint * 100000000 + i), 32, '0')::uuid"}  # fmt: skip
    return {"series": "g", "ws": f"'{ws.hex}'", "campaign": f"'{campaign.hex}'",
            "campaign_text": f"'{campaign}'",
            "day": "datetime(:sent, '+' || (i % 3) || ' days', '+' || (i % 600) || ' seconds')",
            "id": "printf('%032x', {tag} * 100000000 + i)"}  # fmt: skip


def _render(template: str, parts: dict[str, str]) -> str:
    text = template
    for tag in (1, 2, 3):
        text = text.replace(f"{{id:{tag}}}", parts["id"].format(tag=tag))
    text = text.replace("{{}}", "{}")
    for name in ("series", "ws", "campaign_text", "campaign", "day"):
        text = text.replace(f"{{{name}}}", parts[name])
    return text


def _fill(db: Database, ws: uuid.UUID, n: int) -> None:
    campaign = uuid.uuid4()
    with db.write() as conn:
        conn.execute(campaigns.insert().values(
            workspace_id=ws, campaign_id=campaign, key=KEY, name="ベンチセール", status="sent",
            spec=SPEC, checks={}, created_by="bench", created_at=NOW, updated_at=NOW,
            frozen_at=SENT, send_at=SENT, targeted=n, held_out=n // 10))  # fmt: skip
        parts = _dialect_parts(conn.dialect.name, ws, campaign)
        prefix = (
            ""
            if conn.dialect.name == "postgresql"
            else ("WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :n) ")
        )
        naive = conn.dialect.name != "postgresql"
        params = {"n": n, "now": _bound(NOW, naive), "sent": _bound(SENT, naive)}
        for template in (_RECIPIENTS, _MESSAGES, _ATTRIBUTIONS, _METRICS):
            sql = _render(template, parts)
            if prefix:  # SQLite wants the CTE after INSERT INTO … (…)
                head, select = sql.split("SELECT", 1)
                sql = f"{head}{prefix}SELECT{select}"
            conn.execute(sa.text(sql), params)
        if conn.dialect.name == "postgresql":
            for table in ("campaign_recipients", "messages", "attributions", "customer_metrics"):
                conn.execute(sa.text(f"ANALYZE {table}"))


def _bound(moment: datetime, naive: bool) -> object:
    return moment.replace(tzinfo=None).isoformat(sep=" ") if naive else moment


def _workspace(db: Database, n: int) -> uuid.UUID:
    slug = f"bench-campaign-report-v2-{n}"
    with db.write() as conn:
        try:
            ws = get_workspace(conn, slug).workspace_id
        except NotFound:
            ws = create_workspace(conn, slug, name="Campaign report bench", now=NOW).workspace_id
        done = conn.execute(sa.select(campaigns.c.targeted).where(
            campaigns.c.workspace_id == ws, campaigns.c.key == KEY)).scalar()  # fmt: skip
    if done != n:
        start = time.perf_counter()
        _fill(db, ws, n)
        print(f"built {n:,} recipients in {time.perf_counter() - start:.1f} s (not timed)")
    return ws


def _best(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Build (or reuse) the campaign, then time the report and the anchor scan."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("KIZUNA_BENCH_DATABASE_URL"))
    parser.add_argument("--recipients", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.gettempdir()) / "kizuna-bench-campaign-report"
    env = {"KIZUNA_HOME": str(home)}
    if args.database_url:
        env["KIZUNA_DATABASE_URL"] = args.database_url
    db = open_database(load_settings(env), clock=FixedClock(NOW))
    n = args.recipients or (1_000_000 if db.dialect == "postgresql" else 100_000)
    ws = _workspace(db, n)

    def report() -> dict[str, Any]:
        with db.read() as conn:
            return campaign_report(Scope(conn, db.cipher, ws, NOW), KEY).as_dict()

    def anchor() -> object:
        with db.read() as conn:
            campaign_id = conn.execute(sa.select(campaigns.c.campaign_id).where(
                campaigns.c.workspace_id == ws, campaigns.c.key == KEY)).scalar_one()  # fmt: skip
            return conn.execute(sa.text(
                "SELECT count(*), sum(revenue) FROM campaign_recipients "
                "WHERE workspace_id = :ws AND campaign_id = :c"),
                {"ws": ws if db.dialect == "postgresql" else ws.hex,
                 "c": campaign_id if db.dialect == "postgresql" else campaign_id.hex},
            ).one()  # fmt: skip

    body = report()
    assert body["totals"]["targeted"] == n, body["totals"]
    floor = _best(args.repeat, anchor)
    seconds = _best(args.repeat, report)
    print(f"campaign report, {n:,} recipients on {db.dialect}: {seconds:.3f} s "
          f"(best of {args.repeat}; aim < {AIM_SECONDS:.0f} s)")  # fmt: skip
    print(f"anchor, one plain scan of the audience: {floor:.3f} s; ratio {seconds / floor:.1f}x")
    db.dispose()


if __name__ == "__main__":
    main()
