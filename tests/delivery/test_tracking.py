"""Open and click tracking: signed tokens, link rewriting, the pixel and the click redirect.

The helpers at the top (a customer with a sent message, a client on the public
routes) are shared by test_unsubscribe.py and test_preferences.py.
"""

from __future__ import annotations

import html as html_lib
import re
import uuid
from datetime import timedelta
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from kizuna.api import build_app
from kizuna.api import tracking as tracking_routes
from kizuna.delivery.settings import DeliverySettings, Sender, Topic, save_delivery_settings
from kizuna.domain.records import ConsentRecord, CustomerTraits, Identifiers
from kizuna.errors import InvalidInput
from kizuna.measurement.tokens import TokenKind, tokens_for
from kizuna.measurement.tracking import (
    classify_request,
    instrument_html,
    unsubscribe_links,
    unsubscribe_token_from_subject,
)
from kizuna.store.consent import record_consents
from kizuna.store.customers import apply_traits
from kizuna.store.identity import IdentityResolver
from kizuna.store.tables import customers, events, messages
from kizuna.store.types import new_id

PUBLIC = "https://shop.example.jp/kz"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
SETTINGS = DeliverySettings(
    public_url=PUBLIC,
    sender=Sender(
        name="絆コスメ",
        postal_address="東京都渋谷区1-2-3",
        contact="support@shop.example.jp",
        unsubscribe_mailto="unsubscribe@shop.example.jp",
    ),
    topics=[
        Topic(key="sale", name_ja="セール情報", name_en="Sales"),
        Topic(key="new_items", name_ja="新商品のお知らせ", name_en="New products"),
    ],
)


# --- Shared helpers -------------------------------------------------------------------


def make_client(db, ip: str = "203.0.113.7") -> TestClient:
    """A client on an app with the public tracking routes (added if build_app lacks them)."""
    app = build_app(db, "test-token")
    if not any(getattr(r, "path", "") == "/u/{token}" for r in app.routes):
        app.include_router(tracking_routes.router)
    return TestClient(app, client=(ip, 50000), follow_redirects=False)


def make_customer(scope_factory, clock, email: str = "hanako@example.jp", line: bool = False):
    """A customer opted in to email (and LINE, if asked), with delivery settings saved."""
    with scope_factory() as scope:
        save_delivery_settings(scope.conn, scope.workspace_id, SETTINGS)
        resolver = IdentityResolver(scope)
        ids = Identifiers(email=email, line_user_id="U123" if line else None)
        customer_id = resolver.resolve(ids, clock.now())
        resolver.flush()
        apply_traits(scope, customer_id, CustomerTraits(email=email, last_name="佐藤"))
        channels = ["email", "line"] if line else ["email"]
        record_consents(
            scope,
            resolver,
            [
                ConsentRecord(
                    customer={"email": email},
                    channel=channel,
                    status="opted_in",
                    occurred_at=clock.now() - timedelta(days=30),
                    method="checkout checkbox",
                )
                for channel in channels
            ],
        )
    return customer_id


def send_message(scope_factory, customer_id, *, source_kind: str = "campaign", key: str = "m1"):
    """A marketing email as the pipeline leaves it once sent: a ``messages`` row in ``sent``.

    Written directly rather than through ``store.messages.enqueue``, whose id
    lookup uses ``Result.tuples()`` (deprecated in SQLAlchemy 2.1, so it raises
    under ``-W error``).
    """
    with scope_factory() as scope:
        message_id = new_id()
        hashed = scope.conn.execute(
            sa.select(customers.c.email_hash).where(customers.c.customer_id == customer_id)
        ).scalar()
        scope.conn.execute(
            messages.insert().values(
                workspace_id=scope.workspace_id, message_id=message_id, customer_id=customer_id,
                idempotency_key=key, channel="email", purpose="marketing", topic="sale",
                template_key="spring", params={}, source_kind=source_kind,
                source_id="spring-sale", step="send", variant="A", status="sent", attempts=1,
                not_before=scope.now, provider="null", created_at=scope.now,
                sent_at=scope.now, updated_at=scope.now, address_hash=hashed,
            )
        )  # fmt: skip
    return message_id


