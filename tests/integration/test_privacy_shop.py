"""A person with data in every table a data-subject request touches, and its sanity checks.

``plant_person`` puts 花子 into a workspace the way production does (the
Segment HTTP API for profile, events, an order and a cart; the store for consent
evidence, messages, a scenario run, suppressions, topic choices, a segment and a
logged export) and, on purpose, leaves her personal values in the free-text
places where they can really end up in clear: a bounce reason quoting the
address, a call-centre memo, a page URL, a message's render parameters, a
scenario's trigger payload, the source of consent evidence. The erase tests
prove every one of them is gone afterwards.
"""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from kizuna.api import build_app
from kizuna.domain.records import ConsentRecord, SuppressionRecord
from kizuna.segments.definition import parse_spec
from kizuna.segments.export import open_export
from kizuna.segments.membership import refresh_segment
from kizuna.store.consent import record_consents, suppress
from kizuna.store.identity import IdentityResolver
from kizuna.store.messages import SendIntent, enqueue
from kizuna.store.operation_log import Actor
from kizuna.store.preferences import set_preferences
from kizuna.store.profiles import find_customer_id
from kizuna.store.scope import Scope
from kizuna.store.segments import save_segment
from kizuna.store.tables import messages, metadata, scenario_inbox, scenario_runs, scenarios
from kizuna.store.types import new_id
from kizuna.store.workspaces import create_write_key, get_workspace
from tests.conftest import PG_URL

EMAIL = "hanako.secret@example.jp"
PHONE_E164 = "+819011112222"
# Every spelling of 花子's personal data a scan must never find after an erasure.
SECRETS = (
    EMAIL,
    "hanako.secret",
    PHONE_E164,
    "090-1111-2222",
    "09011112222",
    "佐藤",
    "花子",
    "サトウ",
    "ハナコ",
    "神宮前",
    "1991-07-15",
    "150-0001",
    "cookie-hanako",
    "C200",
)
# Where 花子's values sit in clear before the erasure (a scan must find these first).
PLANTED = (EMAIL, "090-1111-2222", "佐藤", "花子", "cookie-hanako")
ANALYST = Actor("analyst", "cli")


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _ingest(db, workspace: str) -> None:
    with db.write() as conn:
        ws = get_workspace(conn, workspace)
        key = create_write_key(conn, ws.workspace_id, "test", db.clock.now())
    page = {"url": f"https://shop.example.jp/thanks?email={EMAIL}", "path": "/thanks"}
    context = {"ip": "203.0.113.7", "page": page, "userAgent": "Mozilla/5.0"}
    base = {"userId": "C200", "anonymousId": "cookie-hanako", "context": context}
    calls = [
        (
            "identify",
            {
                "traits": {
                    "email": EMAIL,
                    "phone": "090-1111-2222",
                    "lastName": "佐藤",
                    "firstName": "花子",
                    "lastNameKana": "サトウ",
                    "firstNameKana": "ハナコ",
                    "birthday": "1991-07-15",
                    "gender": "female",
                    "skinType": "dry",
                    "address": {
                        "postalCode": "150-0001",
                        "state": "東京都",
                        "city": "渋谷区",
                        "street": "神宮前1-2-3",
                    },
                }
            },
        ),
        (
            "track",
            {
                "event": "Product Added",
                "properties": {
                    "cart_id": "K-1",
                    "sku": "SKU-1",
                    "name": "化粧水",
                    "price": 1200,
                    "quantity": 1,
                },
            },
        ),
        (
            "track",
            {
                "event": "Order Completed",
                "properties": {
                    "order_id": "O-200",
                    "total": 5500,
                    "products": [{"sku": "SKU-1", "name": "化粧水", "price": 5500, "quantity": 1}],
                },
            },
        ),
        (
            "track",
            {
                "event": "Call Centre Contact",
                "properties": {"memo": "折り返し 090-1111-2222 佐藤花子様"},
            },
        ),
    ]
    with TestClient(build_app(db)) as client:
        for kind, body in calls:
            answer = client.post(f"/v1/{kind}", json={**base, **body}, headers=_basic(key))
            assert answer.status_code == 200, answer.text


def _consents(scope: Scope) -> None:
    resolver = IdentityResolver(scope)
    common = {
        "customer": {"user_id": "C200"},
        "status": "opted_in",
        "occurred_at": "2026-01-05",
        "method": "web form",
        "wording": "お知らせを受け取る",
        "ip": "203.0.113.7",
    }
    record_consents(
        scope,
        resolver,
        [
            ConsentRecord(
                channel="email",
                address=EMAIL,
                source=f"https://shop.example.jp/signup?ref={EMAIL}",
                **common,
            ),
            ConsentRecord(channel="sms", address="090-1111-2222", source="call centre", **common),
        ],
    )
    suppress(scope, [SuppressionRecord(channel="email", address=EMAIL, reason="complaint")])
    suppress(
        scope,
        [
            SuppressionRecord(
                channel="sms",
                address="090-1111-2222",
                reason="hard_bounce",
                note=f"dead: {PHONE_E164}",
            )
        ],
    )


