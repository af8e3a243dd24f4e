"""The preference centre (channels and topics, ja/en) and the topic store the pipeline reads."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from kizuna.errors import InvalidInput
from kizuna.measurement.tracking import unsubscribe_links
from kizuna.store.preferences import (
    ConsentEvidence,
    read_preferences,
    set_channel_consents,
    set_preferences,
    subscribed_topics,
    unsubscribed_topics,
)
from kizuna.store.tables import consent_events, consents
from tests.delivery.test_tracking import (
    SETTINGS,
    make_client,
    make_customer,
    message_events,
    send_message,
)


@pytest.fixture
def shopper(db, workspace, scope_factory, clock):
    customer_id = make_customer(scope_factory, clock, line=True)
    message_id = send_message(scope_factory, customer_id)
    links = unsubscribe_links(SETTINGS, db.cipher, workspace.workspace_id, message_id, customer_id)
    path = links.preferences_url.removeprefix(SETTINGS.public_url)
    return {"customer_id": customer_id, "message_id": message_id, "path": path}


@pytest.fixture
def client(db):
    with make_client(db, ip="198.51.100.23") as http:
        yield http


def _nonce(page: str) -> str:
    return re.search(r'name="nonce" value="([^"]+)"', page).group(1)


def _checked(page: str, name: str) -> set[str]:
    found = re.findall(rf'name="{name}" value="([^"]+)"( checked)?', page)
    return {value for value, checked in found if checked}


def _status(db, customer_id) -> dict[str, str]:
    with db.read() as conn:
        return dict(
            conn.execute(
                sa.select(consents.c.channel, consents.c.status).where(
                    consents.c.customer_id == customer_id
                )
            ).all()
        )


# --- The store ------------------------------------------------------------------------


def test_topics_are_subscribed_until_left(scope_factory, clock):
    alice = make_customer(scope_factory, clock, email="alice@example.jp")
    bob = make_customer(scope_factory, clock, email="bob@example.jp")
    with scope_factory() as scope:
        assert set_preferences(scope, alice, {"sale": False, "new_items": True}, "test") == ["sale"]
        assert set_preferences(scope, alice, {"sale": False}) == []  # no change, no write
        assert unsubscribed_topics(scope, [alice, bob]) == {alice: frozenset({"sale"})}
        assert subscribed_topics(scope, [alice, bob], ["sale", "new_items"]) == {
            alice: frozenset({"new_items"}),
            bob: frozenset({"sale", "new_items"}),
        }
        assert set_preferences(scope, alice, {"sale": True}) == ["sale"]
        assert unsubscribed_topics(scope, [alice]) == {}


def test_channel_consents_write_evidence_only_on_change(db, scope_factory, clock):
    customer_id = make_customer(scope_factory, clock, line=True)
    evidence = ConsentEvidence("preference centre", "文言", "preference centre", "198.51.100.1")
    with scope_factory() as scope:
        prefs = read_preferences(scope, customer_id)
        assert prefs.channels == {"email": "opted_in", "line": "opted_in"}
        assert prefs.addresses == {"email": "h***@example.jp"}
        changed = set_channel_consents(scope, customer_id, {"email": True, "line": False}, evidence)
        assert changed == {"line": "opted_out"}
        assert set_channel_consents(scope, customer_id, {"line": False}, evidence) == {}
        with pytest.raises(InvalidInput):
            set_channel_consents(scope, customer_id, {"fax": True}, evidence)
    assert _status(db, customer_id) == {"email": "opted_in", "line": "opted_out"}


# --- The hosted page ------------------------------------------------------------------


def test_preference_centre_shows_channels_and_topics_in_japanese(client, shopper):
    page = client.get(shopper["path"])
    assert page.status_code == 200
    assert '<html lang="ja">' in page.text
    assert "配信設定" in page.text and "セール情報" in page.text and "新商品のお知らせ" in page.text
    assert "メール" in page.text and "LINE" in page.text
    assert _checked(page.text, "channel") == {"email", "line"}
    assert _checked(page.text, "topic") == {"sale", "new_items"}
    assert "h***@example.jp" in page.text and "hanako@" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_preference_centre_round_trip_in_english(db, client, shopper):
    page = client.get(shopper["path"], headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in page.text and "Sales" in page.text and "New products" in page.text
    saved = client.post(
        shopper["path"],
        data={
            "nonce": _nonce(page.text),
            "lang": "en",
            "channel": ["line"],
            "topic": ["new_items"],
        },
    )
    assert saved.status_code == 200 and "location" not in saved.headers
    assert "Your preferences are saved." in saved.text
    assert _checked(saved.text, "channel") == {"line"}
    assert _checked(saved.text, "topic") == {"new_items"}
    assert _status(db, shopper["customer_id"]) == {"email": "opted_out", "line": "opted_in"}
    with db.read() as conn:
        evidence = conn.execute(
            sa.select(consent_events).where(consent_events.c.status == "opted_out")
        ).one()
    assert evidence.method == "preference centre"
    assert evidence.ip == "198.51.100.23"
    assert evidence.source == str(shopper["message_id"])
    assert evidence.wording == "I want to hear from 絆コスメ through the ways I ticked."
    (event,) = message_events(db, "Unsubscribed")
    assert event["properties"]["channel"] == "email"
    assert event["properties"]["method"] == "preference centre"


def test_preference_centre_round_trip_in_japanese_and_back(db, client, shopper, scope_factory):
    page = client.get(shopper["path"])
    client.post(shopper["path"], data={"nonce": _nonce(page.text), "channel": ["email", "line"]})
    with scope_factory() as scope:
        assert unsubscribed_topics(scope, [shopper["customer_id"]]) == {
            shopper["customer_id"]: frozenset({"sale", "new_items"})
        }
    again = client.get(shopper["path"])
    assert _checked(again.text, "topic") == set()
    saved = client.post(
        shopper["path"],
        data={"nonce": _nonce(again.text), "channel": ["email", "line"], "topic": ["sale"]},
    )
    assert "設定を保存しました" in saved.text
    with scope_factory() as scope:
        assert subscribed_topics(scope, [shopper["customer_id"]], ["sale", "new_items"]) == {
            shopper["customer_id"]: frozenset({"sale"})
        }
    assert _status(db, shopper["customer_id"]) == {"email": "opted_in", "line": "opted_in"}
    assert message_events(db, "Unsubscribed") == []


def test_form_needs_its_own_fresh_nonce(db, client, shopper, scope_factory, clock, workspace):
    other = make_customer(scope_factory, clock, email="other@example.jp")
    other_message = send_message(scope_factory, other, key="m2")
    ws = workspace.workspace_id
    other_links = unsubscribe_links(SETTINGS, db.cipher, ws, other_message, other)
    other_page = client.get(other_links.preferences_url.removeprefix(SETTINGS.public_url))
    stale = _nonce(client.get(shopper["path"]).text)
    for nonce in ("", "bogus", _nonce(other_page.text)):
        answer = client.post(shopper["path"], data={"nonce": nonce, "channel": []})
        assert answer.status_code == 400 and "リンクが正しくない" in answer.text
    clock.advance(timedelta(hours=13))
    expired = client.post(shopper["path"], data={"nonce": stale})
    assert expired.status_code == 400 and "有効期限が切れています" in expired.text
    assert _status(db, shopper["customer_id"]) == {"email": "opted_in", "line": "opted_in"}


def test_forged_preference_token_gets_an_error_page(client, shopper):
    forged = shopper["path"][:-3] + "xyz"
    answer = client.get(forged, headers={"Accept-Language": "en"})
    assert answer.status_code == 400 and "This link does not work" in answer.text
    assert "location" not in answer.headers
