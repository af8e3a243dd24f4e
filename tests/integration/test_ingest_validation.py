"""Bad input answers 400 with JSON naming the field; good messages of a batch still land."""

from __future__ import annotations

import base64
import gzip

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from kizuna.api import build_app
from kizuna.store.tables import events
from kizuna.store.workspaces import create_write_key


@pytest.fixture
def post(db, workspace):
    with db.write() as conn:
        key = create_write_key(conn, workspace.workspace_id, "test", db.clock.now())
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    with TestClient(build_app(db)) as client:

        def send(path, body=None, content=None, headers=None):
            return client.post(
                path, json=body, content=content, headers={**auth, **(headers or {})}
            )

        yield send


def stored(db):
    with db.read() as conn:
        return (
            conn.execute(sa.select(events.c.message_id).order_by(events.c.message_id))
            .scalars()
            .all()
        )


def test_malformed_json(post, db):
    answer = post("/v1/batch", content=b'{"batch": [', headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "malformed_json" and answer.json()["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "nope", "userId": "u"}, "batch[0].type"),
        ({"type": "track", "event": "X"}, "batch[0].userId"),
        ({"type": "track", "userId": None, "anonymousId": None, "event": "X"}, "batch[0].userId"),
        ({"type": "track", "userId": "u"}, "batch[0].event"),
        ({"type": "alias", "userId": "u"}, "batch[0].previousId"),
        ({"type": "alias", "previousId": "p", "anonymousId": "a"}, "batch[0].userId"),
        ({"type": "track", "userId": "u", "event": "X", "messageId": "m" * 101},
         "batch[0].messageId"),
        ({"type": "track", "userId": "u", "event": "X", "timestamp": "soon"}, "batch[0].timestamp"),
        ({"type": "identify", "userId": "u", "traits": {"email": "nope"}}, "batch[0].traits.email"),
        ({"type": "track", "userId": "u", "event": "X", "properties": {"p": "x" * 33_000}},
         "batch[0]"),
        ({"type": "track", "userId": "u", "event": "Order Completed",
          "properties": {"order_id": "O1", "products": [{"sku": "S", "price": -1}]}},
         "batch[0].properties.products[0].price"),
    ],
)  # fmt: skip
def test_bad_message_names_its_field(post, db, body, field):
    answer = post("/v1/batch", {"batch": [body]})
    assert answer.status_code == 400, answer.text
    data = answer.json()
    assert {"code", "message"} <= set(data)
    assert field in [e["field"] for e in data["errors"]]
    assert field in data["message"]
    assert stored(db) == []


def test_single_call_names_the_field_without_index(post):
    answer = post("/v1/track", {"anonymousId": "a"})
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["event"]


def test_good_messages_of_a_partly_bad_batch_are_committed(post, db):
    batch = [
        {"type": "track", "userId": "u", "event": "A", "messageId": "m0"},
        {"type": "track", "event": "B", "messageId": "m1"},
        {"type": "page", "anonymousId": "a", "messageId": "m2"},
        {"type": "track", "userId": "u", "messageId": "m3"},
    ]
    answer = post("/v1/batch", {"batch": batch})
    assert answer.status_code == 400
    data = answer.json()
    assert data["accepted"] == 2
    assert [e["field"] for e in data["errors"]] == ["batch[1].userId", "batch[3].event"]
    assert "2 accepted" in data["message"]
    assert stored(db) == ["m0", "m2"]


def test_null_anonymous_id_is_absent(post, db):
    body = {"batch": [{"type": "track", "userId": "u", "anonymousId": None, "event": "A"}]}
    assert post("/v1/batch", body).status_code == 200
    assert len(stored(db)) == 1


def test_batch_over_500kb_is_refused(post, db):
    item = {"type": "track", "userId": "u", "event": "A", "properties": {"p": "x" * 20_000}}
    answer = post("/v1/batch", {"batch": [item] * 30})
    assert answer.status_code == 400
    assert answer.json()["code"] == "too_large"
    assert stored(db) == []


def test_gzip_bomb_is_cut_at_the_limit(post, db):
    bomb = gzip.compress(b'{"batch": [' + b" " * 2_000_000 + b"]}")
    answer = post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "too_large"


def test_bad_gzip(post):
    answer = post(
        "/v1/batch", content=orjson.dumps({"batch": []}), headers={"Content-Encoding": "gzip"}
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_gzip"
