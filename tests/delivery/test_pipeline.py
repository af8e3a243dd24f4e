"""The send pipeline end to end: outbox → gate → render → SMTP (aiosmtpd) → message log.

Every rule is checked at send time, so a change between enqueue and send (an
opt-out, a suppression, a cap reached) always wins.
"""

from __future__ import annotations

import email
import email.policy
import socket
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from kizuna.content.library import save_template
from kizuna.content.spec import parse_template_spec
from kizuna.delivery.pipeline import Pipeline
from kizuna.delivery.settings import FrequencyCap, QuietHours, save_delivery_settings
from kizuna.delivery.test_sends import queue_test_send
from kizuna.domain.records import (
    Channel,
    ConsentRecord,
    CustomerTraits,
    Identifiers,
    SuppressionReason,
    SuppressionRecord,
)
from kizuna.errors import NotFound
from kizuna.store.consent import record_consents, suppress
from kizuna.store.customers import apply_traits
from kizuna.store.identity import IdentityResolver
from kizuna.store.messages import SendIntent, enqueue, get_message
from kizuna.store.preferences import set_preferences
from kizuna.store.providers import configure_provider
from kizuna.store.seed_addresses import add_seed_address
from kizuna.store.tables import events, workspaces
from tests.delivery.smtp_server import SmtpServer
from tests.delivery.test_tracking import SETTINGS, make_customer

HTML = (
    '<html><body><p>{{ last_name | default("お客様") }}様、春のセールです。</p>'
    '<a href="https://shop.example.jp/sale?n={{ n | default(1) }}">見る</a></body></html>'
)
TEXT = '{{ last_name | default("お客様") }}様、春のセールです。{{ 10 // n | default(1) }}'


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def shop(scope_factory, clock, smtp):
    """A workspace with SMTP delivery, a marketing template and two opted-in customers."""
    hanako = make_customer(scope_factory, clock, "hanako@example.jp")
    taro = make_customer(scope_factory, clock, "taro@example.jp")
    with scope_factory() as scope:
        configure_provider(scope, "email", "smtp", {
            "host": "127.0.0.1", "port": smtp.port, "from_address": "news@shop.example.jp",
            "from_name": "絆コスメ", "message_id_domain": "shop.example.jp", "starttls": False,
        })  # fmt: skip
        spec = {"key": "spring", "channel": "email", "name": "春のセール",
                "subject": "{{ last_name | default('お客様') }}様へ 春のセール",
                "body": TEXT, "html": HTML, "params": {"n": 1}}  # fmt: skip
        save_template(scope, parse_template_spec(spec), "test")
    return {"hanako": hanako, "taro": taro}


def _queue(scope_factory, customer_id, key, **kw) -> uuid.UUID:
    with scope_factory() as scope:
        intent = SendIntent(customer_id, kw.pop("channel", "email"), kw.pop("template", "spring"),
                            key, **kw)  # fmt: skip
        return enqueue(scope, [intent])[0]


def _message(scope_factory, message_id):
    with scope_factory() as scope:
        return get_message(scope, message_id)


def _drain(db) -> dict[str, int]:
    pipeline = Pipeline(db)
    try:
        return dict(pipeline.drain_all().outcomes)
    finally:
        pipeline.close()


def _received(smtp, address):
    return [
        email.message_from_bytes(m.data, policy=email.policy.default)
        for m in smtp.messages
        if address in m.rcpt_tos
    ]


