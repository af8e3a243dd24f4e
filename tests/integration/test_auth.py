"""Sign-in, sessions, CSRF, lock-out, API tokens, allow-lists — and what each writes to the log."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from kizuna.api import build_app
from kizuna.security import accounts
from kizuna.security.sessions import SIGN_IN_FAILED
from kizuna.store.operation_log import verify_log
from kizuna.store.tables import operation_log
from kizuna.store.tables_access import sessions, users
from tests.integration.access_people import ADMIN, OPERATOR_TOKEN

PASSWORD = "correct horse battery staple"
EMAIL = "Hanako.Staff@Shop.Example.jp"
INSIDE = ("203.0.113.5", 50000)
OUTSIDE = ("198.51.100.7", 50000)


def _client(db, *, client=INSIDE, base_url="http://testserver") -> TestClient:
    return TestClient(build_app(db, OPERATOR_TOKEN), client=client, base_url=base_url)


@pytest.fixture
def staff(db, workspace):
    """An analyst of ``shop`` who signs in with a password."""
    accounts.add_user(db, ADMIN, EMAIL, "花子", PASSWORD)
    accounts.grant(db, ADMIN, "shop", EMAIL, "analyst", personal_data=False)
    return EMAIL.lower()


def _log(db, action: str | None = None) -> list:
    query = sa.select(operation_log).order_by(operation_log.c.entry_id)
    if action is not None:
        query = query.where(operation_log.c.action == action)
    with db.read() as conn:
        return conn.execute(query).all()


def _sign_in(http: TestClient, email: str = EMAIL, password: str = PASSWORD):
    return http.post("/api/auth/sign-in", json={"email": email, "password": password})


def test_sign_in_opens_a_session_whose_unsafe_requests_need_the_csrf_token(db, staff):
    with _client(db) as http:
        signed = _sign_in(http)
        assert signed.status_code == 200, signed.text
        body = signed.json()
        csrf = body["csrf_token"]
        assert body["me"]["email"] == staff and body["me"]["workspaces"][0]["role"] == "analyst"
        cookies = signed.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("kizuna_session="))
        assert "HttpOnly" in session and "SameSite=lax" in session and "Secure" not in session
        readable = next(c for c in cookies if c.startswith("kizuna_csrf="))
        assert "HttpOnly" not in readable and csrf in readable
        # Reads need only the cookie.
        assert http.get("/api/auth/me").json()["via"] == "session"
        assert http.get("/api/workspaces/shop/segments").status_code == 200
        # Writes without the CSRF header are refused, whatever the permission.
        missing = http.post("/api/auth/tokens", json={"name": "script"})
        assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
        forged = http.post("/api/auth/tokens", json={"name": "script"},
                           headers={"X-CSRF-Token": "guess"})  # fmt: skip
        assert forged.status_code == 403
        made = http.post(
            "/api/auth/tokens", json={"name": "script"}, headers={"X-CSRF-Token": csrf}
        )
        assert made.status_code == 201 and made.json()["token"].startswith("kzp_")
        # An analyst may not write segments even with a valid CSRF token.
        denied = http.post("/api/workspaces/shop/segments", json={}, headers={"X-CSRF-Token": csrf})
        assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
        out = http.post("/api/auth/sign-out", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        assert http.get("/api/auth/me").status_code == 401
    actions = [e.action for e in _log(db) if e.action != "user.create" and e.action != "role.grant"]
    assert actions == ["user.sign_in", "access.csrf_failed", "access.csrf_failed",
                       "api_token.create", "access.denied", "user.sign_out"]  # fmt: skip
    entry = _log(db, "user.sign_in")[0]
    assert entry.origin == "203.0.113.5" and entry.actor.startswith("user:")
    assert staff not in str(entry.details) and entry.details["email"] == "h***@shop.example.jp"
    with db.read() as conn:
        assert verify_log(conn) == []
        stored = conn.execute(sa.select(sessions)).all()
    assert stored == []  # signed out: the session row is gone


def test_the_session_cookie_is_secure_over_https(db, staff):
    with _client(db, base_url="https://testserver") as http:
        signed = _sign_in(http)
        assert signed.status_code == 200
        assert all("Secure" in c for c in signed.headers.get_list("set-cookie"))


def test_failures_all_look_the_same_and_reveal_no_account(db, staff):
    accounts.add_user(db, ADMIN, "gone@shop.example.jp", "gone", PASSWORD)
    accounts.set_user_disabled(db, ADMIN, "gone@shop.example.jp", True)
    with _client(db) as http:
        answers = [
            _sign_in(http, password="wrong password!"),
            _sign_in(http, email="nobody@shop.example.jp"),
            _sign_in(http, email="gone@shop.example.jp"),
            _sign_in(http, email="not an address"),
        ]
    assert {a.status_code for a in answers} == {401}
    assert {a.text for a in answers} == {answers[0].text}
    assert answers[0].json()["message"] == SIGN_IN_FAILED
    reasons = [e.details["reason"] for e in _log(db, "user.sign_in_failed")]
    assert reasons == ["wrong_password", "unknown_account", "disabled", "unknown_account"]
    unknown = _log(db, "user.sign_in_failed")[1]
    assert unknown.actor == "anonymous" and unknown.details["email"] == "n***@shop.example.jp"
    assert "nobody@" not in str(_log(db))


def test_five_failures_lock_the_account_for_fifteen_minutes(db, staff, clock):
    with _client(db) as http:
        for _ in range(5):
            assert _sign_in(http, password="not the password").status_code == 401
        locked = _sign_in(http)
        assert locked.status_code == 401 and locked.json()["message"] == SIGN_IN_FAILED
        clock.advance(timedelta(minutes=14))
        assert _sign_in(http).status_code == 401
        clock.advance(timedelta(minutes=2))
        assert _sign_in(http).status_code == 200
    assert len(_log(db, "user.locked_out")) == 1
    reasons = [e.details["reason"] for e in _log(db, "user.sign_in_failed")]
    assert reasons == ["wrong_password"] * 5 + ["locked", "locked"]
    with db.read() as conn:
        row = conn.execute(sa.select(users).where(users.c.email == staff)).one()
    assert row.failed_attempts == 0 and row.locked_until is None
    assert row.password_hash.startswith("$argon2id$") and PASSWORD not in row.password_hash


def test_sessions_expire_and_idle_sessions_end(db, staff, clock):
    with _client(db) as http:
        assert _sign_in(http).status_code == 200
        clock.advance(timedelta(hours=1, minutes=59))
        assert http.get("/api/auth/me").status_code == 200  # in use: the idle timer restarts
        for _ in range(6):
            clock.advance(timedelta(hours=1, minutes=50))
            answer = http.get("/api/auth/me")
        assert answer.status_code == 401 and "expired" in answer.json()["message"]
        assert _sign_in(http).status_code == 200
        clock.advance(timedelta(hours=2, minutes=1))
        idle = http.get("/api/auth/me")
        assert idle.status_code == 401 and "expired" in idle.json()["message"]


def test_personal_tokens_act_as_their_account_until_revoked(db, staff):
    user = accounts.user_by_email(db, staff)
    token, record = accounts.create_token(db, ADMIN, user.user_id, "notebook")
    auth = {"Authorization": f"Bearer {token}"}
    with _client(db) as http:
        me = http.get("/api/auth/me", headers=auth).json()
        assert me["email"] == staff and me["via"] == "token"
        listed = http.get("/api/auth/tokens", headers=auth).json()
        assert [t["prefix"] for t in listed] == [record.prefix] and token not in str(listed)
        assert http.get("/api/workspaces/shop/analytics", headers=auth).status_code == 200
        gone = http.delete(f"/api/auth/tokens/{record.prefix}", headers=auth)
        assert gone.status_code == 204
        revoked = http.get("/api/auth/me", headers=auth)
        assert revoked.status_code == 401 and "revoked" in revoked.json()["message"]
        # The operator token is no account: it has no tokens of its own.
        operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        assert http.get("/api/auth/me", headers=operator).json()["operator"] is True
        assert http.get("/api/auth/tokens", headers=operator).status_code == 403
    created, revoked_entry = _log(db, "api_token.create")[0], _log(db, "api_token.revoke")[0]
    assert created.details["prefix"] == record.prefix and token not in str(created.details)
    assert revoked_entry.target == f"user:{user.user_id}"


def test_a_disabled_account_loses_its_tokens_and_sessions(db, staff):
    user = accounts.user_by_email(db, staff)
    token, _ = accounts.create_token(db, ADMIN, user.user_id, "cron")
    with _client(db) as http:
        assert _sign_in(http).status_code == 200
        accounts.set_user_disabled(db, ADMIN, staff, True)
        assert http.get("/api/auth/me").status_code == 401
        assert (
            http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code
            == 401
        )


def test_role_changes_take_effect_at_once_and_are_logged(db, staff):
    admin = accounts.add_user(db, ADMIN, "boss@shop.example.jp", "boss", None)
    accounts.grant(db, ADMIN, "shop", admin.email, "administrator", personal_data=False)
    boss = {"Authorization": f"Bearer {accounts.create_token(db, ADMIN, admin.user_id, 't')[0]}"}
    analyst = accounts.user_by_email(db, staff)
    mine = {"Authorization": f"Bearer {accounts.create_token(db, ADMIN, analyst.user_id, 't')[0]}"}
    spec = {"key": "tokyo", "name": "東京", "condition": {"type": "location",
                                                         "prefectures": ["東京都"]}}  # fmt: skip
    with _client(db) as http:
        assert (
            http.post("/api/workspaces/shop/segments", json=spec, headers=mine).status_code == 403
        )
        changed = http.put(f"/api/workspaces/shop/users/{analyst.user_id}", headers=boss,
                           json={"role": "scenario_designer"})  # fmt: skip
        assert changed.status_code == 200 and "segments.write" in changed.json()["permissions"]
        saved = http.post("/api/workspaces/shop/segments", json=spec, headers=mine)
        assert saved.status_code == 200 and saved.json()["created_by"] == f"user:{analyst.user_id}"
        members = http.get("/api/workspaces/shop/users", headers=boss).json()
        assert {m["role"] for m in members} == {"administrator", "scenario_designer"}
        bad = http.put(f"/api/workspaces/shop/users/{analyst.user_id}", headers=boss,
                       json={"role": "superuser"})  # fmt: skip
        assert bad.status_code == 400 and bad.json()["code"] == "unknown_role"
        removed = http.delete(f"/api/workspaces/shop/users/{analyst.user_id}", headers=boss)
        assert removed.status_code == 204
        after = http.get("/api/workspaces/shop/segments", headers=mine)
        assert after.status_code == 403 and after.json()["code"] == "not_a_member"
    grants = [(e.actor, e.origin, e.details["role"], e.details["before"])
              for e in _log(db, "role.grant")][-1:]  # fmt: skip
    assert grants == [(f"user:{admin.user_id}", "203.0.113.5", "scenario_designer",
                       {"role": "analyst", "personal_data": False})]  # fmt: skip
    assert _log(db, "role.revoke")[0].details["before"]["role"] == "scenario_designer"


def test_an_administrator_adds_a_member_who_can_then_sign_in(db, workspace):
    admin = accounts.add_user(db, ADMIN, "boss@shop.example.jp", "boss", None)
    accounts.grant(db, ADMIN, "shop", admin.email, "administrator", personal_data=False)
    boss = {"Authorization": f"Bearer {accounts.create_token(db, ADMIN, admin.user_id, 't')[0]}"}
    new = {"email": "new@shop.example.jp", "role": "content_designer"}
    with _client(db) as http:
        no_password = http.post("/api/workspaces/shop/users", headers=boss, json=new)
        assert no_password.status_code == 404
        weak = http.post(
            "/api/workspaces/shop/users", headers=boss, json={**new, "password": "short"}
        )
        assert weak.status_code == 400 and weak.json()["code"] == "weak_password"
        added = http.post("/api/workspaces/shop/users", headers=boss,
                          json={**new, "password": PASSWORD})  # fmt: skip
        assert added.status_code == 201 and added.json()["role"] == "content_designer"
        assert _sign_in(http, "new@shop.example.jp").status_code == 200
        assert http.get("/api/workspaces/shop/templates").status_code == 200
        assert http.get("/api/workspaces/shop/segments").status_code == 403


def test_the_allow_list_keeps_other_addresses_out_of_the_console_but_not_ingestion(db, workspace):
    admin = accounts.add_user(db, ADMIN, "boss@shop.example.jp", "boss", None)
    accounts.grant(db, ADMIN, "shop", admin.email, "administrator", personal_data=False)
    boss = {"Authorization": f"Bearer {accounts.create_token(db, ADMIN, admin.user_id, 't')[0]}"}
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    with _client(db, client=OUTSIDE) as outside:
        # Shutting out one's own address is refused.
        selfish = outside.post("/api/workspaces/shop/access", headers=boss,
                               json={"cidr": "203.0.113.0/24"})  # fmt: skip
        assert selfish.status_code == 409
    with _client(db) as inside, _client(db, client=OUTSIDE) as outside:
        allowed = inside.post("/api/workspaces/shop/access", headers=boss,
                              json={"cidr": "203.0.113.0/24", "note": "office"})  # fmt: skip
        assert allowed.status_code == 201 and allowed.json()["cidr"] == "203.0.113.0/24"
        assert inside.get("/api/workspaces/shop/segments", headers=boss).status_code == 200
        for who in (boss, operator):
            refused = outside.get("/api/workspaces/shop/segments", headers=who)
            assert refused.status_code == 403 and refused.json()["code"] == "ip_not_allowed"
            assert "198.51.100.7" in refused.json()["message"]
        key = _write_key(db)
        event = {"userId": "C1", "event": "Product Viewed", "writeKey": key}
        assert outside.post("/v1/track", json=event).status_code == 200
        assert outside.get("/t/o/nothing.gif").status_code != 403
        # Another workspace's list does not apply here.
        assert outside.get("/api/auth/me", headers=boss).status_code == 200
        listed = inside.get("/api/workspaces/shop/access", headers=boss).json()
        assert [n["note"] for n in listed] == ["office"]
        denied = inside.delete("/api/workspaces/shop/access", headers=boss,
                               params={"cidr": "203.0.113.0/24"})  # fmt: skip
        assert denied.status_code == 204
        assert outside.get("/api/workspaces/shop/segments", headers=boss).status_code == 200
    refusals = _log(db, "access.ip_denied")
    assert [(e.actor, e.origin) for e in refusals] == [
        (f"user:{admin.user_id}", "198.51.100.7"), ("api-token", "198.51.100.7")]  # fmt: skip
    assert refusals[0].workspace_id == workspace.workspace_id
    assert [e.target for e in _log(db, "access.allow")] == ["203.0.113.0/24"]
    assert [e.target for e in _log(db, "access.deny")] == ["203.0.113.0/24"]


def _write_key(db) -> str:
    from tests.integration.access_people import write_key

    return write_key(db)


def test_personal_data_in_clear_needs_its_own_permission_and_is_logged(db, hanako, workspace):
    analyst = accounts.add_user(db, ADMIN, "a@shop.example.jp", "a", None)
    accounts.grant(db, ADMIN, "shop", analyst.email, "analyst", personal_data=False)
    auth = {"Authorization": f"Bearer {accounts.create_token(db, ADMIN, analyst.user_id, 't')[0]}"}
    url = "/api/workspaces/shop/customers/C100"
    with _client(db) as http:
        masked = http.get(url, headers=auth)
        assert masked.status_code == 200 and masked.json()["traits"]["email"] == "h***@example.jp"
        refused = http.get(url, headers=auth, params={"reveal": "true"})
        assert refused.status_code == 403 and refused.json()["code"] == "personal_data_forbidden"
        accounts.grant(db, ADMIN, "shop", analyst.email, "analyst", personal_data=True)
        clear = http.get(url, headers=auth, params={"reveal": "true"})
        assert clear.status_code == 200 and clear.json()["traits"]["email"] == "hanako@example.jp"
    reveals = _log(db, "customer.reveal")
    assert [(e.actor, e.target) for e in reveals] == [
        (f"user:{analyst.user_id}", str(hanako["customer_id"]))]  # fmt: skip
    assert "hanako@example.jp" not in str(_log(db))


def test_an_unauthenticated_call_is_told_which_scheme_to_use(db, workspace):
    """The API asks for a bearer token; Segment's ingestion API for Basic (the write key)."""
    with _client(db) as http:
        api = http.get("/api/workspaces/shop/segments")
        assert api.status_code == 401
        assert api.headers["www-authenticate"] == 'Bearer realm="kizuna"'
        wrong = http.get("/api/auth/me", headers={"Authorization": "Bearer kzp_not-a-token"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
        ingest = http.post("/v1/track", json={"userId": "C1", "event": "Viewed"})
        assert ingest.status_code == 401
        assert ingest.headers["www-authenticate"] == 'Basic realm="kizuna"'
