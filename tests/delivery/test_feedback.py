"""Applying bounces, complaints and provider callbacks: events, suppressions, opt-outs.

Runs on SQLite and PostgreSQL. Messages are made the way the send pipeline leaves
them: enqueued, then marked sent with the provider's id and the address hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import mailbox
import smtplib
import socket
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.api.app import build_app
from kizuna.api.feedback import router as feedback_router
from kizuna.cli.feedback import register
from kizuna.delivery.bounce_mailbox import import_mailbox, start_bounce_server
from kizuna.delivery.bounces import Verdict
from kizuna.delivery.feedback import COMPLAINT_METHOD, apply_raw_report, twilio_feedback
from kizuna.delivery.settings import DeliverySettings, save_delivery_settings
from kizuna.domain.records import (
    Channel,
    ConsentRecord,
    CustomerTraits,
    Identifiers,
)
from kizuna.errors import InvalidInput
from kizuna.store.consent import address_hash, record_consents
from kizuna.store.customers import apply_traits
from kizuna.store.identity import IdentityResolver
from kizuna.store.messages import SendIntent, enqueue
from kizuna.store.providers import configure_provider
from kizuna.store.scope import Scope
from kizuna.store.tables import consent_events, consents, events, messages, suppressions
from kizuna.store.workspaces import create_workspace

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bounces"
HARD_ID = "<9b2f4e7c1a3d5b6e8f0a2c4d6e8f1a3b@mail.shop.example.jp>"
SOFT_ID = "<5e0d3c2b1a09f8e7d6c5b4a392817060@mail.shop.example.jp>"
ARF_ID = "<d4c3b2a1908f7e6d5c4b3a2918070605@mail.shop.example.jp>"
MULTI_ID = "<a1b2c3d4e5f60718293a4b5c6d7e8f90@mail.shop.example.jp>"
TARO, HANAKO, UME = (
    "taro.yamada@example.com",
    "hanako.sato@isp.example.ne.jp",
    ("ume.kobayashi@mailbox.example.com"),
)
AUTH = {"Authorization": "Bearer test-token"}
TWILIO_TOKEN = "twilio-auth-token-for-tests"
CALLBACK = "https://crm.shop.example.jp/api/workspaces/shop/feedback/twilio"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def soft_dsn(message_hex: str) -> bytes:
    """The soft-bounce fixture about another message of ours."""
    return fixture("dsn_soft_mailbox_full.eml").replace(
        b"5e0d3c2b1a09f8e7d6c5b4a392817060", message_hex.encode()
    )


def customer(scope: Scope, user_id: str | None, email: str | None = None, phone: str | None = None):
    """A customer with identities, profile addresses and an email opt-in."""
    resolver = IdentityResolver(scope)
    ids = Identifiers(user_id=user_id, email=email, phone=phone)
    customer_id = resolver.resolve(ids, scope.now)
    resolver.flush()
    apply_traits(scope, customer_id, CustomerTraits(email=email, phone=phone))
    consent = ConsentRecord(
        customer=ids, channel="email", status="opted_in", occurred_at="2026-01-05",
        method="checkout checkbox", wording="お知らせを受け取る", source="https://shop.example.jp",
    )  # fmt: skip
    record_consents(scope, IdentityResolver(scope), [consent])
    return customer_id


def sent(
    scope: Scope,
    customer_id: uuid.UUID,
    address: str,
    provider_message_id: str,
    *,
    channel: str = "email",
    provider: str = "smtp",
) -> uuid.UUID:
    """A message as the pipeline leaves it after the provider accepted it."""
    (message_id,) = enqueue(
        scope, [SendIntent(customer_id, channel, "spring", f"test:{provider_message_id}")]
    )
    scope.conn.execute(
        messages.update()
        .where(messages.c.message_id == message_id)
        .values(
            status="sent", provider=provider, provider_message_id=provider_message_id,
            address_hash=address_hash(scope.cipher, Channel(channel), address),
            sent_at=scope.now, attempts=1,
        )
    )  # fmt: skip
    return message_id


def suppression(scope: Scope, address: str, channel: str = "email"):
    return scope.conn.execute(
        sa.select(suppressions).where(
            suppressions.c.workspace_id == scope.workspace_id,
            suppressions.c.channel == channel,
            suppressions.c.address_hash == address_hash(scope.cipher, Channel(channel), address),
        )
    ).first()


def events_of(scope: Scope, customer_id: uuid.UUID, name: str) -> list[dict]:
    rows = scope.conn.execute(
        sa.select(events.c.properties).where(
            events.c.workspace_id == scope.workspace_id,
            events.c.customer_id == customer_id,
            events.c.name == name,
        )
    )
    return [dict(r.properties) for r in rows]


def message_row(scope: Scope, message_id: uuid.UUID):
    return scope.conn.execute(
        sa.select(messages.c.status, messages.c.reason).where(messages.c.message_id == message_id)
    ).one()


def counts(scope: Scope) -> tuple[int, int, int]:
    def count(table: sa.Table) -> int:
        return scope.conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()

    return count(events), count(suppressions), count(consent_events)


@pytest.fixture
def taro(scope_factory):
    with scope_factory() as scope:
        customer_id = customer(scope, "C001", TARO)
        return customer_id, sent(scope, customer_id, TARO, HARD_ID)


# --- Applying reports ------------------------------------------------------------------


def test_hard_bounce_suppresses_at_once_and_records_the_bounce(scope_factory, taro):
    customer_id, message_id = taro
    with scope_factory() as scope:
        outcome = apply_raw_report(scope, fixture("dsn_hard_user_unknown.eml"), DeliverySettings())
    (applied,) = outcome.applied
    assert applied.verdict is Verdict.HARD_BOUNCE
    assert (applied.message_id, applied.events, applied.suppressed) == (message_id, 1, True)
    assert applied.address == "t***@example.com"
    with scope_factory() as scope:
        row = suppression(scope, TARO)
        assert (row.reason, row.customer_id) == ("hard_bounce", customer_id)
        (bounced,) = events_of(scope, customer_id, "Message Bounced")
        diagnostic = (
            "smtp; 550 5.1.1 <taro.yamada@example.com>: Recipient address rejected: "
            "User unknown in virtual mailbox table"
        )
        assert bounced["bounce_type"] == "hard"
        assert bounced["status"] == "5.1.1"
        assert bounced["diagnostic"] == diagnostic
        assert bounced["message_id"] == str(message_id)
        assert tuple(message_row(scope, message_id)) == ("bounced", diagnostic)


def test_the_same_dsn_twice_changes_nothing_more(scope_factory, taro):
    raw = fixture("dsn_hard_user_unknown.eml")
    with scope_factory() as scope:
        apply_raw_report(scope, raw, DeliverySettings())
    with scope_factory() as scope:
        before = counts(scope), tuple(suppression(scope, TARO))
    with scope_factory() as scope:
        (again,) = apply_raw_report(scope, raw, DeliverySettings()).applied
    assert again.events == 0
    with scope_factory() as scope:
        assert (counts(scope), tuple(suppression(scope, TARO))) == before


def test_soft_bounces_suppress_only_at_the_limit(scope_factory):
    with scope_factory() as scope:
        hanako = customer(scope, "C002", HANAKO)
        ids = [f"{n:032x}" for n in range(1, 4)]
        made = [sent(scope, hanako, HANAKO, f"<{h}@mail.shop.example.jp>") for h in ids]
    settings = DeliverySettings(soft_bounce_limit=3)
    for n, hex_id in enumerate(ids, start=1):
        with scope_factory() as scope:
            (applied,) = apply_raw_report(scope, soft_dsn(hex_id), settings).applied
            assert applied.verdict is Verdict.SOFT_BOUNCE
            assert applied.message_id == made[n - 1]
            assert applied.suppressed is (n == 3)
            assert (suppression(scope, HANAKO) is not None) is (n == 3)
    with scope_factory() as scope:
        row = suppression(scope, HANAKO)
        assert row.reason == "hard_bounce"
        assert row.note.startswith("3 soft bounces (limit 3)")
        bounced = events_of(scope, hanako, "Message Bounced")
        assert [b["bounce_type"] for b in bounced] == ["soft"] * 3


def test_a_message_that_reached_the_address_restarts_the_soft_count(scope_factory, clock):
    with scope_factory() as scope:
        hanako = customer(scope, "C002", HANAKO)
        first = [sent(scope, hanako, HANAKO, f"<{n:032x}@mail.shop.example.jp>") for n in (1, 2)]
    settings = DeliverySettings(soft_bounce_limit=3)
    for n in (1, 2):
        with scope_factory() as scope:
            apply_raw_report(scope, soft_dsn(f"{n:032x}"), settings)
    clock.advance(timedelta(days=1))
    with scope_factory() as scope:
        opened = sent(scope, hanako, HANAKO, "<opened@m.example.jp>")
        scope.conn.execute(
            messages.update()
            .where(messages.c.message_id == opened)
            .values(status="delivered", delivered_at=scope.now)
        )
    clock.advance(timedelta(days=1))
    with scope_factory() as scope:
        later = [sent(scope, hanako, HANAKO, f"<{n:032x}@mail.shop.example.jp>") for n in (3, 4)]
    for n in (3, 4):
        with scope_factory() as scope:
            (applied,) = apply_raw_report(scope, soft_dsn(f"{n:032x}"), settings).applied
            assert applied.suppressed is False
    with scope_factory() as scope:
        assert suppression(scope, HANAKO) is None
        assert {message_row(scope, m).status for m in first + later} == {"bounced"}


def test_complaint_suppresses_and_opts_out_with_evidence(scope_factory):
    with scope_factory() as scope:
        ume = customer(scope, "C003", UME)
        message_id = sent(scope, ume, UME, ARF_ID)
    with scope_factory() as scope:
        (applied,) = apply_raw_report(scope, fixture("arf_abuse.eml"), DeliverySettings()).applied
    assert (applied.verdict, applied.message_id) == (Verdict.COMPLAINT, message_id)
    assert applied.suppressed and applied.opted_out
    with scope_factory() as scope:
        assert suppression(scope, UME).reason == "complaint"
        (complained,) = events_of(scope, ume, "Message Complained")
        assert complained["feedback_type"] == "abuse"
        assert complained["reporter"] == "ExampleFBL/2.1"
        status = scope.conn.execute(
            sa.select(consents.c.status).where(
                consents.c.customer_id == ume, consents.c.channel == "email"
            )
        ).scalar_one()
        assert status == "opted_out"
        evidence = scope.conn.execute(
            sa.select(consent_events).where(
                consent_events.c.customer_id == ume, consent_events.c.status == "opted_out"
            )
        ).one()
        assert evidence.method == COMPLAINT_METHOD == "complaint (ARF)"
        assert "<fbl-20260402004036-77120@fbl.mailbox.example.com>" in evidence.source
        assert message_row(scope, message_id).status == "complained"
    with scope_factory() as scope:
        before = counts(scope)
        apply_raw_report(scope, fixture("arf_abuse.eml"), DeliverySettings())
        assert counts(scope) == before  # a replayed complaint adds no evidence either


def test_a_complaint_about_an_unknown_message_opts_out_the_addresses_owner(scope_factory):
    with scope_factory() as scope:
        ume = customer(scope, None, UME)  # no shop id; no message of ours matches
    with scope_factory() as scope:
        (applied,) = apply_raw_report(scope, fixture("arf_abuse.eml"), DeliverySettings()).applied
    assert applied.message_id is None and applied.suppressed and applied.opted_out
    assert "no email message of this workspace matches" in applied.note
    with scope_factory() as scope:
        assert suppression(scope, UME).reason == "complaint"
        assert events_of(scope, ume, "Message Complained") == []


def test_an_unknown_message_still_suppresses_the_address_in_this_workspace(scope_factory):
    with scope_factory() as scope:
        (applied,) = apply_raw_report(
            scope, fixture("dsn_hard_user_unknown.eml"), DeliverySettings()
        ).applied
        assert applied.message_id is None and applied.suppressed
        assert suppression(scope, TARO).customer_id is None


def test_another_workspaces_message_is_never_touched(db, scope_factory, clock):
    with db.write() as conn:
        other = create_workspace(conn, "other", now=clock.now())
        other_scope = Scope(conn, db.cipher, other.workspace_id, clock.now())
        theirs = sent(other_scope, customer(other_scope, "X1", TARO), TARO, HARD_ID)
    with scope_factory() as scope:
        (applied,) = apply_raw_report(
            scope, fixture("dsn_hard_user_unknown.eml"), DeliverySettings()
        ).applied
        assert applied.message_id is None
        assert message_row(scope, theirs).status == "sent"
    with db.read() as conn:
        assert suppression(Scope(conn, db.cipher, other.workspace_id, clock.now()), TARO) is None


def test_a_delayed_dsn_changes_nothing(scope_factory):
    with scope_factory() as scope:
        jiro = customer(scope, "C004", "jiro@slow.example.org")
        message_id = sent(scope, jiro, "jiro@slow.example.org", "<0c1d2e3f405162738495a6b7c8d9e0f1"
                          "@mail.shop.example.jp>")  # fmt: skip
        before = counts(scope)
        (applied,) = apply_raw_report(scope, fixture("dsn_delayed.eml"), DeliverySettings()).applied
        assert (applied.verdict, applied.events, applied.suppressed) == (Verdict.DELAYED, 0, False)
        assert counts(scope) == before
        assert message_row(scope, message_id).status == "sent"


def test_a_multi_recipient_dsn_applies_each_line_to_its_own_address(scope_factory):
    alias = "saburo@shop-alias.example.jp"
    with scope_factory() as scope:
        saburo = customer(scope, "C005", alias)
        message_id = sent(scope, saburo, alias, MULTI_ID)
        hard, delivered = apply_raw_report(
            scope, fixture("dsn_multi_recipient.eml"), DeliverySettings()
        ).applied
        assert (hard.message_id, hard.suppressed) == (message_id, True)
        # The "delivered" line is about shiro@, who is not this message's recipient.
        assert (delivered.verdict, delivered.message_id, delivered.events) == (
            Verdict.DELIVERED, None, 0,
        )  # fmt: skip
        assert message_row(scope, message_id).status == "bounced"
        assert events_of(scope, saburo, "Message Delivered") == []


def test_a_non_report_applies_nothing(scope_factory, taro):
    with scope_factory() as scope:
        before = counts(scope)
        outcome = apply_raw_report(scope, fixture("not_a_bounce.eml"), DeliverySettings())
        assert outcome.applied == () and not outcome.report.is_report
        assert counts(scope) == before


# --- Twilio status callbacks (mapping) -------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "verdict"),
    [
        ("delivered", "", Verdict.DELIVERED),
        ("undelivered", "30005", Verdict.HARD_BOUNCE),
        ("failed", "30006", Verdict.HARD_BOUNCE),
        ("undelivered", "30003", Verdict.SOFT_BOUNCE),
        ("undelivered", "30007", Verdict.FAILED),
        ("failed", "", Verdict.FAILED),
    ],
)
def test_twilio_statuses_map_to_verdicts(status, code, verdict):
    params = {"MessageSid": "SM1", "MessageStatus": status, "To": "+819012345678"}
    item = twilio_feedback({**params, **({"ErrorCode": code} if code else {})})
    assert item is not None and item.verdict is verdict
    assert (item.provider, item.provider_message_id, item.channel) == ("twilio", "SM1", Channel.SMS)


def test_twilio_intermediate_statuses_are_not_feedback_and_garbage_is_refused():
    assert twilio_feedback({"MessageSid": "SM1", "MessageStatus": "sent"}) is None
    with pytest.raises(InvalidInput):
        twilio_feedback({"MessageStatus": "delivered"})


# --- HTTP ------------------------------------------------------------------------------


@pytest.fixture
def client(db):
    app = build_app(db, "test-token")
    if not any(getattr(r, "path", "").endswith("/feedback/reports") for r in app.routes):
        app.include_router(feedback_router)
    with TestClient(app) as http:
        yield http


def test_report_endpoint_applies_a_dsn(client, scope_factory, taro):
    answer = client.post(
        "/api/workspaces/shop/feedback/reports",
        content=fixture("dsn_hard_user_unknown.eml"),
        headers={**AUTH, "Content-Type": "message/rfc822"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["report_type"] == "delivery-status"
    assert body["original_message_id"] == HARD_ID
    (result,) = body["results"]
    assert result["verdict"] == "hard_bounce" and result["suppressed"] is True
    assert result["address"] == "t***@example.com"
    with scope_factory() as scope:
        assert suppression(scope, TARO) is not None


@pytest.mark.parametrize(
    "garbage", [b"", b"\x00\xff random bytes", fixture("not_a_bounce.eml"), b"hello"]
)
def test_report_endpoint_answers_400_for_garbage(client, workspace, garbage):
    answer = client.post("/api/workspaces/shop/feedback/reports", content=garbage, headers=AUTH)
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "not_a_report"
    assert "report" in body["message"] or "empty" in body["message"]


def test_report_endpoint_needs_the_token(client):
    answer = client.post(
        "/api/workspaces/shop/feedback/reports", content=fixture("dsn_hard_user_unknown.eml")
    )
    assert answer.status_code == 401


def test_event_webhook_applies_provider_events_and_rejects_bad_ones(client, scope_factory, taro):
    customer_id, message_id = taro
    event = {
        "type": "bounced", "provider": "smtp", "provider_message_id": HARD_ID,
        "recipient": TARO, "bounce_type": "hard", "status": "5.1.1",
        "diagnostic": "550 5.1.1 user unknown", "occurred_at": "2026-04-01T03:00:00",
    }  # fmt: skip
    answer = client.post(
        "/api/workspaces/shop/feedback/events", json={"events": [event]}, headers=AUTH
    )
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    assert result["message_id"] == str(message_id) and result["suppressed"] is True
    with scope_factory() as scope:
        assert suppression(scope, TARO).reason == "hard_bounce"
        assert events_of(scope, customer_id, "Message Bounced")[0]["status"] == "5.1.1"
    for bad in ({"events": []}, {"events": [{"type": "opened", "provider": "x"}]},
                {"events": [{"type": "bounced", "provider": "smtp"}]}):  # fmt: skip
        refused = client.post("/api/workspaces/shop/feedback/events", json=bad, headers=AUTH)
        assert refused.status_code == 400
        assert refused.json()["code"] == "invalid_request"


def sign(url: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> str:
    """Twilio's documented scheme, computed here independently of the code under test."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


