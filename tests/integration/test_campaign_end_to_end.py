"""A demo-shop campaign from definition to report: frozen audience, control group, SMTP,
opens, clicks and orders, attribution, and an uplift that matches statsmodels."""

from __future__ import annotations

import random
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
import sqlalchemy as sa
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from kizuna.campaigns.definition import load_campaign_text, parse_campaign
from kizuna.campaigns.flow import approve_campaign, submit_campaign
from kizuna.campaigns.send import send_due_campaigns
from kizuna.content.library import save_template
from kizuna.content.spec import load_template_text
from kizuna.delivery.pipeline import Pipeline
from kizuna.delivery.settings import save_delivery_settings
from kizuna.demo import DemoOptions, generate_demo_data
from kizuna.documents import read_text
from kizuna.domain.records import Identifiers, OrderRecord
from kizuna.measurement.attribution import attribute
from kizuna.measurement.plots import plot_report
from kizuna.measurement.report import campaign_report
from kizuna.segments.definition import load_spec
from kizuna.segments.report import workspace_scope
from kizuna.store.campaigns import get_campaign, save_campaign
from kizuna.store.commerce import upsert_orders
from kizuna.store.identity import IdentityResolver
from kizuna.store.messages import MessageEvent, record_message_events
from kizuna.store.operation_log import Actor
from kizuna.store.providers import configure_provider
from kizuna.store.segments import save_segment
from kizuna.store.tables import customers, messages, orders
from kizuna.store.tables_campaigns import attributions, campaign_recipients
from tests.delivery.smtp_server import SmtpServer
from tests.delivery.test_tracking import SETTINGS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "campaigns"
ACTOR = Actor("user:lead", "pytest")


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


def _prepare(db, smtp) -> str:
    """The demo shop, the example segment and templates, SMTP delivery, the campaign saved."""
    generate_demo_data(db, DemoOptions(customers=3000, seed=5, workspace="demo", chunk_size=3000))
    with workspace_scope(db, "demo", write=True) as scope:
        save_delivery_settings(scope.conn, scope.workspace_id, SETTINGS)
        segment = read_text(EXAMPLES / "segments" / "recent-email-buyers.yaml")
        save_segment(scope, load_spec(segment), "test")
        for path in sorted((EXAMPLES / "templates").glob("spring-sale-*.yaml")):
            save_template(scope, load_template_text(read_text(path)), "test")
        configure_provider(scope, "email", "smtp", {
            "host": "127.0.0.1", "port": smtp.port, "from_address": "news@shop.example.jp",
            "from_name": "絆コスメ", "message_id_domain": "shop.example.jp", "starttls": False,
        })  # fmt: skip
        example = load_campaign_text(read_text(EXAMPLES / "spring-sale.yaml"))
        spec = parse_campaign({**example.model_dump(mode="json", exclude_none=True),
                               "control_percent": 30, "schedule": {"kind": "now"}})  # fmt: skip
        save_campaign(scope, spec, "test")
    with workspace_scope(db, "demo", write=True) as scope:
        submit_campaign(scope, spec.key, ACTOR)
    with workspace_scope(db, "demo", write=True) as scope:
        approve_campaign(scope, spec.key, ACTOR)
    return spec.key


def _rows(db, query) -> list:
    with db.read() as conn:
        return conn.execute(query).all()


def _simulate(db, clock, key: str, sent: list) -> None:
    """People open a third of the mails and click some; orders follow, more after a click."""
    rng = random.Random(11)
    clicked: set = set()
    with workspace_scope(db, "demo", write=True) as scope:
        happened = []
        for i, m in enumerate(sent):
            if i % 3 == 0:
                happened.append(MessageEvent(m.message_id, "Message Opened",
                                             clock.now(), {"machine": False}))  # fmt: skip
            if i % 3 == 1:  # a mail client's proxy fetching images: not a person
                happened.append(MessageEvent(m.message_id, "Message Opened",
                                             clock.now(), {"machine": True}))  # fmt: skip
            if i % 6 == 0:
                happened.append(MessageEvent(m.message_id, "Message Clicked", clock.now(),
                                             {"url": "https://shop.example.jp/sale",
                                              "machine": False}))  # fmt: skip
                clicked.add(m.customer_id)
        record_message_events(scope, happened)
    clock.advance(timedelta(hours=5))
    with workspace_scope(db, "demo") as scope:
        campaign_id = get_campaign(scope, key).campaign_id
    r = campaign_recipients.c
    audience = _rows(db, sa.select(r.customer_id, r.held_out, customers.c.shop_customer_id)
                     .join(customers, customers.c.customer_id == r.customer_id)
                     .where(r.campaign_id == campaign_id))  # fmt: skip
    placed = []
    for n, (customer_id, _held_out, shop_id) in enumerate(audience):
        chance = 0.45 if customer_id in clicked else 0.12
        if rng.random() < chance:
            placed.append(OrderRecord(
                order_id=f"E2E-{n}", customer=Identifiers(user_id=shop_id),
                ordered_at=clock.now(), total=4000 + 500 * rng.randrange(6)))  # fmt: skip
        if n % 50 == 0:  # an order long after the window: nobody's conversion
            placed.append(OrderRecord(
                order_id=f"E2E-late-{n}", customer=Identifiers(user_id=shop_id),
                ordered_at=clock.now() + timedelta(days=20), total=9000))  # fmt: skip
    with workspace_scope(db, "demo", write=True) as scope:
        upsert_orders(scope, IdentityResolver(scope), placed)


