"""The SMTP channel against a real SMTP server (aiosmtpd, in-process)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import ssl
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, cast

import dkim
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kizuna.channels.base import Content, Handover, Outcome, Outgoing, ProviderConfig
from kizuna.channels.email import SmtpChannel, open_channel
from kizuna.channels.email_smtp import classify
from kizuna.channels.registry import open_channel as open_registered
from kizuna.clock import FixedClock
from kizuna.errors import InvalidInput
from tests.delivery.smtp_server import Received, SmtpServer

WORKSPACE = uuid.UUID("00000000-0000-4000-8000-000000000001")
SUBJECT = "【春のセール】山田様へ、新作スニーカーが入荷しました！最大５０％ＯＦＦ"
TEXT = "山田 太郎 様\n\nいつもキズナ商店をご利用いただき、ありがとうございます。\n配信停止はこちら: https://shop.example.jp/u/abc\n"
HTML = "<html><body><p>山田 太郎 様</p><p>いつもありがとうございます。</p></body></html>"
UNSUBSCRIBE = (
    "<https://shop.example.jp/u/tok123>, <mailto:unsubscribe@shop.example.jp?subject=tok123>"
)
ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture(scope="module")
def dkim_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(params=[False, True], ids=["stepwise", "pipelined"])
def server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """A server with and without PIPELINING: the channel must do both right."""
    with SmtpServer(pipelining=request.param) as smtp:
        yield smtp


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def dns_for(key: rsa.RSAPrivateKey, name: bytes = b"k1._domainkey.shop.example.jp."):
    """A DNS lookup answering the public key record for ``name`` only (no network)."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    def lookup(queried: bytes, timeout: int = 5) -> bytes | None:
        return record if queried == name else None

    return lookup


def channel(
    server: SmtpServer | None = None,
    *,
    port: int | None = None,
    key: rsa.RSAPrivateKey | None = None,
    secrets: dict[str, Any] | None = None,
    **settings: Any,
) -> SmtpChannel:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port if port is not None else (server.port if server else 25),
        "starttls": False,
        "from_address": "news@shop.example.jp",
        "from_name": "キズナ商店 公式ストア",
        "timeout": 5,
    }
    values.update(settings)
    given = dict(secrets or {})
    if key is not None:
        values.setdefault("dkim_selector", "k1")
        given["dkim_private_key"] = pem(key)
    config = ProviderConfig("email", "smtp", values, given)
    clock = FixedClock(datetime(2026, 4, 1, 3, 0, tzinfo=UTC))
    return cast(SmtpChannel, open_channel(config, clock=clock))


def outgoing(
    address: str = "taro@example.com",
    *,
    key: str | None = None,
    subject: str = SUBJECT,
    text: str = TEXT,
    html: str | None = HTML,
    headers: dict[str, str] | None = None,
    purpose: str = "marketing",
) -> Outgoing:
    return Outgoing(
        message_id=uuid.uuid4(),
        idempotency_key=key or f"campaign:c1:{address}",
        workspace_id=WORKSPACE,
        customer_id=uuid.uuid4(),
        channel="email",
        address=address,
        purpose=purpose,
        content=Content(text=text, subject=subject, html=html),
        headers=headers
        if headers is not None
        else {"List-Unsubscribe": UNSUBSCRIBE, "List-Unsubscribe-Post": ONE_CLICK},
    )


def parse(received: Received) -> EmailMessage:
    return cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(received.data))


def by_id(handovers: list[Handover]) -> dict[uuid.UUID, Handover]:
    return {h.message_id: h for h in handovers}


def send_one(ch: SmtpChannel, message: Outgoing) -> Handover:
    [handover] = ch.send([message])
    assert handover.message_id == message.message_id
    return handover


# --- encoding ---------------------------------------------------------------------------------


