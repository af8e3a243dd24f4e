"""The ready-made campaigns in examples/campaigns/ check, save, get approved and send (demo)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from kizuna.campaigns.definition import load_campaign_text
from kizuna.campaigns.flow import approve_campaign, check_campaign, submit_campaign
from kizuna.campaigns.send import send_due_campaigns
from kizuna.content.library import save_template
from kizuna.content.spec import load_template_text
from kizuna.demo import DemoOptions, generate_demo_data
from kizuna.documents import read_text
from kizuna.segments.definition import load_spec
from kizuna.segments.report import workspace_scope
from kizuna.store.campaigns import get_campaign, save_campaign
from kizuna.store.operation_log import Actor
from kizuna.store.providers import configure_provider
from kizuna.store.segments import save_segment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CAMPAIGNS = sorted((EXAMPLES / "campaigns").glob("*.yaml"))
ACTOR = Actor("test", "pytest")


def test_every_example_campaign_runs_on_the_demo_shop(db, clock):
    generate_demo_data(db, DemoOptions(customers=300, seed=3, workspace="demo", chunk_size=300))
    segments = [*(EXAMPLES / "campaigns" / "segments").glob("*.yaml"),
                EXAMPLES / "segments" / "skincare-lapsing.yaml"]  # fmt: skip
    with workspace_scope(db, "demo", write=True) as scope:
        for path in segments:
            save_segment(scope, load_spec(read_text(path)), "test")
        for path in sorted((EXAMPLES / "campaigns" / "templates").glob("*.yaml")):
            save_template(scope, load_template_text(read_text(path)), "test")
        configure_provider(scope, "email", "null", {})
    assert {p.stem for p in CAMPAIGNS} == {"spring-sale", "skincare-comeback"}
    spring = load_campaign_text(read_text(EXAMPLES / "campaigns" / "spring-sale.yaml"))
    with workspace_scope(db, "demo", write=True) as scope:
        save_campaign(scope, spring, "test")
        report = check_campaign(scope, spring.key)
        assert not report.refused, report.findings
        assert report.members > 0 and report.reachable == report.members
    with workspace_scope(db, "demo", write=True) as scope:
        submit_campaign(scope, spring.key, ACTOR)
        approve_campaign(scope, spring.key, ACTOR)
    assert send_due_campaigns(db) == 0  # due on 2026-04-03 at 10:00 in Tokyo
    clock.advance(timedelta(days=2))
    assert send_due_campaigns(db) == 1
    with workspace_scope(db, "demo") as scope:
        sent = get_campaign(scope, spring.key)
    assert sent.status == "sent" and sent.targeted == report.members
    comeback = load_campaign_text(read_text(EXAMPLES / "campaigns" / "skincare-comeback.yaml"))
    with workspace_scope(db, "demo", write=True) as scope:
        save_campaign(scope, comeback, "test")
        assert all(f.code != "render_failed" for f in check_campaign(scope, comeback.key).findings)