def test_a_demo_shop_campaign_runs_end_to_end(db, clock, smtp, tmp_path):
    key = _prepare(db, smtp)
    assert send_due_campaigns(db) == 1
    with workspace_scope(db, "demo") as scope:
        frozen = get_campaign(scope, key)
    assert frozen.status == "sent" and frozen.targeted > 300
    assert 0.2 < frozen.held_out / frozen.targeted < 0.4  # 30 % drawn, by hash
    r, m = campaign_recipients.c, messages.c
    held = {row.customer_id for row in _rows(db, sa.select(r.customer_id).where(
        r.campaign_id == frozen.campaign_id, r.held_out))}  # fmt: skip
    pipeline = Pipeline(db)
    try:
        outcomes = pipeline.drain_all().outcomes
    finally:
        pipeline.close()
    sent = _rows(db, sa.select(m.message_id, m.customer_id, m.variant, m.status)
                 .where(m.source_kind == "campaign", m.source_id == str(frozen.campaign_id))
                 .order_by(m.message_id))  # fmt: skip
    # Every treated member got exactly one message, through the real SMTP server; none held out.
    assert len(sent) == frozen.targeted - frozen.held_out == outcomes["sent"] == smtp.accepted
    assert not held & {s.customer_id for s in sent}
    assert {s.variant for s in sent} == {"A", "B"}
    parsed = [message_from_bytes(msg.data, policy=default) for msg in smtp.messages]
    assert len({str(p["Subject"]) for p in parsed}) >= 2  # both variants' subject lines
    assert all(p["DKIM-Signature"] is None and p["List-Unsubscribe"] for p in parsed)

    _simulate(db, clock, key, sent)
    first = attribute(db)
    again = attribute(db)  # a second pass (or a second worker) credits nothing twice
    assert (again.credited, again.controls) == (0, 0)

    # Attribution: each order credited to one message at most, revenue adds up.
    a = attributions.c
    credited = _rows(db, sa.select(a.conversion_key, a.revenue, a.message_id, a.variant)
                     .where(a.kind == "message"))  # fmt: skip
    keys = [c.conversion_key for c in credited]
    assert keys and len(keys) == len(set(keys)) == first.credited
    assert not any("late" in k for k in keys)
    totals = dict(_rows(db, sa.select(orders.c.order_id, orders.c.total)))
    assert sum(c.revenue for c in credited) == pytest.approx(
        sum(totals[k.removeprefix("order:")] for k in keys)
    )
    controls = _rows(db, sa.select(a.customer_id).where(a.kind == "control"))
    assert controls and {c.customer_id for c in controls} <= held

    # The report: converters per group counted straight from the orders table.
    window_end = frozen.frozen_at + timedelta(days=7)
    buyers = {row.customer_id for row in _rows(db, sa.select(orders.c.customer_id).where(
        orders.c.ordered_at >= frozen.frozen_at, orders.c.ordered_at <= window_end,
        orders.c.status == "placed"))}  # fmt: skip
    audience = {
        row.customer_id: row.held_out
        for row in _rows(
            db, sa.select(r.customer_id, r.held_out).where(r.campaign_id == frozen.campaign_id)
        )
    }
    n_t = sum(1 for h in audience.values() if not h)
    n_c = len(audience) - n_t
    c_t = sum(1 for cid, h in audience.items() if not h and cid in buyers)
    c_c = sum(1 for cid, h in audience.items() if h and cid in buyers)
    with workspace_scope(db, "demo") as scope:
        report = campaign_report(scope, key)
    uplift = report.uplift
    assert (uplift.customers, uplift.reference_customers) == (n_t, n_c)
    rate = uplift.conversion
    assert rate is not None
    assert rate.rate == pytest.approx(c_t / n_t) and rate.reference_rate == pytest.approx(c_c / n_c)
    _, p_value = proportions_ztest([c_t, c_c], [n_t, n_c])
    low, high = confint_proportions_2indep(c_t, n_t, c_c, n_c, method="newcomb")
    assert rate.p_value == pytest.approx(p_value, rel=1e-6)
    assert (rate.absolute_low, rate.absolute_high) == (pytest.approx(low), pytest.approx(high))
    assert report.total("sent") == len(sent)
    assert report.total("unique_opens") == len([s for i, s in enumerate(sent) if i % 3 == 0])
    assert report.total("conversions") == len(keys)

    # The plots render as files a marketer opens.
    for which in ("funnel", "uplift", "daily"):
        figure = plot_report(report, which)
        path = tmp_path / f"{which}.png"
        figure.savefig(path)
        assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 5_000