def test_japanese_subject_body_and_from_read_back_exactly(server: SmtpServer) -> None:
    ch = channel(server)
    handover = send_one(ch, outgoing())
    ch.close()

    assert handover.outcome is Outcome.SENT
    [received] = server.messages
    # 7-bit clean on the wire, so any relay passes it unchanged.
    assert all(b < 128 for b in received.data)
    assert b"\r\n" in received.data and b"\n" not in received.data.replace(b"\r\n", b"")
    assert b"Subject: =?utf-8?b?" in received.data
    message = parse(received)
    assert message["Subject"] == SUBJECT
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "キズナ商店 公式ストア",
        "news@shop.example.jp",
    )
    assert message["To"] == "taro@example.com"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text["Content-Transfer-Encoding"] == "base64"
    assert text.get_content().replace("\r\n", "\n") == TEXT
    assert html.get_content().replace("\r\n", "\n") == HTML + "\n"


def test_long_and_tricky_subjects_read_back_exactly(server: SmtpServer) -> None:
    subjects = [
        "お知らせ" * 40,
        " ".join(["Plain ASCII subject, long enough to need folding across lines"] * 3),
        "Mixed 日本語 and English　with an ideographic space",
        "Looks like =?utf-8?b?encoded?= but is not",
        "絵文字 🎉 と記号 ①②③",
    ]
    ch = channel(server)
    handovers = ch.send([outgoing(f"u{i}@example.com", subject=s) for i, s in enumerate(subjects)])
    ch.close()

    assert [h.outcome for h in handovers] == [Outcome.SENT] * len(subjects)
    got = {m.rcpt_tos[0]: parse(m)["Subject"] for m in server.messages}
    assert got == {f"u{i}@example.com": s for i, s in enumerate(subjects)}
    for m in server.messages:
        assert max(len(line) for line in m.data.split(b"\r\n")) <= 998


def test_multipart_alternative_with_text_then_html(server: SmtpServer) -> None:
    ch = channel(server)
    ch.send([outgoing("a@example.com"), outgoing("b@example.com", html=None)])
    ch.close()

    messages = {m.rcpt_tos[0]: parse(m) for m in server.messages}
    both = messages["a@example.com"]
    assert both.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in both.iter_parts()] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in both.iter_parts())
    only_text = messages["b@example.com"]
    assert only_text.get_content_type() == "text/plain"
    assert only_text.get_content().replace("\r\n", "\n") == TEXT


def test_ascii_bodies_go_as_7bit(server: SmtpServer) -> None:
    ch = channel(server)
    send_one(ch, outgoing(subject="Hello", text="Hello Taro\n.dot at start\n", html="<p>Hi</p>"))
    ch.close()

    message = parse(server.messages[0])
    text, html = message.iter_parts()
    assert text["Content-Transfer-Encoding"] == "7bit"
    assert text.get_content().replace("\r\n", "\n") == "Hello Taro\n.dot at start\n"
    assert html.get_content().replace("\r\n", "\n") == "<p>Hi</p>\n"


# --- headers ----------------------------------------------------------------------------------


def test_pipelines_only_when_the_server_offers_it(server: SmtpServer) -> None:
    ch = channel(server)
    ch.send([outgoing("a@example.com"), outgoing("b@example.com")])
    ch.close()
    offered = server.handler.pipelining
    assert [m.pipelined for m in server.messages] == [offered, offered]


def test_headers_and_envelope(server: SmtpServer) -> None:
    ch = channel(
        server,
        reply_to="support@shop.example.jp",
        return_path="bounces@mail.shop.example.jp",
        feedback_id_prefix="kizuna-shop",
    )
    handover = send_one(ch, outgoing())
    ch.close()

    [received] = server.messages
    message = parse(received)
    assert received.mail_from == "bounces@mail.shop.example.jp"
    assert received.rcpt_tos == ("taro@example.com",)
    assert message["List-Unsubscribe"] == UNSUBSCRIBE
    assert message["List-Unsubscribe-Post"] == ONE_CLICK
    assert message["Feedback-ID"] == "kizuna-shop:marketing"
    assert message["Reply-To"] == "support@shop.example.jp"
    assert message["MIME-Version"] == "1.0"
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    digest = hashlib.sha256(b"campaign:c1:taro@example.com").hexdigest()[:32]
    assert message["Message-ID"] == f"<{digest}@shop.example.jp>"
    assert handover.provider_message_id == message["Message-ID"]