def message_events(db, name: str) -> list[dict]:
    """Events of ``name``, oldest first."""
    with db.read() as conn:
        rows = conn.execute(
            sa.select(events).where(events.c.name == name).order_by(events.c.received_at)
        )
        return [dict(r._mapping) for r in rows]


@pytest.fixture
def sent(db, workspace, scope_factory, clock):
    """(workspace id, customer id, message id) of a sent campaign email."""
    customer_id = make_customer(scope_factory, clock)
    return workspace.workspace_id, customer_id, send_message(scope_factory, customer_id)


@pytest.fixture
def client(db):
    with make_client(db) as http:
        yield http


def _sign(db, kind, workspace_id, subject_id, extra="", expires_at=None):
    return tokens_for(db.cipher).sign(kind, workspace_id, subject_id, extra, expires_at)


# --- Tokens ---------------------------------------------------------------------------


def test_tokens_round_trip_and_reject_forgery_truncation_kind_and_expiry(db, clock):
    tokens = tokens_for(db.cipher)
    ws, subject = uuid.uuid4(), uuid.uuid4()
    token = tokens.sign(TokenKind.CLICK, ws, subject, "https://shop.example.jp/item?id=1&c=春")
    claims = tokens.verify(token, TokenKind.CLICK, clock.now())
    assert (claims.workspace_id, claims.subject_id) == (ws, subject)
    assert claims.extra == "https://shop.example.jp/item?id=1&c=春"
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    flipped = token[:30] + ("A" if token[30] != "A" else "B") + token[31:]
    for bad in (flipped, token[:-2], token + "A", "", "%%%", "a" * 100):
        with pytest.raises(InvalidInput) as caught:
            tokens.verify(bad, TokenKind.CLICK, clock.now())
        assert caught.value.code == "invalid_token"
    with pytest.raises(InvalidInput):  # same purpose key, other kind
        tokens.verify(token, TokenKind.OPEN, clock.now())
    with pytest.raises(InvalidInput):  # other purpose key
        tokens.verify(token, TokenKind.UNSUBSCRIBE, clock.now())
    short = tokens.sign(TokenKind.FORM, ws, subject, expires_at=clock.now() + timedelta(hours=1))
    assert tokens.verify(short, TokenKind.FORM, clock.now()).expires_at is not None
    with pytest.raises(InvalidInput) as caught:
        tokens.verify(short, TokenKind.FORM, clock.now() + timedelta(hours=2))
    assert caught.value.code == "expired_token"


# --- Link rewriting -------------------------------------------------------------------

EMAIL_HTML = """<!DOCTYPE html>
<html><head><style>a[href^="http"] {{ color: red; }}</style></head>
<body>
<!-- <a href="https://commented.example/">old</a> -->
<p>春の<a class="btn" href="https://shop.example.jp/sale?utm=mail&amp;id=7" >セール</a></p>
<p><A HREF='http://shop.example.jp/new'>new</A> <a href=https://bare.example/x>bare</a></p>
<p><a title=" href=https://fake.example/" href="https://real.example/">tricky</a></p>
<a href="mailto:support@shop.example.jp">mail</a> <a href="tel:0312345678">tel</a>
<a href="#top">top</a> <a href="/relative">rel</a> <a name="x">anchor</a>
<a href="https://keep.example/" data-kizuna-track="off">keep</a>
<a href="{unsub}">配信停止</a> <a href="{prefs}">配信設定</a>
<script>var s = '<a href="https://script.example/">';</script>
</body></html>"""


def _rewritten(db, message_id, ws):
    links = unsubscribe_links(SETTINGS, db.cipher, ws, message_id, uuid.uuid4())
    source = EMAIL_HTML.format(unsub=links.unsubscribe_url, prefs=links.preferences_url)
    out = instrument_html(source, message_id, ws, PUBLIC, db.cipher, skip_urls=links.skip_urls())
    return source, out