def test_a_marketing_email_goes_out_personalized_with_footer_tracking_and_unsubscribe(
    db, scope_factory, smtp, shop
):
    message_id = _queue(scope_factory, shop["hanako"], "spring:1")
    outcome = _drain(db)
    assert outcome == {"sent": 1}, _message(scope_factory, message_id).reason
    (received,) = _received(smtp, "hanako@example.jp")
    assert str(received["Subject"]) == "佐藤様へ 春のセール"
    one_click = received["List-Unsubscribe"].strip()
    assert one_click.startswith(f"<{SETTINGS.public_url}/u/")
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = received.get_body(("plain",)).get_content()
    assert "佐藤様、春のセールです。" in text
    assert "東京都渋谷区1-2-3" in text  # the legal footer: sender's postal address
    html = received.get_body(("html",)).get_content()
    assert "https://shop.example.jp/sale" not in html  # rewritten through the click redirect
    assert f"{SETTINGS.public_url}/t/c/" in html and "/t/o/" in html
    logged = _message(scope_factory, message_id)
    assert logged.status == "sent" and logged.provider == "smtp"
    assert logged.provider_message_id == received["Message-ID"]
    with db.read() as conn:
        sent = events.c.customer_id == shop["hanako"], events.c.name == "Message Sent"
        names = conn.execute(sa.select(events.c.name).where(*sent)).all()
    assert len(names) == 1


def test_the_same_idempotency_key_is_sent_once(db, scope_factory, smtp, shop):
    first = _queue(scope_factory, shop["hanako"], "order:A-1", purpose="transactional")
    again = _queue(scope_factory, shop["hanako"], "order:A-1", purpose="transactional")
    assert first == again
    _drain(db)
    assert _drain(db) == {}
    assert len(_received(smtp, "hanako@example.jp")) == 1


def test_an_opt_out_between_enqueue_and_send_wins(db, scope_factory, clock, smtp, shop):
    message_id = _queue(scope_factory, shop["hanako"], "spring:1")
    with scope_factory() as scope:
        record_consents(scope, IdentityResolver(scope), [ConsentRecord(
            customer={"email": "hanako@example.jp"}, channel="email", status="opted_out",
            occurred_at=clock.now(), method="preference centre")])  # fmt: skip
    assert _drain(db) == {"skipped": 1}
    assert _message(scope_factory, message_id).reason == "opted_out"
    assert smtp.messages == []


def test_suppressed_addresses_get_nothing_not_even_transactional(db, scope_factory, smtp, shop):
    marketing = _queue(scope_factory, shop["hanako"], "spring:1")
    receipt = _queue(scope_factory, shop["hanako"], "order:1", purpose="transactional")
    with scope_factory() as scope:
        suppress(scope, [SuppressionRecord(channel=Channel.EMAIL, address="Hanako@Example.jp",
                                           reason=SuppressionReason.HARD_BOUNCE)])  # fmt: skip
    _queue(scope_factory, shop["taro"], "spring:2")
    assert _drain(db) == {"skipped": 2, "sent": 1}
    for message_id in (marketing, receipt):
        assert _message(scope_factory, message_id).reason == "suppressed:hard_bounce"
    assert [m.rcpt_tos for m in smtp.messages] == [("taro@example.jp",)]


def test_a_customer_without_consent_gets_transactional_but_not_marketing(
    db, scope_factory, clock, smtp, shop
):
    with scope_factory() as scope:
        resolver = IdentityResolver(scope)
        jiro = resolver.resolve(Identifiers(email="jiro@example.jp"), clock.now())
        resolver.flush()
        apply_traits(scope, jiro, CustomerTraits(email="jiro@example.jp"))
    marketing = _queue(scope_factory, jiro, "spring:1")
    _queue(scope_factory, jiro, "order:1", purpose="transactional")
    assert _drain(db) == {"skipped": 1, "sent": 1}
    assert _message(scope_factory, marketing).reason == "no_consent"
    (receipt,) = _received(smtp, "jiro@example.jp")
    assert receipt["List-Unsubscribe"] is None  # transactional: no footer, no unsubscribe header
    assert "東京都渋谷区" not in receipt.get_body(("plain",)).get_content()