def test_long_header_values_fold_only_at_their_spaces(server: SmtpServer) -> None:
    long_url = "<https://shop.example.jp/u/" + "t;o,k" * 30 + ">"
    unsubscribe = f"{long_url}, <mailto:unsubscribe@shop.example.jp?subject=a;b,c>"
    ch = channel(server)
    send_one(ch, outgoing(headers={"List-Unsubscribe": unsubscribe, "X-Campaign": "a  b " * 30}))
    ch.close()

    data = server.messages[0].data
    assert b"List-Unsubscribe: " + long_url.encode() + b",\r\n <mailto:" in data
    message = parse(server.messages[0])
    assert message["List-Unsubscribe"] == unsubscribe
    assert message["X-Campaign"] == ("a  b " * 30).strip()


def test_feedback_id_from_the_pipeline_wins(server: SmtpServer) -> None:
    ch = channel(server, feedback_id_prefix="kizuna-shop", message_id_domain="mid.example.jp")
    send_one(ch, outgoing(headers={"Feedback-ID": "c1:promo:kizuna"}))
    ch.close()

    message = parse(server.messages[0])
    assert message.get_all("Feedback-ID") == ["c1:promo:kizuna"]
    assert message["Message-ID"].endswith("@mid.example.jp>")


def test_message_id_is_stable_for_the_same_key(server: SmtpServer) -> None:
    ch = channel(server)
    first = send_one(ch, outgoing(key="journey:j1:run7:step3"))
    again = send_one(ch, outgoing(key="journey:j1:run7:step3"))
    other = send_one(ch, outgoing(key="journey:j1:run7:step4"))
    ch.close()

    ids = [parse(m)["Message-ID"] for m in server.messages]
    assert ids[0] == ids[1] == first.provider_message_id == again.provider_message_id
    assert ids[2] == other.provider_message_id != ids[0]


def test_a_bad_message_fails_alone(server: SmtpServer) -> None:
    ch = channel(server)
    bad_address = outgoing("not-an-address")
    injected = outgoing("c@example.com", headers={"X-Tag": "a\r\nBcc: victim@example.com"})
    own = outgoing("d@example.com", headers={"Subject": "spoofed"})
    good = outgoing("ok@example.com")
    result = by_id(ch.send([bad_address, injected, own, good]))
    ch.close()

    assert result[bad_address.message_id].outcome is Outcome.UNREACHABLE
    assert result[injected.message_id].outcome is Outcome.FAILED
    assert "line break" in (result[injected.message_id].detail or "")
    assert result[own.message_id].outcome is Outcome.FAILED
    assert result[good.message_id].outcome is Outcome.SENT
    assert [m.rcpt_tos for m in server.messages] == [("ok@example.com",)]


def test_international_addresses(server: SmtpServer) -> None:
    ch = channel(server)
    idn = outgoing("hanako@例え.jp")
    utf8_local = outgoing("はなこ@example.jp")
    result = by_id(ch.send([idn, utf8_local]))
    ch.close()

    assert result[idn.message_id].outcome is Outcome.SENT
    assert result[utf8_local.message_id].outcome is Outcome.SENT
    received = {m.rcpt_tos[0]: m for m in server.messages}
    assert "hanako@xn--r8jz45g.jp" in received
    assert "SMTPUTF8" in received["はなこ@example.jp"].mail_options
    assert "SMTPUTF8" not in received["hanako@xn--r8jz45g.jp"].mail_options


def test_utf8_local_part_fails_without_smtputf8() -> None:
    with SmtpServer(smtputf8=False) as server:
        ch = channel(server)
        handover = send_one(ch, outgoing("はなこ@example.jp"))
        ch.close()
    assert handover.outcome is Outcome.FAILED
    assert "SMTPUTF8" in (handover.detail or "")


# --- DKIM -------------------------------------------------------------------------------------


