"""Erasure: no personal data left in either database, while every report adds up the same."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from kizuna.client import Kizuna
from kizuna.demo import DemoOptions, generate_demo_data
from kizuna.domain.records import CustomerTraits, Identifiers
from kizuna.errors import Conflict, NotFound
from kizuna.privacy import disclose_customer, erase_customer
from kizuna.store.customers import PII_TRAITS, apply_traits
from kizuna.store.identity import IdentityResolver
from kizuna.store.operation_log import verify_log
from kizuna.store.profiles import find_customer_id, read_profile
from kizuna.store.tables import (
    consent_events,
    consents,
    customers,
    events,
    identities,
    messages,
    operation_log,
    orders,
    preferences,
    scenario_inbox,
    scenario_runs,
    suppressions,
)
from kizuna.store.tables_privacy import privacy_requests
from tests.conftest import PG_URL
from tests.integration.test_privacy_shop import (
    ANALYST,
    EMAIL,
    SECRETS,
    dump_everything,
    plant_person,
)

TARO = "taro.keeps@example.jp"


def _ciphertexts(db, customer_id) -> list[bytes]:
    columns = [customers.c[c] for c in PII_TRAITS.values()]
    with db.read() as conn:
        row = conn.execute(sa.select(*columns).where(customers.c.customer_id == customer_id)).one()
        ids = conn.execute(
            sa.select(identities.c.value_enc).where(identities.c.customer_id == customer_id)
        ).scalars()
        return [bytes(v) for v in (*row, *ids) if v is not None]


def _in_dump(raw: bytes, value: bytes) -> bool:
    # PostgreSQL renders bytea as \x<hex> in a row's text.
    return (value.hex().encode() if PG_URL else value) in raw


def _taro(scope_factory, clock):
    with scope_factory() as scope:
        resolver = IdentityResolver(scope)
        taro = resolver.resolve(Identifiers(user_id="C201", email=TARO), clock.now())
        resolver.flush()
        apply_traits(scope, taro, CustomerTraits(email=TARO, last_name="山田", first_name="太郎"))
    return taro


def test_erase_leaves_no_personal_data_anywhere(db, settings, workspace, scope_factory, clock):
    hanako = plant_person(db)
    taro = _taro(scope_factory, clock)
    sealed = _ciphertexts(db, hanako)
    erasure = erase_customer(db, "shop", "hanako.secret@EXAMPLE.jp", actor=ANALYST)
    assert erasure.request.kind == "erase" and erasure.request.customer_id == hanako
    assert erasure.compacted is (None if PG_URL else True)
    raw = dump_everything(db, settings)
    for secret in SECRETS:
        assert secret.encode() not in raw, f"{secret} survived the erasure"
    assert sealed and not any(_in_dump(raw, ct) for ct in sealed), "a ciphertext survived"
    with db.read() as conn:
        ws = workspace.workspace_id
        with pytest.raises(NotFound):
            find_customer_id(conn, db.cipher, ws, EMAIL)
        assert read_profile(conn, db.cipher, ws, taro).traits["email"] == TARO
        row = conn.execute(sa.select(customers).where(customers.c.customer_id == hanako)).one()
        assert all(row._mapping[c] is None for c in (*PII_TRAITS.values(), "email_hash"))
        assert (row.shop_customer_id, row.city, row.attributes) == (None, None, {})
        assert (row.prefecture, row.gender) == ("東京都", "female")  # anonymous facts stay


@pytest.mark.skipif(bool(PG_URL), reason="SQLite's free pages and WAL")
def test_erase_leaves_nothing_in_sqlite_built_without_secure_delete(db, settings, workspace):
    # Debian's SQLite zeroes freed cells (SECURE_DELETE); most other builds do not, so
    # old copies of updated rows linger in free space until the file is rebuilt.
    db.dispose()
    event.listen(db.engine, "connect", lambda c, _: c.execute("PRAGMA secure_delete=OFF"))
    plant_person(db)
    with db.write() as conn:  # rewrite a row so an old copy of its JSON is left behind
        conn.execute(messages.update().values(attempts=messages.c.attempts + 1))
    assert EMAIL.encode() in dump_everything(db, settings)
    erase_customer(db, "shop", "C200", actor=ANALYST)
    raw = dump_everything(db, settings)
    for secret in SECRETS:
        assert secret.encode() not in raw, f"{secret} survived the erasure"


def _owned_count(conn, table, customer_id) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(table.c.customer_id == customer_id)
    return int(conn.execute(query).scalar_one())


def test_erase_keeps_facts_deletes_links_and_keeps_evidence_the_law_needs(db, workspace):
    hanako = plant_person(db)
    email_hash = db.cipher.lookup_hash("email", EMAIL)
    erase_customer(db, "shop", "C200", actor=ANALYST)
    with db.read() as conn:
        for table in (identities, preferences, scenario_inbox):
            assert _owned_count(conn, table, hanako) == 0, table.name
        for table in (events, orders, messages, scenario_runs):
            assert _owned_count(conn, table, hanako) > 0, table.name
        assert set(
            conn.execute(
                sa.select(events.c.user_id, events.c.anonymous_id).where(
                    events.c.customer_id == hanako
                )
            )
        ) == {(None, None)}
        contexts = conn.execute(sa.select(events.c.context).where(events.c.customer_id == hanako))
        assert all("ip" not in c and "traits" not in c for c in contexts.scalars())
        run = conn.execute(sa.select(scenario_runs)).one()
        assert (run.status, run.exit_reason) == ("exited", "erased")
        assert set(
            conn.execute(
                sa.select(consents.c.status).where(consents.c.customer_id == hanako)
            ).scalars()
        ) == {"opted_out"}
        # Email was sent three days ago: its evidence stays a month, with its address hash.
        # SMS consent (January) was never used: past the month, it went with the erasure.
        evidence = conn.execute(sa.select(consent_events)).all()
        assert {e.channel for e in evidence} == {"email"}
        assert email_hash in {bytes(e.address_hash) for e in evidence if e.address_hash}
        kept = conn.execute(sa.select(suppressions)).all()  # the hard bounce is gone
        assert [(s.reason, s.customer_id, s.note) for s in kept] == [("complaint", None, None)]
        assert bytes(kept[0].address_hash) == email_hash
        assert conn.execute(sa.select(messages.c.address_hash).distinct()).scalars().all() == [None]


def test_erase_is_recorded_logged_without_personal_data_and_not_repeated(db, workspace):
    hanako = plant_person(db)
    erase_customer(db, "shop", "C200", actor=ANALYST)
    with pytest.raises(Conflict):
        erase_customer(db, "shop", str(hanako), actor=ANALYST)
    with db.read() as conn:
        assert verify_log(conn) == []
        entry = conn.execute(
            sa.select(operation_log).where(operation_log.c.action == "privacy.erase")
        ).one()
        request = conn.execute(sa.select(privacy_requests)).one()
    assert (entry.target, entry.actor, entry.origin) == (str(hanako), "analyst", "cli")
    assert entry.details["request_id"] == str(request.request_id)
    assert request.details["identities_deleted"] == 4  # user id, email, phone, cookie
    text = str(entry.details) + str(request.details)
    assert EMAIL not in text and "C200" not in text and "佐藤" not in text


def test_merged_records_are_erased_too(db, workspace, scope_factory, clock):
    with scope_factory() as scope:
        resolver = IdentityResolver(scope)
        old = resolver.resolve(Identifiers(user_id="OLD-77"), clock.now())
        resolver.flush()
        apply_traits(scope, old, CustomerTraits(last_name="旧姓", attributes={"memo": "OLD-77"}))
        live = resolver.alias("OLD-77", "NEW-77", clock.now())
        resolver.flush()
    erasure = erase_customer(db, "shop", "NEW-77", actor=ANALYST)
    assert erasure.request.details["records"] == 2
    with db.read() as conn:
        rows = conn.execute(sa.select(customers).where(customers.c.customer_id.in_([old, live])))
        for row in rows:
            assert row.shop_customer_id is None and row.attributes == {}
            assert row.last_name_enc is None


def _reports(db, workspace: str) -> dict[str, pd.DataFrame]:
    client = Kizuna(db, workspace)
    frames = {
        name: client.analyze(name)
        for name in ("rfm", "rfm-area", "deciles", "cohorts", "repeat", "pb", "ltv")
    }
    frames["revenue"] = client.orders().groupby("channel")[["total"]].sum()
    return frames


def test_reports_add_up_the_same_after_erasures(db, settings):
    generate_demo_data(db, DemoOptions(customers=300, workspace="demo"))
    plant_person(db, "demo")
    before = _reports(db, "demo")
    with db.read() as conn:
        top = conn.execute(
            sa.select(orders.c.customer_id)
            .group_by(orders.c.customer_id)
            .order_by(sa.func.count().desc(), orders.c.customer_id)
            .limit(1)
        ).scalar_one()
    erase_customer(db, "demo", "C200", actor=ANALYST)
    erase_customer(db, "demo", str(top), actor=ANALYST)
    after = _reports(db, "demo")
    for name, frame in before.items():
        pd.testing.assert_frame_equal(frame, after[name], obj=name)
    assert before["revenue"]["total"].sum() > 0


def test_an_erased_customer_discloses_only_anonymous_facts(db, workspace):
    hanako = plant_person(db)
    erase_customer(db, "shop", "C200", actor=ANALYST)
    bundle = disclose_customer(db, "shop", str(hanako), actor=ANALYST).bundle
    assert bundle["profile"]["traits"]["email"] is None
    assert bundle["tables"]["identities"]["rows"] == []
    assert len(bundle["tables"]["orders"]["rows"]) == 1
    text = str(bundle)
    for secret in (EMAIL, "佐藤", "090-1111-2222"):
        assert secret not in text