def test_frequency_cap_counts_across_batches_and_sources(db, scope_factory, clock, smtp, shop):
    with scope_factory() as scope:
        caps = [FrequencyCap(channel="email", max_messages=2, days=7)]
        save_delivery_settings(scope.conn, scope.workspace_id,
                               SETTINGS.model_copy(update={"frequency_caps": caps}))  # fmt: skip
    _queue(scope_factory, shop["hanako"], "campaign:1", source_kind="campaign")
    assert _drain(db) == {"sent": 1}
    clock.advance(timedelta(days=1))
    second = _queue(scope_factory, shop["hanako"], "scenario:1", source_kind="scenario")
    third = _queue(scope_factory, shop["hanako"], "scenario:2", source_kind="scenario")
    receipt = _queue(scope_factory, shop["hanako"], "order:9", purpose="transactional")
    assert _drain(db) == {"sent": 2, "skipped": 1}
    assert _message(scope_factory, second).status == "sent"
    assert _message(scope_factory, third).reason == "frequency_cap:2/7d:email"
    assert _message(scope_factory, receipt).status == "sent"  # caps are for marketing only
    clock.advance(timedelta(days=7))  # the first two leave the window one after the other
    later = _queue(scope_factory, shop["hanako"], "campaign:2", source_kind="campaign")
    _drain(db)
    assert _message(scope_factory, later).status == "sent"


def test_quiet_hours_defer_marketing_to_the_local_morning(db, scope_factory, clock, smtp, shop):
    with scope_factory() as scope:
        quiet = QuietHours(start=time(21), end=time(9))
        save_delivery_settings(scope.conn, scope.workspace_id,
                               SETTINGS.model_copy(update={"quiet_hours": quiet}))  # fmt: skip
    clock.advance(datetime(2026, 11, 23, 13, 30, tzinfo=UTC) - clock.now())  # 22:30 in Tokyo
    marketing = _queue(scope_factory, shop["hanako"], "spring:1")
    _queue(scope_factory, shop["hanako"], "order:1", purpose="transactional")
    assert _drain(db) == {"deferred": 1, "sent": 1}
    waiting = _message(scope_factory, marketing)
    assert waiting.status == "queued" and waiting.reason == "quiet_hours"
    assert waiting.not_before == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 09:00 Tokyo
    clock.advance(datetime(2026, 11, 24, 0, 0, 1, tzinfo=UTC) - clock.now())
    assert _drain(db) == {"sent": 1}
    assert _message(scope_factory, marketing).status == "sent"


def test_a_customer_who_left_a_topic_gets_nothing_of_it(db, scope_factory, smtp, shop):
    with scope_factory() as scope:
        set_preferences(scope, shop["hanako"], {"sale": False}, "preference centre")
    sale = _queue(scope_factory, shop["hanako"], "spring:1", topic="sale")
    news = _queue(scope_factory, shop["hanako"], "spring:2", topic="new_items")
    assert _drain(db) == {"skipped": 1, "sent": 1}
    assert _message(scope_factory, sale).reason == "topic_unsubscribed:sale"
    assert _message(scope_factory, news).status == "sent"


def test_a_development_workspace_sends_only_to_seed_addresses(db, scope_factory, smtp, shop):
    with scope_factory() as scope:
        this = workspaces.c.workspace_id == scope.workspace_id
        scope.conn.execute(workspaces.update().where(this).values(environment="development"))
        add_seed_address(scope, "email", "taro@example.jp", "QA")
    blocked = _queue(scope_factory, shop["hanako"], "spring:1")
    _queue(scope_factory, shop["taro"], "spring:2")
    assert _drain(db) == {"skipped": 1, "sent": 1}
    assert _message(scope_factory, blocked).reason == "development_workspace"
    assert [m.rcpt_tos for m in smtp.messages] == [("taro@example.jp",)]


