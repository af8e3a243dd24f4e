"""Disclose, correct and stop use on the backend under test: what each does, records and logs."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
import sqlalchemy as sa

from kizuna.delivery.pipeline import Pipeline
from kizuna.domain.records import Channel, CustomerTraits, Identifiers
from kizuna.errors import Conflict, InvalidInput, NotFound
from kizuna.privacy import correct_profile, disclose_customer, stop_use
from kizuna.store.customers import apply_traits
from kizuna.store.identity import IdentityResolver
from kizuna.store.messages import SendIntent, enqueue, get_message
from kizuna.store.operation_log import log_operation, verify_log
from kizuna.store.profiles import find_customer_id, read_profile
from kizuna.store.tables import (
    consent_events,
    consents,
    identities,
    operation_log,
    scenario_runs,
    suppressions,
)
from kizuna.store.tables_privacy import privacy_requests
from tests.integration.test_privacy_shop import ANALYST, EMAIL, PHONE_E164, plant_person


def _log(db, action: str):
    with db.read() as conn:
        assert verify_log(conn) == []
        query = sa.select(operation_log).where(operation_log.c.action == action)
        return conn.execute(query.order_by(operation_log.c.entry_id)).all()


def _rows(bundle, table: str) -> list[dict]:
    return bundle["tables"][table]["rows"]


def test_disclosure_holds_everything_in_clear(db, workspace):
    hanako = plant_person(db)
    disclosure = disclose_customer(db, "shop", " Hanako.Secret@example.jp ", actor=ANALYST)
    bundle = disclosure.bundle
    assert bundle["customer_id"] == str(hanako) and bundle["time_zone"] == "Asia/Tokyo"
    traits = bundle["profile"]["traits"]
    assert (traits["email"], traits["phone"], traits["last_name"]) == (EMAIL, PHONE_E164, "佐藤")
    assert {r["kind"] for r in _rows(bundle, "identities")} == {
        "user_id",
        "email",
        "phone",
        "anonymous_id",
    }
    evidence = {r["channel"]: r for r in _rows(bundle, "consent_evidence")}
    assert evidence["email"]["address"] == EMAIL and evidence["email"]["ip"] == "203.0.113.7"
    assert evidence["sms"]["address"] == PHONE_E164
    assert {(r["reason"], r["address"]) for r in _rows(bundle, "suppressions")} == {
        ("complaint", EMAIL),
        ("hard_bounce", PHONE_E164),
    }
    assert _rows(bundle, "preferences")[0]["subscribed"] is False
    assert {r["name"] for r in _rows(bundle, "events")} >= {"Order Completed", "Product Added"}
    assert [r["order_id"] for r in _rows(bundle, "orders")] == ["O-200"]
    assert _rows(bundle, "order_items")[0]["sku"] == "SKU-1"
    assert _rows(bundle, "carts")[0]["cart_id"] == "K-1"
    assert {r["status"] for r in _rows(bundle, "messages")} == {"delivered", "bounced"}
    assert _rows(bundle, "scenario_runs")[0]["scenario"] == "welcome"
    assert _rows(bundle, "segment_memberships")[0]["segment"] == "tokyo"
    (provided,) = bundle["third_party_provision"]["records"]
    assert (provided["action"], provided["target"], provided["inclusion"]) == (
        "segment.export",
        "tokyo",
        "probable",
    )
    assert provided["rows"] == 1 and provided["actor"] == "analyst"


def test_disclosure_files_and_log(db, workspace, tmp_path):
    hanako = plant_person(db)
    disclosure = disclose_customer(db, "shop", "C200", actor=ANALYST)
    archive = zipfile.ZipFile(io.BytesIO(disclosure.to_zip()))
    names = set(archive.namelist())
    assert {
        "disclosure.json",
        "README.txt",
        "profile.csv",
        "events.csv",
        "orders.csv",
        "consent_evidence.csv",
        "third_party_provision.csv",
    } <= names
    assert json.loads(archive.read("disclosure.json")) == disclosure.bundle
    text = archive.read("profile.csv").decode("utf-8")
    assert text.startswith("\ufeff") and EMAIL in text
    rows = list(csv.DictReader(io.StringIO(archive.read("orders.csv").decode("utf-8-sig"))))
    assert rows[0]["order_id"] == "O-200"
    written = disclosure.write_directory(tmp_path / "bundle")
    assert {p.name for p in written} == names
    (entry,) = _log(db, "privacy.disclose")
    assert entry.target == str(hanako) and entry.details["rows"]["orders"] == 1
    assert EMAIL not in json.dumps(entry.details, ensure_ascii=False)
    with db.read() as conn:
        request = conn.execute(sa.select(privacy_requests)).one()
    assert (request.kind, request.customer_id, request.requested_by) == (
        "disclose",
        hanako,
        "analyst",
    )


def test_provision_names_only_exports_that_could_include_the_customer(db, workspace):
    hanako = plant_person(db)
    with db.write() as conn:
        for target, action in (
            (str(hanako), "audience.export"),
            ("osaka", "segment.export"),
            (str(hanako), "customer.reveal"),
        ):
            log_operation(
                conn,
                workspace_id=workspace.workspace_id,
                at=db.clock.now(),
                actor="someone",
                origin="cli",
                action=action,
                target=target,
                details={"rows": 1},
            )
    records = disclose_customer(db, "shop", "C200", actor=ANALYST).bundle["third_party_provision"][
        "records"
    ]
    assert [(r["action"], r["inclusion"]) for r in records] == [
        ("segment.export", "probable"),
        ("audience.export", "named"),
    ]


def test_unknown_person_is_not_found_and_nothing_is_recorded(db, workspace):
    with pytest.raises(NotFound):
        disclose_customer(db, "shop", "nobody@example.jp", actor=ANALYST)
    with pytest.raises(NotFound):
        stop_use(db, "nowhere", "C1", actor=ANALYST)
    with db.read() as conn:
        assert conn.execute(sa.select(privacy_requests)).all() == []
    assert _log(db, "privacy.disclose") == []


def test_correct_sets_and_removes_fields_and_moves_identities(db, workspace):
    hanako = plant_person(db)
    fields = {
        "email": " New.Hanako@Example.JP ",
        "phone": "",
        "last_name": "鈴木",
        "postal_code": "１５００００２",
    }
    request = correct_profile(db, "shop", "C200", fields, actor=ANALYST)
    assert request.details == {
        "fields": ["email", "last_name", "postal_code"],
        "cleared": ["phone"],
    }
    with db.read() as conn:
        ws = workspace.workspace_id
        assert find_customer_id(conn, db.cipher, ws, "new.hanako@example.jp") == hanako
        with pytest.raises(NotFound):
            find_customer_id(conn, db.cipher, ws, EMAIL)
        with pytest.raises(NotFound):
            find_customer_id(conn, db.cipher, ws, "090-1111-2222")
        traits = read_profile(conn, db.cipher, ws, hanako).traits
        kinds = set(
            conn.execute(
                sa.select(identities.c.kind).where(identities.c.customer_id == hanako)
            ).scalars()
        )
    assert (traits["email"], traits["phone"], traits["last_name"], traits["postal_code"]) == (
        "new.hanako@example.jp",
        None,
        "鈴木",
        "150-0002",
    )
    assert kinds == {"user_id", "email", "anonymous_id"}
    (entry,) = _log(db, "privacy.correct")
    assert entry.target == str(hanako) and "鈴木" not in json.dumps(entry.details)


def test_correct_names_each_bad_field_and_changes_nothing(db, workspace):
    plant_person(db)
    cases = [
        ({"email": "not-an-address"}, "email"),
        ({"nickname": "はな"}, "nickname"),
        ({"birthday": "someday"}, "birthday"),
        ({}, "fields"),
    ]
    for fields, field in cases:
        with pytest.raises(InvalidInput) as info:
            correct_profile(db, "shop", "C200", fields, actor=ANALYST)
        assert [p.field for p in info.value.problems] == [field]
    assert _log(db, "privacy.correct") == []


def test_correct_refuses_an_email_that_names_another_customer(db, workspace, scope_factory, clock):
    plant_person(db)
    with scope_factory() as scope:
        resolver = IdentityResolver(scope)
        other = resolver.resolve(Identifiers(user_id="C9", email="taro@example.jp"), clock.now())
        resolver.flush()
        apply_traits(scope, other, CustomerTraits(email="taro@example.jp"))
    with pytest.raises(Conflict):
        correct_profile(db, "shop", "C200", {"email": "taro@example.jp"}, actor=ANALYST)
    with db.read() as conn:
        assert find_customer_id(conn, db.cipher, workspace.workspace_id, EMAIL) is not None


def test_stop_use_suppresses_all_marketing(db, workspace, scope_factory):
    hanako = plant_person(db)
    request = stop_use(db, "shop", EMAIL, actor=ANALYST)
    assert sorted(request.details["opted_out"]) == sorted(c.value for c in Channel)
    assert request.details == {**request.details, "addresses_suppressed": 2, "runs_exited": 1}
    with db.read() as conn:
        status = dict(
            conn.execute(
                sa.select(consents.c.channel, consents.c.status).where(
                    consents.c.customer_id == hanako
                )
            ).all()
        )
        stops = conn.execute(
            sa.select(consent_events).where(
                consent_events.c.method == "data-subject request: stop use"
            )
        ).all()
        listed = conn.execute(sa.select(suppressions.c.channel, suppressions.c.reason)).all()
        run = conn.execute(sa.select(scenario_runs)).one()
    assert set(status.values()) == {"opted_out"} and len(status) == len(Channel)
    email_stop = next(e for e in stops if e.channel == "email")
    assert bytes(email_stop.address_hash) == db.cipher.lookup_hash("email", EMAIL)
    assert email_stop.source == f"privacy request {request.request_id}"
    assert sorted(listed) == [("email", "blacklist"), ("sms", "blacklist")]
    assert (run.status, run.exit_reason) == ("exited", "stop_use")
    with scope_factory() as scope:
        (queued,) = enqueue(scope, [SendIntent(hanako, "email", "news", "after-stop")])
    Pipeline(db).drain_all()
    with scope_factory() as scope:
        message = get_message(scope, queued)
    assert message.status == "skipped" and message.reason == "suppressed:blacklist"
    again = stop_use(db, "shop", "C200", actor=ANALYST)  # nothing new to opt out of
    assert again.details["opted_out"] == [] and len(_log(db, "privacy.stop")) == 2
