"""Parsing DSN (RFC 3464) and ARF (RFC 5965) messages into typed reports (no store)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kizuna.delivery.bounces import Verdict, classify, parse_report

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bounces"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "report_type", "message_id", "recipients"),
    [
        (
            "dsn_hard_user_unknown.eml",
            "delivery-status",
            "<9b2f4e7c1a3d5b6e8f0a2c4d6e8f1a3b@mail.shop.example.jp>",
            [(Verdict.HARD_BOUNCE, "taro.yamada@example.com", "failed", "5.1.1")],
        ),
        (
            "dsn_soft_mailbox_full.eml",
            "delivery-status",
            "<5e0d3c2b1a09f8e7d6c5b4a392817060@mail.shop.example.jp>",
            [(Verdict.SOFT_BOUNCE, "hanako.sato@isp.example.ne.jp", "failed", "4.2.2")],
        ),
        (
            "dsn_delayed.eml",
            "delivery-status",
            "<0c1d2e3f405162738495a6b7c8d9e0f1@mail.shop.example.jp>",
            [(Verdict.DELAYED, "jiro@slow.example.org", "delayed", "4.4.1")],
        ),
        (
            "dsn_multi_recipient.eml",
            "delivery-status",
            "<a1b2c3d4e5f60718293a4b5c6d7e8f90@mail.shop.example.jp>",
            [
                (Verdict.HARD_BOUNCE, "saburo@shop-alias.example.jp", "failed", "5.0.0"),
                (Verdict.DELIVERED, "shiro@example.net", "delivered", "2.1.5"),
            ],
        ),
        (
            "arf_abuse.eml",
            "feedback-report",
            "<d4c3b2a1908f7e6d5c4b3a2918070605@mail.shop.example.jp>",
            [(Verdict.COMPLAINT, "ume.kobayashi@mailbox.example.com", None, None)],
        ),
        (
            "arf_redacted_headers.eml",
            "feedback-report",
            "<7f6e5d4c3b2a19080f1e2d3c4b5a6978@mail.shop.example.jp>",
            [(Verdict.COMPLAINT, "matsu.ito@portal.example.jp", None, None)],
        ),
    ],
)
def test_each_fixture_parses_to_its_recipient_status_action_and_message_id(
    name, report_type, message_id, recipients
):
    report = parse_report(fixture(name))
    assert report.is_report and report.problem is None
    assert report.report_type == report_type
    assert report.original_message_id == message_id
    assert [(r.verdict, r.recipient, r.action, r.status) for r in report.recipients] == recipients


def test_diagnostic_code_is_kept_verbatim_but_unfolded():
    (hard,) = parse_report(fixture("dsn_hard_user_unknown.eml")).recipients
    assert hard.diagnostic == (
        "smtp; 550 5.1.1 <taro.yamada@example.com>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    report = parse_report(fixture("dsn_hard_user_unknown.eml"))
    assert report.reporter == "mx1.mail.shop.example.jp"
    assert report.report_id == "<20260401030009.4F2A81C0042@mx1.mail.shop.example.jp>"


def test_original_recipient_wins_over_the_forwarded_final_recipient():
    first = parse_report(fixture("dsn_multi_recipient.eml")).recipients[0]
    assert first.recipient == "saburo@shop-alias.example.jp"
    assert first.diagnostic == (
        "smtp; 550 'saburo@forward.example.net' is not a registered gateway user"
    )


def test_arf_names_the_feedback_type_and_reporter():
    report = parse_report(fixture("arf_abuse.eml"))
    assert report.reporter == "ExampleFBL/2.1"
    assert report.recipients[0].feedback_type == "abuse"
    assert report.report_id == "<fbl-20260402004036-77120@fbl.mailbox.example.com>"


def test_a_japanese_iso_2022_jp_notice_and_a_folded_message_id_parse():
    # The human part is ISO-2022-JP in base64 and the original's Message-ID is folded.
    report = parse_report(fixture("dsn_soft_mailbox_full.eml"))
    assert report.reporter == "mta.isp.example.ne.jp"
    assert report.recipients[0].diagnostic == "SMTP; 452 4.2.2 Mailbox full"


def test_a_free_text_bounce_is_not_a_report_and_says_why():
    report = parse_report(fixture("not_a_bounce.eml"))
    assert not report.is_report
    assert report.report_type is None and report.recipients == ()
    assert "no multipart/report" in (report.problem or "")
    assert "failure notice" in (report.problem or "")


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x00\xff\xfe not even text \x80\x81",
        "ただのテキスト",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\n"
        b"Content-Type: text/plain\n\nno status part\n--x--\n",
        b"Content-Type: multipart/report; boundary=x\n\n--x--\n",
    ],
)
def test_garbage_parses_to_a_problem_not_an_exception(garbage):
    report = parse_report(garbage)
    assert not report.is_report
    assert report.problem


def test_a_not_spam_feedback_report_asks_for_nothing():
    raw = fixture("arf_abuse.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    (line,) = parse_report(raw).recipients
    assert line.verdict is Verdict.IGNORED
    assert line.feedback_type == "not-spam"


def test_a_message_id_without_angle_brackets_is_normalized():
    # RFC 5965's own example returns "Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net".
    raw = fixture("arf_abuse.eml").replace(
        b"<d4c3b2a1908f7e6d5c4b3a2918070605@mail.shop.example.jp>",
        b"d4c3b2a1908f7e6d5c4b3a2918070605@mail.shop.example.jp",
    )
    report = parse_report(raw)
    assert report.original_message_id == "<d4c3b2a1908f7e6d5c4b3a2918070605@mail.shop.example.jp>"


def test_an_arf_report_without_rcpt_to_falls_back_to_the_originals_to():
    report = parse_report(fixture("arf_redacted_headers.eml"))
    assert [r.recipient for r in report.recipients] == ["matsu.ito@portal.example.jp"]
    redacted = fixture("arf_redacted_headers.eml").replace(
        b'To: "Matsu Ito" <matsu.ito@portal.example.jp>', b"To: redacted"
    )
    (line,) = parse_report(redacted).recipients
    assert line.recipient is None
    assert line.verdict is Verdict.COMPLAINT


def test_raw_utf8_header_values_of_an_smtputf8_report_are_read_as_utf8():
    raw = fixture("arf_abuse.eml").replace(
        b"Original-Rcpt-To: <ume.kobayashi@mailbox.example.com>",
        "Original-Rcpt-To: <梅@mailbox.example.com>".encode(),
    )
    assert parse_report(raw).recipients[0].recipient == "梅@mailbox.example.com"


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "verdict"),
    [
        ("failed", "5.1.1", None, Verdict.HARD_BOUNCE),
        ("failed", "5.0.0 (permanent failure)", None, Verdict.HARD_BOUNCE),
        ("failed", "4.2.2", None, Verdict.SOFT_BOUNCE),
        ("failed", "5.2.2", "smtp; 552 5.2.2 over quota", Verdict.SOFT_BOUNCE),
        ("failed", None, "smtp; 550 no such user", Verdict.HARD_BOUNCE),
        ("failed", None, "smtp; 421 try later", Verdict.SOFT_BOUNCE),
        ("failed", None, None, Verdict.HARD_BOUNCE),
        ("Delayed", "4.4.7", None, Verdict.DELAYED),
        ("delivered", "2.0.0", None, Verdict.DELIVERED),
        ("relayed", "2.0.0", None, Verdict.IGNORED),
        ("expanded", "2.0.0", None, Verdict.IGNORED),
    ],
)
def test_classify_reads_action_status_and_diagnostic(action, status, diagnostic, verdict):
    assert classify(action, status, diagnostic) is verdict


def test_parsing_pulls_in_no_store_web_or_smtp_server():
    code = "import sys, kizuna.delivery.bounces; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not {"sqlalchemy", "fastapi", "aiosmtpd"} & set(out.stdout.split())