def test_a_test_send_goes_to_the_seed_not_to_the_customer(db, scope_factory, smtp, shop):
    with scope_factory() as scope:
        with pytest.raises(NotFound, match="no seed addresses for email"):
            queue_test_send(scope, "spring", shop["hanako"])
        add_seed_address(scope, "email", "qa@shop.example.jp", "QA")
        add_seed_address(scope, "sms", "090-1234-5678", "QA phone")  # another channel's seed
        assert len(queue_test_send(scope, "spring", shop["hanako"])) == 1
    assert _drain(db) == {"sent": 1}
    (received,) = _received(smtp, "qa@shop.example.jp")
    assert str(received["Subject"]) == "佐藤様へ 春のセール"  # rendered for the sample customer
    assert _received(smtp, "hanako@example.jp") == []


def test_a_template_failing_for_one_customer_fails_only_that_message(db, scope_factory, smtp, shop):
    broken = _queue(scope_factory, shop["hanako"], "spring:1", params={"n": 0})
    _queue(scope_factory, shop["taro"], "spring:2", params={"n": 2})
    assert _drain(db) == {"failed": 1, "sent": 1}
    failed = _message(scope_factory, broken)
    assert failed.reason.startswith("render: ") and "division" in failed.reason
    assert [m.rcpt_tos for m in smtp.messages] == [("taro@example.jp",)]


def test_transient_errors_retry_with_backoff_then_dead_letter(db, scope_factory, clock, smtp, shop):
    smtp.answer("hanako@example.jp", "451 4.3.0 Try again later")
    message_id = _queue(scope_factory, shop["hanako"], "spring:1")
    assert _drain(db) == {"retry": 1}
    waiting = _message(scope_factory, message_id)
    assert waiting.status == "queued" and waiting.attempts == 1
    assert "451" in waiting.reason
    assert waiting.not_before >= clock.now() + timedelta(seconds=20)
    for _ in range(SETTINGS.max_attempts - 1):
        clock.advance(timedelta(hours=2))
        _drain(db)
    dead = _message(scope_factory, message_id)
    assert dead.status == "dead" and dead.attempts == SETTINGS.max_attempts


def test_permanent_errors_fail_with_the_servers_answer_verbatim(db, scope_factory, smtp, shop):
    smtp.answer("hanako@example.jp", "550 5.1.1 User unknown")
    message_id = _queue(scope_factory, shop["hanako"], "spring:1")
    assert _drain(db) == {"failed": 1}
    failed = _message(scope_factory, message_id)
    assert "550 5.1.1 User unknown" in failed.reason
    # an unknown user is a dead address: it is suppressed for every later send
    again = _queue(scope_factory, shop["hanako"], "spring:2")
    _drain(db)
    assert _message(scope_factory, again).reason == "suppressed:hard_bounce"


def test_a_channel_without_provider_fails_clearly(db, scope_factory, shop):
    message_id = _queue(scope_factory, shop["hanako"], "order:1", channel="sms",
                        template="spring", purpose="transactional")  # fmt: skip
    _drain(db)
    assert _message(scope_factory, message_id).reason == "no_address"  # no phone on file


def test_a_provider_that_keeps_failing_is_paused(db, scope_factory, clock, smtp, shop):
    with scope_factory() as scope:  # a port nobody listens on: every handover fails for now
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        configure_provider(scope, "email", "smtp", {
            "host": "127.0.0.1", "port": closed_port, "from_address": "news@shop.example.jp",
            "starttls": False, "timeout": 2,
        })  # fmt: skip
    for i in range(6):
        _queue(scope_factory, shop["hanako"], f"order:{i}", purpose="transactional")
        clock.advance(timedelta(hours=2))
        _drain(db)
    with scope_factory() as scope:
        from kizuna.store.providers import load_provider_state

        state = load_provider_state(scope, "email")
    assert state.error_streak >= 5 and state.paused_until is not None
    waiting = _queue(scope_factory, shop["hanako"], "order:late", purpose="transactional")
    _drain(db)
    assert _message(scope_factory, waiting).reason == "provider_paused"