def test_instrument_html_rewrites_only_http_links_and_keeps_the_rest_byte_identical(db, clock):
    ws, message_id = uuid.uuid4(), uuid.uuid4()
    source, out = _rewritten(db, message_id, ws)
    tracked = re.findall(re.escape(PUBLIC) + r"/t/c/([A-Za-z0-9_-]+)", out)
    destinations = [
        tokens_for(db.cipher).verify(t, TokenKind.CLICK, clock.now()).extra for t in tracked
    ]
    assert destinations == [
        "https://shop.example.jp/sale?utm=mail&id=7",  # entity decoded: the real destination
        "http://shop.example.jp/new",
        "https://bare.example/x",
        "https://real.example/",
    ]
    for untouched in ("mailto:", "tel:", "#top", "/relative", "keep.example", "script.example"):
        assert untouched in out
    assert "commented.example" in out and 'title=" href=https://fake.example/"' in out
    assert out.count("/u/") == 1 and out.count("/p/") == 1  # unsubscribe links not wrapped
    # Undo the rewrite and drop the pixel: what is left is the original, byte for byte.
    pixel = re.search(r'<img src="[^"]*/t/o/[^"]*\.gif"[^>]*>', out)
    assert pixel and out.index(pixel.group()) < out.index("</body>")
    restored = out.replace(pixel.group(), "")
    originals = iter(
        [
            "https://shop.example.jp/sale?utm=mail&amp;id=7",
            "http://shop.example.jp/new",
            "https://bare.example/x",
            "https://real.example/",
        ]
    )
    restored = re.sub(
        re.escape(PUBLIC) + r"/t/c/[A-Za-z0-9_-]+", lambda _: next(originals), restored
    )
    assert restored == source