def test_dkim_signature_verifies_and_covers_one_click_headers(
    server: SmtpServer, dkim_key: rsa.RSAPrivateKey
) -> None:
    ch = channel(server, key=dkim_key, feedback_id_prefix="kizuna")
    send_one(ch, outgoing())
    ch.close()

    data = server.messages[0].data
    assert dkim.verify(data, dnsfunc=dns_for(dkim_key))
    signature = dkim.util.parse_tag_value(dkim.rfc822_parse(data)[0][0][1].replace(b"\r\n", b""))
    assert signature[b"a"] == b"rsa-sha256"
    assert signature[b"c"] == b"relaxed/relaxed"
    assert (signature[b"d"], signature[b"s"]) == (b"shop.example.jp", b"k1")
    signed = {h.strip() for h in signature[b"h"].replace(b" ", b"").split(b":")}
    assert signed >= {
        b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
        b"content-type", b"list-unsubscribe", b"list-unsubscribe-post", b"feedback-id",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x=1"),
        (b"To: taro@example.com", b"To: jiro@example.com"),
        (b"<https://shop.example.jp/u/tok123>", b"<https://evil.example/u/tok123>"),
        (
            b"Content-Transfer-Encoding: base64\r\n\r\n5bGx",
            b"Content-Transfer-Encoding: base64\r\n\r\n5bGy",
        ),
    ],
)
def test_dkim_breaks_when_signed_content_is_altered(
    server: SmtpServer, dkim_key: rsa.RSAPrivateKey, old: bytes, new: bytes
) -> None:
    ch = channel(server, key=dkim_key)
    send_one(ch, outgoing())
    ch.close()

    data = server.messages[0].data
    assert old in data
    assert not dkim.verify(data.replace(old, new, 1), dnsfunc=dns_for(dkim_key))


def test_dkim_survives_refolding_but_not_an_added_unsubscribe_header(
    server: SmtpServer, dkim_key: rsa.RSAPrivateKey
) -> None:
    ch = channel(server, key=dkim_key)
    send_one(ch, outgoing())
    ch.close()

    data = server.messages[0].data
    dns = dns_for(dkim_key)
    refolded = data.replace(b"List-Unsubscribe: <https", b"List-Unsubscribe:\r\n    <https", 1)
    assert dkim.verify(refolded, dnsfunc=dns)
    added = b"List-Unsubscribe: <https://evil.example/u>\r\n" + data
    assert not dkim.verify(added, dnsfunc=dns)


def test_dkim_domain_and_pkcs8_keys(server: SmtpServer, dkim_key: rsa.RSAPrivateKey) -> None:
    pkcs8 = dkim_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    ch = channel(
        server,
        dkim_domain="mail.example.jp",
        dkim_selector="s2026",
        secrets={"dkim_private_key": pkcs8},
    )
    send_one(ch, outgoing())
    ch.close()

    name = b"s2026._domainkey.mail.example.jp."
    assert dkim.verify(server.messages[0].data, dnsfunc=dns_for(dkim_key, name))


# --- SMTP outcomes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "at", "outcome"),
    [
        ("450 4.2.1 Mailbox busy, try later", "rcpt", Outcome.RETRY),
        ("451 4.3.0 Temporary failure", "data", Outcome.RETRY),
        ("550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown", "rcpt",
         Outcome.UNREACHABLE),
        ("550 Requested action not taken: mailbox unavailable", "rcpt", Outcome.UNREACHABLE),
        ("552 5.2.2 Mailbox full", "rcpt", Outcome.FAILED),
        ("550 5.7.1 Message rejected as spam", "rcpt", Outcome.FAILED),
        ("554 5.6.0 Message content rejected", "data", Outcome.FAILED),
    ],
)  # fmt: skip
def test_replies_become_outcomes(server: SmtpServer, reply: str, at: str, outcome: Outcome) -> None:
    server.answer("gone@example.com", reply, at=at)  # type: ignore[arg-type]
    ch = channel(server, connections=1)
    target = outgoing("gone@example.com")
    others = [outgoing(f"ok{i}@example.com") for i in range(3)]
    result = by_id(ch.send([others[0], target, *others[1:]]))
    ch.close()

    assert result[target.message_id].outcome is outcome
    assert result[target.message_id].detail == reply
    assert result[target.message_id].provider_message_id is None
    assert all(result[m.message_id].outcome is Outcome.SENT for m in others)
    assert sorted(m.rcpt_tos[0] for m in server.messages) == [
        f"ok{i}@example.com" for i in range(3)
    ]
    assert server.sessions == 1  # a refusal does not cost the connection