@pytest.fixture
def sms_shop(scope_factory):
    with scope_factory() as scope:
        configure_provider(
            scope, "sms", "twilio",
            {"from_number": "+815012345678", "status_callback": CALLBACK},
            {"account_sid": "AC" + "0" * 32, "auth_token": TWILIO_TOKEN},
        )  # fmt: skip
        jun = customer(scope, "C010", phone="+819012345678")
        return jun, sent(scope, jun, "+819012345678", "SM" + "a" * 32, channel="sms",
                         provider="twilio")  # fmt: skip


def callback(client, params: dict[str, str], signature: str | None = None):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    headers["X-Twilio-Signature"] = sign(CALLBACK, params) if signature is None else signature
    return client.post("/api/workspaces/shop/feedback/twilio", content=urlencode(params),
                       headers=headers)  # fmt: skip


def twilio_params(status: str, code: str = "", sid: str = "SM" + "a" * 32) -> dict[str, str]:
    params = {
        "AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "From": "+815012345678",
        "MessageSid": sid, "MessageStatus": status, "SmsSid": sid, "SmsStatus": status,
        "To": "+819012345678",
    }  # fmt: skip
    return {**params, "ErrorCode": code} if code else params


def test_twilio_delivered_callback_with_a_valid_signature(client, scope_factory, sms_shop):
    jun, message_id = sms_shop
    answer = callback(client, twilio_params("delivered"))
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    assert (result["verdict"], result["message_id"]) == ("delivered", str(message_id))
    with scope_factory() as scope:
        assert message_row(scope, message_id).status == "delivered"
        assert len(events_of(scope, jun, "Message Delivered")) == 1


