"""The read API: profiles and timelines behind the operator token, masked by default."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kizuna.api import build_app

AUTH = {"Authorization": "Bearer test-token"}


@pytest.fixture
def client(db):
    with TestClient(build_app(db, "test-token")) as http:
        yield http


def test_profile_is_masked_unless_revealed(client, hanako):
    masked = client.get("/api/workspaces/shop/customers/C100", headers=AUTH).json()
    assert masked["masked"] is True
    assert masked["traits"]["email"] == "h***@example.jp"
    assert masked["traits"]["phone"] == "080-****-5678"
    assert masked["traits"]["prefecture"] == "東京都"
    assert masked["order_count"] == 2
    assert masked["revenue"] == 6600
    assert masked["merged_from"] == [str(hanako["anonymous"])]
    clear = client.get(
        "/api/workspaces/shop/customers/hanako@example.jp", params={"reveal": True}, headers=AUTH
    ).json()
    assert clear["traits"]["email"] == "hanako@example.jp"
    assert clear["customer_id"] == str(hanako["customer_id"])


def test_timeline_lists_orders_and_consent_newest_first(client, hanako):
    body = client.get("/api/workspaces/shop/customers/C100/timeline", headers=AUTH).json()
    assert body["time_zone"] == "Asia/Tokyo"
    kinds = [(e["kind"], e["title"]) for e in body["entries"]]
    assert kinds == [("order", "Order O-2"), ("order", "Order O-1"), ("consent", "email opted_in")]


def test_read_api_needs_the_token(client, hanako):
    assert client.get("/api/workspaces/shop/customers/C100").status_code == 401
    wrong = client.get("/api/workspaces/shop/customers/C100", headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "unauthorized"


def test_unknown_customer_and_workspace_are_404_with_json(client, hanako):
    missing = client.get("/api/workspaces/shop/customers/nobody@example.jp", headers=AUTH)
    assert missing.status_code == 404
    assert set(missing.json()) == {"code", "message"}
    assert client.get("/api/workspaces/nope/customers/C100", headers=AUTH).status_code == 404


def test_openapi_docs_are_served(client):
    schema = client.get("/openapi.json").json()
    assert "/api/workspaces/{workspace}/customers/{ref}" in schema["paths"]
    assert client.get("/docs").status_code == 200