def test_classify_by_stage() -> None:
    assert classify("mail", 553, "5.1.8 Sender address rejected") is Outcome.RETRY
    assert classify("data", 550, "Rejected") is Outcome.FAILED
    assert classify("rcpt", 550, "5.1.10 Recipient address has null MX") is Outcome.UNREACHABLE
    assert classify("rcpt", 550, "5.2.1 Mailbox disabled") is Outcome.UNREACHABLE
    assert classify("rcpt", 554, "Transaction failed") is Outcome.FAILED
    assert classify("data", 250, "2.0.0 OK") is Outcome.SENT


def test_server_down_means_retry_for_every_message() -> None:
    with SmtpServer() as stopped:
        port = stopped.port
    ch = channel(port=port, connections=2)
    messages = [outgoing(f"u{i}@example.com") for i in range(20)]
    handovers = ch.send(messages)
    ch.close()

    assert {h.message_id for h in handovers} == {m.message_id for m in messages}
    assert all(h.outcome is Outcome.RETRY and h.detail for h in handovers)
    assert "refused" in (handovers[0].detail or "").lower()


def test_a_refused_sender_is_retried_not_failed(server: SmtpServer) -> None:
    server.answer("news@shop.example.jp", "553 5.7.1 Sender address rejected", at="mail")
    ch = channel(server)
    handover = send_one(ch, outgoing())
    ch.close()
    assert handover.outcome is Outcome.RETRY
    assert handover.detail == "553 5.7.1 Sender address rejected"
    assert server.messages == []


# --- connections ------------------------------------------------------------------------------


def test_one_connection_serves_several_batches(server: SmtpServer) -> None:
    ch = channel(server, connections=1)
    for batch in range(3):
        handovers = ch.send([outgoing(f"b{batch}m{i}@example.com") for i in range(5)])
        assert all(h.outcome is Outcome.SENT for h in handovers)
    ch.close()

    assert len(server.messages) == 15
    assert server.sessions == 1
    assert {m.session for m in server.messages} == {1}


def test_a_batch_is_spread_over_the_connections_exactly_once(
    server: SmtpServer, dkim_key: rsa.RSAPrivateKey
) -> None:
    ch = channel(server, key=dkim_key, connections=3)
    messages = [outgoing(f"user{i}@example.com") for i in range(90)]
    first = ch.send(messages[:60])
    second = ch.send(messages[60:])
    ch.close()

    handovers = first + second
    assert sorted(str(h.message_id) for h in handovers) == sorted(
        str(m.message_id) for m in messages
    )
    assert all(h.outcome is Outcome.SENT for h in handovers)
    received = sorted(m.rcpt_tos[0] for m in server.messages)
    assert received == sorted(f"user{i}@example.com" for i in range(90))
    assert server.sessions == 3
    assert {m.session for m in server.messages} == {1, 2, 3}
    dns = dns_for(dkim_key)
    assert all(dkim.verify(m.data, dnsfunc=dns) for m in server.messages[:10])


def test_reconnects_after_the_server_closed_the_connection(server: SmtpServer) -> None:
    ch = channel(server, connections=1)
    assert send_one(ch, outgoing("a@example.com")).outcome is Outcome.SENT
    server.drop_connections()
    handover = send_one(ch, outgoing("b@example.com"))
    ch.close()

    assert handover.outcome is Outcome.SENT
    assert [m.rcpt_tos[0] for m in server.messages] == ["a@example.com", "b@example.com"]
    assert server.sessions == 2


def test_a_long_idle_connection_is_replaced(server: SmtpServer) -> None:
    ch = channel(server, connections=1)
    send_one(ch, outgoing("a@example.com"))
    ch._sessions[0].max_idle = 0.0  # every pause now counts as too long
    send_one(ch, outgoing("b@example.com"))
    ch.close()
    assert server.sessions == 2
    assert len(server.messages) == 2


def test_small_batches_use_one_connection(server: SmtpServer) -> None:
    ch = channel(server, connections=4)
    ch.send([outgoing(f"u{i}@example.com") for i in range(3)])
    ch.close()
    assert server.sessions == 1