def _messages(scope: Scope, customer_id: uuid.UUID, scenario_id: uuid.UUID) -> None:
    sent_at = scope.now - timedelta(days=3)
    welcome = SendIntent(
        customer_id,
        "email",
        "welcome",
        "welcome:C200",
        params={"greeting": "佐藤 花子 様"},
        source_kind="scenario",
        source_id=str(scenario_id),
    )
    news = SendIntent(customer_id, "email", "news", "news:1:C200", source_kind="campaign")
    ids = enqueue(scope, [welcome, news])
    address = scope.hash("email", EMAIL)
    reasons = [None, f"550 5.1.1 <{EMAIL}>: user unknown"]
    for message_id, status, reason in zip(ids, ("delivered", "bounced"), reasons, strict=True):
        scope.conn.execute(
            messages.update()
            .where(messages.c.message_id == message_id)
            .values(status=status, reason=reason, sent_at=sent_at, address_hash=address)
        )


def _scenario(scope: Scope, customer_id: uuid.UUID) -> uuid.UUID:
    scenario_id, now, ws = new_id(), scope.now, scope.workspace_id
    scope.conn.execute(
        scenarios.insert().values(
            workspace_id=ws,
            scenario_id=scenario_id,
            key="welcome",
            name="ようこそ",
            priority=1,
            status="live",
            live_version=1,
            draft={},
            created_by="tester",
            created_at=now,
            updated_at=now,
        )
    )
    scope.conn.execute(
        scenario_runs.insert().values(
            workspace_id=ws,
            run_id=new_id(),
            scenario_id=scenario_id,
            version=1,
            customer_id=customer_id,
            run_key="",
            status="active",
            node_id="wait",
            due_at=now,
            held_out=False,
            context={"note": "佐藤様のカート"},
            sends=1,
            steps=2,
            entered_at=now,
            updated_at=now,
        )
    )
    scope.conn.execute(
        scenario_inbox.insert().values(
            workspace_id=ws,
            inbox_id=new_id(),
            customer_id=customer_id,
            kind="api",
            name="welcome",
            payload={"memo": EMAIL},
            at=now,
        )
    )
    return scenario_id


TOKYO = {
    "key": "tokyo",
    "name": "東京の顧客",
    "condition": {"type": "location", "prefectures": ["東京都"]},
}


def _segment_export(db, workspace: str) -> None:
    with db.write() as conn:
        ws = get_workspace(conn, workspace)
        saved = save_segment(
            Scope(conn, db.cipher, ws.workspace_id, db.clock.now()), parse_spec(TOKYO), "tester"
        )
    refresh_segment(db, ws, saved)
    with open_export(db, workspace, "tokyo", format="csv", reveal=False, actor=ANALYST) as export:
        b"".join(export.stream())


def plant_person(db, workspace: str = "shop") -> uuid.UUID:
    """Put 花子 (C200) into ``workspace`` everywhere; returns her customer id."""
    _ingest(db, workspace)
    with db.write() as conn:
        ws = get_workspace(conn, workspace)
        scope = Scope(conn, db.cipher, ws.workspace_id, db.clock.now())
        customer_id = find_customer_id(conn, db.cipher, ws.workspace_id, "C200")
        _consents(scope)
        _messages(scope, customer_id, _scenario(scope, customer_id))
        set_preferences(scope, customer_id, {"sale": False}, source="preference centre")
    _segment_export(db, workspace)
    return customer_id


def dump_everything(db, settings) -> bytes:
    """Every byte the store holds: the SQLite files, or every PostgreSQL row as text."""
    if PG_URL:
        chunks = []
        with db.read() as conn:
            for table in metadata.sorted_tables:
                rows = conn.exec_driver_sql(f'SELECT t::text FROM "{table.name}" t').scalars()
                chunks.extend(rows)
        return "\n".join(chunks).encode()
    db.dispose()  # the WAL holds recent pages: read the main file and the WAL both
    return b"".join(p.read_bytes() for p in settings.home.glob("kizuna.db*"))


def test_planted_values_sit_in_clear_in_free_text(db, settings, workspace):
    customer_id = plant_person(db)
    raw = dump_everything(db, settings)
    for value in PLANTED:
        assert value.encode() in raw, f"{value} should be in clear before an erasure"
    with db.read() as conn:
        runs = conn.execute(sa.select(scenario_runs.c.customer_id)).scalars().all()
    assert runs == [customer_id]