class _Anchors(HTMLParser):
    """The standard library's reading of a document's <a href> values: the oracle."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        values = dict(reversed(attrs))  # browsers keep the first of a repeated attribute
        if tag == "a" and values.get("href") and values.get("data-kizuna-track") != "off":
            self.hrefs.append(values["href"])

    handle_startendtag = handle_starttag


TRICKY = [
    '<a href="https://a.example/1">x</a>\r\n<A\r\n  HREF="https://a.example/2"\r\n>y</A>',
    "<img alt=\"<a href='https://inside-alt.example/'>\" src=x><a href='https://a.example/3'/>",
    '<a href="https://first.example/" href="https://second.example/">dup</a>',
    '<style>/* <a href="https://style.example/"> */</style><a data-x=">" href="https://b.example/">',
    "<p>1 < 2 and <b>bold</b></p><a href=https://c.example/?q=1&amp;r=2>c</a>",
    '<textarea><a href="https://textarea.example/"></textarea><a href="https://d.example/">d</a>',
    '<a href="https://e.example/">e</a><!-- unterminated <a href="https://f.example/">',
]


@pytest.mark.parametrize("document", TRICKY)
def test_instrument_html_finds_the_links_the_html_parser_finds(db, clock, document):
    ws, message_id = uuid.uuid4(), uuid.uuid4()
    out = instrument_html(document, message_id, ws, PUBLIC, db.cipher, track_opens=False)
    tracked = re.findall(re.escape(PUBLIC) + r"/t/c/([A-Za-z0-9_-]+)", out)
    found = [tokens_for(db.cipher).verify(t, TokenKind.CLICK, clock.now()).extra for t in tracked]
    oracle = _Anchors()
    oracle.feed(document)
    oracle.close()
    textarea = [h for h in oracle.hrefs if "textarea" not in h]  # html.parser reads into it
    assert found == textarea
    assert out.count("example/") == document.count("example/") - len(found)


def test_instrument_html_can_skip_opens_or_clicks(db):
    ws, message_id = uuid.uuid4(), uuid.uuid4()
    page = '<p><a href="https://shop.example.jp/">shop</a></p>'
    assert instrument_html(page, message_id, ws, PUBLIC, db.cipher, False, False) == page
    opens_only = instrument_html(page, message_id, ws, PUBLIC, db.cipher, True, False)
    assert opens_only.startswith(page) and "/t/o/" in opens_only  # no </body>: appended
    clicks_only = instrument_html(page, message_id, ws, PUBLIC, db.cipher, False, True)
    assert "/t/c/" in clicks_only and "/t/o/" not in clicks_only


def test_unsubscribe_links_give_rfc8058_headers_and_template_context(db, clock):
    ws, message_id, customer_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    links = unsubscribe_links(SETTINGS, db.cipher, ws, message_id, customer_id)
    assert links.unsubscribe_url.startswith(f"{PUBLIC}/u/")
    assert links.preferences_url.startswith(f"{PUBLIC}/p/")
    headers = links.headers()
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click, mailto = headers["List-Unsubscribe"].split(", ")
    assert one_click == f"<{links.unsubscribe_url}>"
    assert mailto.startswith("<mailto:unsubscribe@shop.example.jp?subject=unsubscribe-")
    token = unsubscribe_token_from_subject(
        "Re: unsubscribe-" + mailto.split("unsubscribe-")[1][:-1]
    )
    claims = tokens_for(db.cipher).verify(token, TokenKind.UNSUBSCRIBE, clock.now())
    assert claims.subject_id == message_id
    assert set(links.context()) == {"unsubscribe_url", "preferences_url", "unsubscribe_mailto"}
    plain = DeliverySettings(public_url=PUBLIC)
    bare = unsubscribe_links(plain, db.cipher, ws, message_id, customer_id)
    assert bare.headers()["List-Unsubscribe"] == f"<{bare.unsubscribe_url}>"
    assert bare.unsubscribe_mailto is None


# --- Machine opens --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "ip", "seconds", "machine", "reason"),
    [
        (CHROME, "203.0.113.7", 3600, False, None),
        ("Mozilla/5.0", "198.51.100.1", 5, True, "apple_mpp"),
        (CHROME, "17.58.63.2", 3600, True, "apple_network"),
        ("", None, 3600, True, "no_user_agent"),
        ("Mozilla/5.0 (compatible; Barracuda Sentinel)", None, 3600, True, "scanner"),
        ("python-requests/2.32", None, 3600, True, "scanner"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1)", None, 3600, True, "scanner"),
        ("Mozilla/5.0 (Linux; Android 10; CUBOT X30) Chrome/120.0", None, 3600, False, None),
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
            "GoogleImageProxy)",
            None,
            10,
            True,
            "proxy_prefetch",
        ),
        ("Mozilla/5.0 (via ggpht.com GoogleImageProxy)", None, 600, False, None),
    ],
)
def test_machine_opens_are_told_from_people(clock, agent, ip, seconds, machine, reason):
    sent_at = clock.now() - timedelta(seconds=seconds)
    verdict = classify_request(agent, ip, sent_at, clock.now())
    assert (verdict.machine, verdict.reason) == (machine, reason)


# --- The pixel ------------------------------------------------------------------------


def test_pixel_is_a_no_store_gif_and_records_one_open_per_hour(db, client, sent, clock):
    ws, customer_id, message_id = sent
    clock.advance(timedelta(minutes=30))
    token = _sign(db, TokenKind.OPEN, ws, message_id)
    answer = client.get(f"/t/o/{token}.gif", headers={"User-Agent": CHROME})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    assert "no-store" in answer.headers["cache-control"]
    assert answer.content.startswith(b"GIF89a") and answer.content[6:10] == b"\x01\x00\x01\x00"
    client.get(f"/t/o/{token}.gif", headers={"User-Agent": CHROME})  # a refresh
    (opened,) = message_events(db, "Message Opened")
    assert opened["customer_id"] == customer_id
    props = opened["properties"]
    assert props["machine"] is False
    assert props["message_id"] == str(message_id)
    assert (props["source"], props["source_id"], props["variant"]) == (
        "campaign",
        "spring-sale",
        "A",
    )
    clock.advance(timedelta(hours=2))
    client.get(f"/t/o/{token}.gif", headers={"User-Agent": CHROME})  # read again later
    assert len(message_events(db, "Message Opened")) == 2
    with db.read() as conn:
        status, delivered_at = conn.execute(
            sa.select(messages.c.status, messages.c.delivered_at)
        ).one()
    assert status == "sent" and delivered_at is not None  # an open proves delivery


def test_machine_open_is_flagged_and_counted_once(db, sent):
    ws, _, message_id = sent
    token = _sign(db, TokenKind.OPEN, ws, message_id)
    with make_client(db, ip="17.58.1.1") as apple:
        for _ in range(3):
            assert (
                apple.get(f"/t/o/{token}.gif", headers={"User-Agent": "Mozilla/5.0"}).status_code
                == 200
            )
    (opened,) = message_events(db, "Message Opened")
    assert opened["properties"]["machine"] is True
    assert opened["properties"]["machine_reason"] == "apple_mpp"


def test_head_requests_and_test_sends_record_nothing(db, client, sent, scope_factory):
    ws, customer_id, message_id = sent
    token = _sign(db, TokenKind.OPEN, ws, message_id)
    assert client.head(f"/t/o/{token}.gif", headers={"User-Agent": CHROME}).status_code == 200
    test_id = send_message(scope_factory, customer_id, source_kind="test", key="seed-1")
    test_token = _sign(db, TokenKind.OPEN, ws, test_id)
    assert client.get(f"/t/o/{test_token}.gif", headers={"User-Agent": CHROME}).status_code == 200
    assert message_events(db, "Message Opened") == []


def test_forged_pixel_token_gets_an_error_page(db, client, sent):
    ws, _, message_id = sent
    token = _sign(db, TokenKind.OPEN, ws, message_id)
    answer = client.get(f"/t/o/{token[:-3]}.gif")
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert message_events(db, "Message Opened") == []


# --- Clicks ---------------------------------------------------------------------------


def test_click_redirects_to_the_signed_url_once_per_url(db, client, sent):
    ws, _, message_id = sent
    sale = "https://shop.example.jp/sale?utm_source=kizuna&id=7"
    token = _sign(db, TokenKind.CLICK, ws, message_id, sale)
    for _ in range(2):
        answer = client.get(f"/t/c/{token}", headers={"User-Agent": CHROME})
        assert answer.status_code == 302
        assert answer.headers["location"] == sale
    other = _sign(db, TokenKind.CLICK, ws, message_id, "https://shop.example.jp/new")
    assert client.get(f"/t/c/{other}", headers={"User-Agent": CHROME}).status_code == 302
    clicked = message_events(db, "Message Clicked")
    assert [c["properties"]["url"] for c in clicked] == [sale, "https://shop.example.jp/new"]
    assert all(c["properties"]["machine"] is False for c in clicked)


def test_rewritten_link_in_a_message_leads_to_its_destination(db, client, sent):
    ws, _, message_id = sent
    out = instrument_html(
        '<a href="https://shop.example.jp/a?x=1&amp;y=2">a</a>', message_id, ws, PUBLIC, db.cipher
    )
    path = re.search(r'href="' + re.escape(PUBLIC) + r'(/t/c/[^"]+)"', out).group(1)
    answer = client.get(path, headers={"User-Agent": CHROME})
    assert answer.headers["location"] == "https://shop.example.jp/a?x=1&y=2"


@pytest.mark.parametrize("how", ["forged", "truncated", "open-token", "unsubscribe-token"])
def test_bad_click_tokens_never_redirect(db, client, sent, how):
    ws, _, message_id = sent
    good = _sign(db, TokenKind.CLICK, ws, message_id, "https://evil.example/")
    token = {
        "forged": good[:20] + ("x" if good[20] != "x" else "y") + good[21:],
        "truncated": good[: len(good) // 2],
        "open-token": _sign(db, TokenKind.OPEN, ws, message_id, "https://evil.example/"),
        "unsubscribe-token": _sign(db, TokenKind.UNSUBSCRIBE, ws, message_id),
    }[how]
    answer = client.get(f"/t/c/{token}", headers={"Accept-Language": "en"})
    assert answer.status_code in (400, 404)
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert "This link does not work" in answer.text
    assert message_events(db, "Message Clicked") == []


def test_signed_non_http_destination_is_refused(db, client, sent):
    ws, _, message_id = sent
    token = _sign(db, TokenKind.CLICK, ws, message_id, "javascript:alert(1)")
    answer = client.get(f"/t/c/{token}")
    assert answer.status_code == 400 and "location" not in answer.headers
    assert "このリンクは使えません" in answer.text  # Japanese by default


def test_click_of_an_unknown_message_still_reaches_its_signed_url(db, client, sent):
    ws, _, _ = sent
    token = _sign(db, TokenKind.CLICK, ws, uuid.uuid4(), "https://shop.example.jp/")
    answer = client.get(f"/t/c/{token}")
    assert answer.status_code == 302 and answer.headers["location"] == "https://shop.example.jp/"
    assert message_events(db, "Message Clicked") == []


def test_error_page_escapes_nothing_it_should_not_show(db, client):
    answer = client.get("/t/c/%3Cscript%3Ealert(1)%3C")
    assert answer.status_code == 400
    assert "<script>" not in answer.text
    assert html_lib.escape("<script>") not in answer.text  # the token is never echoed