# --- STARTTLS and AUTH ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A self-signed certificate for 127.0.0.1: (cert file, key file, cert PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kizuna test relay")])
    now = datetime.now(UTC)  # OpenSSL checks validity against the real clock, not ours
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    (folder / "cert.pem").write_text(cert_pem)
    (folder / "key.pem").write_text(pem(key))
    return folder / "cert.pem", folder / "key.pem", cert_pem


@pytest.fixture
def tls_server(tls_files: tuple[Path, Path, str]) -> Iterator[SmtpServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files[0], tls_files[1])
    with SmtpServer(tls_context=context, credentials=("relay-user", "s3cret")) as smtp:
        yield smtp


def test_starttls_and_auth(tls_server: SmtpServer, tls_files: tuple[Path, Path, str]) -> None:
    ch = channel(
        tls_server,
        starttls=True,
        ca_pem=tls_files[2],
        secrets={"username": "relay-user", "password": "s3cret"},
    )
    handover = send_one(ch, outgoing())
    ch.close()

    assert handover.outcome is Outcome.SENT
    assert parse(tls_server.messages[0])["Subject"] == SUBJECT


def test_wrong_password_or_untrusted_certificate_retries(
    tls_server: SmtpServer, tls_files: tuple[Path, Path, str]
) -> None:
    wrong = channel(
        tls_server,
        starttls=True,
        ca_pem=tls_files[2],
        secrets={"username": "relay-user", "password": "nope"},
    )
    untrusted = channel(tls_server, starttls=True, secrets={"username": "relay-user"})
    refused = wrong.send([outgoing("a@example.com"), outgoing("b@example.com")])
    unverified = send_one(untrusted, outgoing("c@example.com"))
    wrong.close()
    untrusted.close()

    assert [h.outcome for h in refused] == [Outcome.RETRY, Outcome.RETRY]
    assert (refused[0].detail or "").startswith("535")
    assert unverified.outcome is Outcome.RETRY
    assert "CERTIFICATE_VERIFY_FAILED" in (unverified.detail or "")
    assert tls_server.messages == []


def test_plain_text_is_never_a_fallback_for_starttls(server: SmtpServer) -> None:
    ch = channel(server, starttls=True)
    handover = send_one(ch, outgoing())
    ch.close()
    assert handover.outcome is Outcome.RETRY
    assert "STARTTLS" in (handover.detail or "")
    assert server.messages == []


# --- configuration ----------------------------------------------------------------------------


def test_registry_opens_the_smtp_channel(server: SmtpServer) -> None:
    config = ProviderConfig(
        "email", "smtp",
        {"host": "127.0.0.1", "port": server.port, "starttls": False,
         "from_address": "news@shop.example.jp"},
    )  # fmt: skip
    ch = open_registered(config)
    assert (ch.provider, ch.max_batch) == ("smtp", 200)
    assert send_one(cast(SmtpChannel, ch), outgoing()).outcome is Outcome.SENT
    ch.close()


@pytest.mark.parametrize(
    ("settings", "secrets", "field"),
    [
        ({"from_address": "news@shop.example.jp"}, {}, "settings.host"),
        ({"host": "h", "from_address": "nope"}, {}, "settings.from_address"),
        ({"host": "h", "from_address": "a@b.jp", "colour": "red"}, {}, "settings.colour"),
        ({"host": "h", "from_address": "a@b.jp"}, {"dkim_private_key": "x"},
         "settings.dkim_selector"),
        ({"host": "h", "from_address": "a@b.jp", "dkim_selector": "k"},
         {"dkim_private_key": "not a key"}, "secrets.dkim_private_key"),
    ],
)  # fmt: skip
def test_unusable_settings_are_refused(
    settings: dict[str, Any], secrets: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        open_channel(ProviderConfig("email", "smtp", settings, secrets))
    assert field in [p.field for p in caught.value.problems]


def test_a_dkim_key_must_be_rsa() -> None:
    ec_key = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    config = ProviderConfig(
        "email", "smtp",
        {"host": "h", "from_address": "a@b.jp", "dkim_selector": "k"},
        {"dkim_private_key": ec_key},
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="RSA"):
        open_channel(config)
