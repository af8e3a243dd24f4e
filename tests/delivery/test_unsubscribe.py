"""Unsubscribing: GET only asks, POST (RFC 8058 one-click or the page's form) opts out at once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from kizuna.measurement.tokens import TokenKind, tokens_for
from kizuna.measurement.tracking import unsubscribe_links
from kizuna.store.tables import consent_events, consents
from tests.delivery.test_tracking import (
    SETTINGS,
    make_client,
    make_customer,
    message_events,
    send_message,
)

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def sent(db, workspace, scope_factory, clock):
    customer_id = make_customer(scope_factory, clock)
    message_id = send_message(scope_factory, customer_id)
    links = unsubscribe_links(SETTINGS, db.cipher, workspace.workspace_id, message_id, customer_id)
    path = links.unsubscribe_url.removeprefix(SETTINGS.public_url)
    return {"customer_id": customer_id, "message_id": message_id, "path": path, "links": links}


@pytest.fixture
def client(db):
    with make_client(db, ip="203.0.113.7") as http:
        yield http


def _email_consent(db, customer_id):
    with db.read() as conn:
        return conn.execute(
            sa.select(consents.c.status).where(
                consents.c.customer_id == customer_id, consents.c.channel == "email"
            )
        ).scalar()


def _evidence(db, customer_id):
    with db.read() as conn:
        rows = conn.execute(
            sa.select(consent_events)
            .where(consent_events.c.customer_id == customer_id)
            .order_by(consent_events.c.occurred_at)
        )
        return [dict(r._mapping) for r in rows]


def test_get_asks_and_changes_nothing(db, client, sent):
    page = client.get(sent["path"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "no-store" in page.headers["cache-control"]
    assert '<html lang="ja">' in page.text and "配信を停止する" in page.text
    assert '<form method="post">' in page.text
    assert "h***@example.jp" in page.text and "hanako@example.jp" not in page.text  # masked
    assert _email_consent(db, sent["customer_id"]) == "opted_in"
    assert len(_evidence(db, sent["customer_id"])) == 1  # only the original opt-in
    assert message_events(db, "Unsubscribed") == []


def test_one_click_post_opts_out_at_once_with_evidence_and_no_redirect(db, client, sent):
    answer = client.post(sent["path"], content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert answer.status_code == 200
    assert "location" not in answer.headers
    assert "配信を停止しました" in answer.text
    assert _email_consent(db, sent["customer_id"]) == "opted_out"
    *_, evidence = _evidence(db, sent["customer_id"])
    assert evidence["status"] == "opted_out" and evidence["channel"] == "email"
    assert evidence["method"] == "one-click unsubscribe"
    assert evidence["ip"] == "203.0.113.7"
    assert evidence["source"] == str(sent["message_id"])
    assert evidence["wording"] == "List-Unsubscribe=One-Click"
    assert evidence["address_hash"] == db.cipher.lookup_hash("email", "hanako@example.jp")
    (event,) = message_events(db, "Unsubscribed")
    assert event["customer_id"] == sent["customer_id"]
    assert event["properties"]["channel"] == "email"
    assert event["properties"]["message_id"] == str(sent["message_id"])
    # A second POST (a retry, or the person again) adds no evidence and no event.
    again = client.post(sent["path"], content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert again.status_code == 200
    assert len(_evidence(db, sent["customer_id"])) == 2
    assert len(message_events(db, "Unsubscribed")) == 1
    assert "すでに停止されています" in client.get(sent["path"]).text


def test_multipart_one_click_post_works_too(db, client, sent):
    answer = client.post(sent["path"], files={"List-Unsubscribe": (None, "One-Click")})
    assert answer.status_code == 200
    assert _email_consent(db, sent["customer_id"]) == "opted_out"


def test_page_form_records_what_the_person_saw_in_english(db, client, sent):
    page = client.get(sent["path"], headers={"Accept-Language": "en-US,en;q=0.9,ja;q=0.5"})
    assert '<html lang="en">' in page.text and "Unsubscribe" in page.text
    answer = client.post(
        sent["path"],
        data={"List-Unsubscribe": "One-Click", "form": "page", "lang": "en"},
    )
    assert answer.status_code == 200
    assert "You are unsubscribed" in answer.text
    *_, evidence = _evidence(db, sent["customer_id"])
    assert evidence["method"] == "unsubscribe page"
    assert evidence["wording"] == "Stop email messages from 絆コスメ. [Unsubscribe]"


def test_japanese_is_the_default_and_lang_wins_over_accept_language(db, client, sent):
    assert '<html lang="ja">' in client.get(sent["path"]).text
    forced = client.get(sent["path"] + "?lang=ja", headers={"Accept-Language": "en"})
    assert '<html lang="ja">' in forced.text
    english = client.get(sent["path"] + "?lang=en", headers={"Accept-Language": "ja"})
    assert '<html lang="en">' in english.text


def test_forged_expired_and_unknown_tokens_get_pages_not_redirects(
    db, client, sent, workspace, clock
):
    ws = workspace.workspace_id
    tokens = tokens_for(db.cipher)
    good = sent["path"].removeprefix("/u/")
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    expiring = tokens.sign(
        TokenKind.UNSUBSCRIBE, ws, sent["message_id"], expires_at=clock.now() + timedelta(days=1)
    )
    assert client.get(f"/u/{expiring}").status_code == 200
    clock.advance(timedelta(days=2))
    unknown = tokens.sign(TokenKind.UNSUBSCRIBE, ws, uuid.uuid4())
    other_kind = tokens.sign(TokenKind.PREFERENCES, ws, sent["customer_id"])
    for token, status, text in [
        (forged, 400, "リンクが正しくない"),
        (expiring, 400, "有効期限が切れています"),
        (unknown, 404, "見つかりませんでした"),
        (other_kind, 400, "リンクが正しくない"),
    ]:
        for answer in (
            client.get(f"/u/{token}"),
            client.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK),
        ):
            assert answer.status_code == status
            assert "location" not in answer.headers
            assert text in answer.text
    assert _email_consent(db, sent["customer_id"]) == "opted_in"


def test_unsubscribing_from_a_test_send_changes_nothing(db, client, sent, scope_factory, workspace):
    test_id = send_message(scope_factory, sent["customer_id"], source_kind="test", key="seed")
    ws = workspace.workspace_id
    links = unsubscribe_links(SETTINGS, db.cipher, ws, test_id, sent["customer_id"])
    path = links.unsubscribe_url.removeprefix(SETTINGS.public_url)
    answer = client.post(path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert answer.status_code == 200 and "テスト配信" in answer.text
    assert _email_consent(db, sent["customer_id"]) == "opted_in"
    assert message_events(db, "Unsubscribed") == []
