"""Both unsubscribe paths mark the message they came from (its unsubscribe rate)."""

from __future__ import annotations

import pytest

from kizuna.measurement.tracking import unsubscribe_links
from tests.delivery.test_preferences import _nonce
from tests.delivery.test_tracking import SETTINGS, make_client, make_customer, send_message
from tests.delivery.test_unsubscribe import ONE_CLICK
from tests.integration.attribution_rows import message_times


@pytest.fixture
def sent(db, workspace, scope_factory, clock):
    customer_id = make_customer(scope_factory, clock, line=True)
    message_id = send_message(scope_factory, customer_id)
    links = unsubscribe_links(SETTINGS, db.cipher, workspace.workspace_id, message_id, customer_id)
    return {"message_id": message_id, "links": links}


def _path(url: str) -> str:
    return url.removeprefix(SETTINGS.public_url)


def _unsubscribed_at(scope_factory, message_id):
    with scope_factory() as scope:
        return message_times(scope, message_id)["unsubscribed_at"]


def test_one_click_unsubscribe_marks_its_message(db, sent, scope_factory, clock):
    assert _unsubscribed_at(scope_factory, sent["message_id"]) is None
    with make_client(db) as client:
        path = _path(sent["links"].unsubscribe_url)
        client.post(path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert _unsubscribed_at(scope_factory, sent["message_id"]) == clock.now()


def test_leaving_in_the_preference_centre_marks_its_message(db, sent, scope_factory, clock):
    with make_client(db) as client:
        path = _path(sent["links"].preferences_url)
        page = client.get(path)
        client.post(path, data={"nonce": _nonce(page.text), "channel": ["line"]})
    assert _unsubscribed_at(scope_factory, sent["message_id"]) == clock.now()