def test_twilio_dead_number_is_suppressed_at_once(client, scope_factory, sms_shop):
    jun, message_id = sms_shop
    answer = callback(client, twilio_params("undelivered", "30005"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["suppressed"] is True
    with scope_factory() as scope:
        assert suppression(scope, "+819012345678", "sms").reason == "hard_bounce"
        (bounced,) = events_of(scope, jun, "Message Bounced")
        assert (bounced["bounce_type"], bounced["error_code"]) == ("hard", "30005")
        assert message_row(scope, message_id).status == "bounced"


def test_twilio_unreachable_handset_suppresses_at_the_soft_limit(client, scope_factory, sms_shop):
    jun, _ = sms_shop
    with scope_factory() as scope:
        save_delivery_settings(
            scope.conn, scope.workspace_id, DeliverySettings(soft_bounce_limit=2)
        )
        sent(scope, jun, "+819012345678", "SM" + "b" * 32, channel="sms", provider="twilio")
    first = callback(client, twilio_params("undelivered", "30003"))
    assert first.json()["results"][0]["suppressed"] is False
    with scope_factory() as scope:
        assert suppression(scope, "+819012345678", "sms") is None
    second = callback(client, twilio_params("undelivered", "30003", sid="SM" + "b" * 32))
    assert second.json()["results"][0]["suppressed"] is True
    with scope_factory() as scope:
        assert suppression(scope, "+819012345678", "sms").note.startswith("2 soft bounces")


def test_twilio_other_errors_fail_the_message_without_blaming_the_number(
    client, scope_factory, sms_shop
):
    jun, _ = sms_shop
    failed = callback(client, twilio_params("failed", "30007"))
    assert failed.json()["results"][0]["verdict"] == "failed"
    with scope_factory() as scope:
        assert suppression(scope, "+819012345678", "sms") is None
        (failed_event,) = events_of(scope, jun, "Message Failed")
        assert (failed_event["error_code"], failed_event["status"]) == ("30007", "failed")
        assert failed_event["reason"] == "failed (ErrorCode 30007)"


def test_twilio_bad_or_missing_signature_is_403_and_changes_nothing(
    client, scope_factory, sms_shop
):
    params = twilio_params("undelivered", "30005")
    forged = sign(CALLBACK, params, token="not-the-token")
    tampered = sign(CALLBACK, {**params, "ErrorCode": "30007"})
    for signature in (forged, tampered, ""):
        answer = callback(client, params, signature)
        assert answer.status_code == 403
        assert answer.json()["code"] == "invalid_signature"
    assert (
        callback(client, params | {"To": "+819099999999"}, sign(CALLBACK, params)).status_code
        == 403
    )
    with scope_factory() as scope:
        assert suppression(scope, "+819012345678", "sms") is None
        assert message_row(scope, sms_shop[1]).status == "sent"


def test_twilio_unknown_sid_is_200_and_intermediate_statuses_are_no_ops(client, sms_shop):
    unknown = callback(client, twilio_params("delivered", sid="SM" + "f" * 32))
    assert unknown.status_code == 200
    assert unknown.json()["results"][0]["message_id"] is None
    sent_only = callback(client, twilio_params("sent"))
    assert (sent_only.status_code, sent_only.json()["results"]) == (200, [])


def test_twilio_callback_for_a_workspace_without_twilio_is_403(client):
    answer = callback(client, twilio_params("delivered"))
    assert answer.status_code == 403


# --- The bounce mailbox ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def crlf(raw: bytes) -> bytes:
    """SMTP's line ending (smtplib sends bytes as they are)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_smtp_bounce_receiver_applies_a_bounce(db, scope_factory, taro):
    port = free_port()
    controller = start_bounce_server(db, "shop", "127.0.0.1", port, ["bounce.shop.example.jp"])
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            # Bounces come with the null reverse-path (MAIL FROM:<>).
            refused = smtp.sendmail("", ["bounces@bounce.shop.example.jp"],
                                    crlf(fixture("dsn_hard_user_unknown.eml")))  # fmt: skip
            assert refused == {}
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                smtp.sendmail("", ["someone@elsewhere.example"], b"Subject: relay?\r\n\r\nno")
            smtp.sendmail("", ["bounces@bounce.shop.example.jp"], crlf(fixture("not_a_bounce.eml")))
    finally:
        controller.stop()
    with scope_factory() as scope:
        assert suppression(scope, TARO).reason == "hard_bounce"
        assert message_row(scope, taro[1]).status == "bounced"


def all_fixtures() -> list[bytes]:
    return [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))]


def test_mbox_import_applies_and_is_idempotent(db, scope_factory, taro, tmp_path):
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(str(path))
    for raw in all_fixtures():
        box.add(raw)
    box.close()
    first = import_mailbox(db, "shop", path)
    assert (first.read, first.reports, first.not_reports) == (7, 6, 1)
    assert first.verdicts["hard_bounce"] == 2 and first.verdicts["complaint"] == 2
    assert first.events == 1  # taro's message is the only one of ours
    with scope_factory() as scope:
        assert suppression(scope, TARO) is not None
        assert suppression(scope, UME).reason == "complaint"
        before = counts(scope)
    second = import_mailbox(db, "shop", path)
    assert second.events == 0
    with scope_factory() as scope:
        assert counts(scope) == before


def test_maildir_and_single_eml_import(db, scope_factory, taro, tmp_path):
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    box.add(fixture("dsn_hard_user_unknown.eml"))
    box.add(fixture("arf_abuse.eml"))
    summary = import_mailbox(db, "shop", tmp_path / "Maildir")
    assert (summary.reports, summary.events) == (2, 1)
    single = import_mailbox(db, "shop", FIXTURES / "not_a_bounce.eml")
    assert (single.read, single.not_reports) == (1, 1)
    assert "no multipart/report" in single.problems[0]
    with pytest.raises(InvalidInput):
        import_mailbox(db, "shop", tmp_path / "missing.mbox")


def test_cli_bounces_import(settings, taro, scope_factory, monkeypatch, tmp_path):
    monkeypatch.setenv("KIZUNA_HOME", str(settings.home))
    monkeypatch.setenv("KIZUNA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KIZUNA_SECRET_KEY", settings.secret_key or "")
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # keeps "bounces" a sub-command, as under the real app
    runner = CliRunner()
    done = runner.invoke(app, ["bounces", "import", str(FIXTURES), "-w", "shop"])
    assert done.exit_code == 0, done.output
    assert "hard bounce" in done.output and "not reports" in done.output
    with scope_factory() as scope:
        assert suppression(scope, TARO) is not None
    missing = runner.invoke(app, ["bounces", "import", str(tmp_path / "nope"), "-w", "shop"])
    assert missing.exit_code == 2
    unknown = runner.invoke(app, ["bounces", "import", str(FIXTURES), "-w", "no-such-shop"])
    assert unknown.exit_code == 1
