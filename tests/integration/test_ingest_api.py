"""The Segment-spec HTTP edge: auth, validation, idempotency, clock skew, identity, gzip."""

from __future__ import annotations

import base64
import gzip
from datetime import timedelta

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from kizuna.api import build_app
from kizuna.store.tables import customer_merges, customers, events, identities
from kizuna.store.workspaces import create_write_key


@pytest.fixture
def write_key(db, workspace):
    with db.write() as conn:
        return create_write_key(conn, workspace.workspace_id, "test", db.clock.now())


@pytest.fixture
def client(db):
    with TestClient(build_app(db)) as c:
        yield c


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def rows(db, table=events):
    with db.read() as conn:
        return conn.execute(sa.select(table)).all()


def test_each_call_type_is_stored_once_with_basic_auth(client, write_key, db):
    calls = {
        "identify": {"userId": "C1", "traits": {"plan": "gold"}},
        "track": {"userId": "C1", "event": "Signed Up", "properties": {"source": "ad"}},
        "page": {"anonymousId": "a1", "name": "Home"},
        "screen": {"userId": "C1", "name": "Cart"},
        "group": {"userId": "C1", "groupId": "G1", "traits": {"industry": "retail"}},
        "alias": {"userId": "C1", "previousId": "a1"},
    }
    for kind, body in calls.items():
        answer = client.post(f"/v1/{kind}", json=body, headers=basic(write_key))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"success": True}
    stored = rows(db)
    assert sorted(r.type for r in stored) == sorted(calls)
    assert len({r.customer_id for r in stored}) == 1  # the alias merged a1 into C1
    names = {r.type: r.name for r in stored}
    assert names["track"] == "Signed Up" and names["page"] == "Home"


def test_write_key_in_body_is_accepted(client, write_key, db):
    answer = client.post("/v1/track", json={"writeKey": write_key, "userId": "C1", "event": "X"})
    assert answer.status_code == 200
    assert len(rows(db)) == 1


@pytest.mark.parametrize("headers", [{}, basic("kz_wrong"), {"Authorization": "Basic !!!"}])
def test_missing_or_wrong_key_is_401_json(client, write_key, db, headers):
    answer = client.post("/v1/track", json={"userId": "C1", "event": "X"}, headers=headers)
    assert answer.status_code == 401
    assert set(answer.json()) >= {"code", "message"}
    assert rows(db) == []


def test_retried_batch_changes_nothing(client, write_key, db):
    batch = {"batch": [
        {"type": "identify", "messageId": "m1", "anonymousId": "a1", "traits": {"plan": "x"}},
        {"type": "track", "messageId": "m2", "anonymousId": "a1", "event": "Viewed"},
    ]}  # fmt: skip
    assert client.post("/v1/batch", json=batch, headers=basic(write_key)).status_code == 200
    before = (rows(db), rows(db, customers), rows(db, identities))
    assert client.post("/v1/batch", json=batch, headers=basic(write_key)).status_code == 200
    assert (rows(db), rows(db, customers), rows(db, identities)) == before
    assert len(before[0]) == 2


def test_missing_message_id_is_generated(client, write_key, db):
    body = {"userId": "C1", "event": "X"}
    for _ in range(2):
        client.post("/v1/track", json=body, headers=basic(write_key))
    ids = [r.message_id for r in rows(db)]
    assert len(ids) == 2 and ids[0] != ids[1] and all(ids)


def test_timestamp_is_corrected_for_clock_skew(client, write_key, db, clock):
    received = clock.now()
    device_now = received + timedelta(hours=3)  # the device's clock runs 3 h fast
    body = {
        "userId": "C1", "event": "X", "messageId": "skew",
        "timestamp": (device_now - timedelta(minutes=5)).isoformat(),
        "sentAt": device_now.isoformat(),
    }  # fmt: skip
    assert client.post("/v1/track", json=body, headers=basic(write_key)).status_code == 200
    body2 = {"userId": "C1", "event": "X", "messageId": "plain"}
    client.post("/v1/track", json=body2, headers=basic(write_key))
    at = {r.message_id: r for r in rows(db)}
    assert at["skew"].occurred_at == received - timedelta(minutes=5)
    assert at["skew"].received_at == received
    assert at["plain"].occurred_at == received


def test_batch_sent_at_and_original_timestamp(client, write_key, db, clock):
    received = clock.now()
    device = received - timedelta(days=1)
    batch = {"sentAt": device.isoformat(), "batch": [
        {"type": "track", "userId": "C1", "event": "X", "messageId": "o",
         "originalTimestamp": (device - timedelta(seconds=30)).isoformat()},
    ]}  # fmt: skip
    assert client.post("/v1/batch", json=batch, headers=basic(write_key)).status_code == 200
    assert rows(db)[0].occurred_at == received - timedelta(seconds=30)


def test_identify_after_anonymous_activity_merges(client, write_key, db):
    client.post("/v1/identify", json={"userId": "C9"}, headers=basic(write_key))
    client.post(
        "/v1/track", json={"anonymousId": "a9", "event": "Viewed"}, headers=basic(write_key)
    )
    anon = next(r.customer_id for r in rows(db) if r.type == "track")
    client.post(
        "/v1/identify",
        json={"anonymousId": "a9", "userId": "C9", "traits": {"email": "x@example.com"}},
        headers=basic(write_key),
    )
    owners = {r.customer_id for r in rows(db)}
    assert len(owners) == 1
    with db.read() as conn:
        merges = conn.execute(sa.select(customer_merges)).all()
        kinds = conn.execute(sa.select(identities.c.kind).order_by(identities.c.kind)).scalars()
        assert sorted(kinds) == ["anonymous_id", "email", "user_id"]
    assert owners.pop() != anon
    assert [(m.from_customer_id, m.reason) for m in merges] == [(anon, "identifiers matched")]


def test_identify_traits_reach_the_profile(client, write_key, db):
    traits = {
        "email": "Hanako@Example.com", "phone": "090-1234-5678", "firstName": "花子",
        "lastName": "山田", "firstNameKana": "ハナコ", "lastNameKana": "ヤマダ", "gender": "female",
        "birthday": "1990-05-12", "plan": "gold",
        "address": {"postalCode": "1500001", "state": "東京都", "city": "渋谷区",
                    "street": "神宮前1-1"},
    }  # fmt: skip
    answer = client.post(
        "/v1/identify", json={"userId": "C1", "traits": traits}, headers=basic(write_key)
    )
    assert answer.status_code == 200, answer.text
    (profile,) = rows(db, customers)
    assert (profile.prefecture, profile.city, profile.gender) == ("東京都", "渋谷区", "female")
    assert profile.birth_md == "05-12" and profile.attributes == {"plan": "gold"}
    assert db.cipher.decrypt(profile.email_enc) == "hanako@example.com"
    assert db.cipher.decrypt(profile.phone_enc) == "+819012345678"
    assert db.cipher.decrypt(profile.first_name_kana_enc) == "ハナコ"
    assert db.cipher.decrypt(profile.postal_code_enc) == "150-0001"
    assert db.cipher.decrypt(profile.address_enc) == "神宮前1-1"
    (event,) = rows(db)
    assert event.properties == {"gender": "female", "plan": "gold"}  # no personal keys


def test_gzip_body_is_accepted(client, write_key, db):
    body = gzip.compress(orjson.dumps({"batch": [{"type": "track", "userId": "C1", "event": "Z"}]}))
    headers = {**basic(write_key), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert client.post("/v1/batch", content=body, headers=headers).status_code == 200
    assert [r.name for r in rows(db)] == ["Z"]
