"""Key rotation: a demo shop re-encrypted under a new key, lookups and links unchanged."""

from __future__ import annotations

import dataclasses
import pickle
import re
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kizuna.api import build_app
from kizuna.bootstrap import open_database
from kizuna.cli import app
from kizuna.cli import keys as keys_cli
from kizuna.config import Settings
from kizuna.demo import DemoOptions, generate_demo_data
from kizuna.errors import ConfigurationError, Conflict, InvalidInput
from kizuna.measurement.tokens import TokenKind, Tokens
from kizuna.profiles import customer_profile, profile_view
from kizuna.security.keys import (
    ENV_LOOKUP_KEY,
    ENV_OLDER_KEYS,
    KeyLocation,
    open_cipher,
    read_keyring,
    start_rotation,
)
from kizuna.security.pii import (
    KeyMaterial,
    PiiCipher,
    ciphertext_key_id,
    decode_secret,
    key_id,
)
from kizuna.store.database import Database
from kizuna.store.engine import make_engine
from kizuna.store.operation_log import verify_log
from kizuna.store.providers import configure_provider
from kizuna.store.rotation import encrypted_tables, pending_rows, reencrypt, values_by_key
from kizuna.store.scope import Scope
from kizuna.store.seed_addresses import add_seed_address
from kizuna.store.tables import customers, events, operation_log, seed_addresses
from kizuna.store.workspaces import create_write_key, get_workspace
from tests.conftest import TEST_SECRET

keys_cli.register(app)
runner = CliRunner()
OLD_ID = key_id(decode_secret(TEST_SECRET))


@pytest.fixture
def file_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test store with its key in ``KIZUNA_HOME/secret.key``, the CLI pointed at it."""
    path = settings.home / "secret.key"
    path.write_text(TEST_SECRET + "\n", encoding="ascii")
    path.chmod(0o600)
    monkeypatch.setenv("KIZUNA_HOME", str(settings.home))
    monkeypatch.setenv("KIZUNA_DATABASE_URL", settings.database_url)
    for name in ("KIZUNA_SECRET_KEY", ENV_OLDER_KEYS, ENV_LOOKUP_KEY, "KIZUNA_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    return dataclasses.replace(settings, secret_key=None)


@pytest.fixture
def keyring_db(clock: Any) -> Iterator[Callable[[Settings], Database]]:
    """Opens stores whose cipher is the whole keyring, as every process opens it."""
    opened: list[Database] = []

    def open_(settings: Settings) -> Database:
        location = KeyLocation.from_settings(settings)
        db = Database(make_engine(settings.database_url), open_cipher(location), clock)
        opened.append(db)
        return db

    yield open_
    for db in opened:
        db.dispose()


@pytest.fixture
def shop(file_settings: Settings, clock: Any, keyring_db: Any) -> Database:
    """A 200-customer demo shop, a seed address and provider secrets, under the first key."""
    db = keyring_db(file_settings)
    generate_demo_data(db, DemoOptions(customers=200, seed=3, workspace="demo", workers=0))
    with db.write() as conn:
        ws = get_workspace(conn, "demo")
        scope = Scope(conn, db.cipher, ws.workspace_id, clock.now())
        add_seed_address(scope, "email", "qa@shop.example.jp", "QA")
        configure_provider(scope, "webhook", "webhook", {}, {"signing_secret": "whsec-1"})
    return db


def plaintexts(db: Database) -> dict[tuple[Any, ...], str]:
    """Every encrypted value in the store, decrypted, by table, primary key and column."""
    found = {}
    with db.read() as conn:
        for et in encrypted_tables():
            for row in conn.execute(sa.select(et.table)).mappings():
                key = tuple(str(row[c.name]) for c in et.primary_key)
                for column in et.columns:
                    if row[column.name] is not None:
                        value = db.cipher.decrypt(row[column.name])
                        found[(et.name, *key, column.name)] = value
    return found


def known_emails(db: Database, n: int) -> dict[str, str]:
    """``n`` customers' e-mail addresses with their customer ids."""
    query = (
        sa.select(customers.c.customer_id, customers.c.email_enc)
        .where(customers.c.email_enc.is_not(None), customers.c.merged_into.is_(None))
        .order_by(customers.c.customer_id)
        .limit(n)
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    return {db.cipher.decrypt(r.email_enc): str(r.customer_id) for r in rows}


def test_a_demo_shop_is_rotated_and_reads_the_same(shop: Database, file_settings, keyring_db):
    before = plaintexts(shop)
    emails = known_emails(shop, 5)
    tables_with_values = {key[0] for key in before}
    assert {"customers", "identities", "seed_addresses", "channel_providers"} <= tables_with_values

    result = runner.invoke(app, ["keys", "rotate", "--batch-size", "37"])
    assert result.exit_code == 0, result.output
    ring = read_keyring(KeyLocation.from_settings(file_settings))
    new_id = ring.current.key_id
    assert new_id != OLD_ID and f"Key {new_id.hex()} is now current" in result.output
    assert f"Key {OLD_ID.hex()} retired" in result.output and "delete it yourself" in result.output
    assert [(k.hex, k.state) for k in ring.older] == [(OLD_ID.hex(), "retired")]

    after_db = keyring_db(file_settings)
    with after_db.read() as conn:
        assert set(values_by_key(conn)) == {new_id}  # every value under the new key
        assert pending_rows(conn, new_id) == {}
        assert verify_log(conn) == []
        actions = conn.execute(sa.select(operation_log.c.action)).scalars().all()
    assert actions == ["keys.rotation_started", "keys.rotated"]
    assert plaintexts(after_db) == before
    for email, customer_id in emails.items():
        _, profile = customer_profile(after_db, "demo", email)  # lookup by e-mail hash
        assert str(profile.customer_id) == customer_id
        assert profile_view(profile, reveal=True)["traits"]["email"] == email
    _ingest_resolves_known_email(after_db, next(iter(emails.items())))


def _ingest_resolves_known_email(db: Database, known: tuple[str, str]) -> None:
    email, customer_id = known
    with db.write() as conn:
        ws = get_workspace(conn, "demo")
        key = create_write_key(conn, ws.workspace_id, "test", db.clock.now())
    body = {"anonymousId": "after-rotation", "event": "Signed In",
            "context": {"traits": {"email": email.upper()}}, "messageId": "rot-1"}  # fmt: skip
    identify = {"anonymousId": "after-rotation", "traits": {"email": email.upper()},
                "messageId": "rot-0"}  # fmt: skip
    with TestClient(build_app(db)) as client:
        for path, payload in (("/v1/identify", identify), ("/v1/track", body)):
            answer = client.post(path, json=payload, auth=(key, ""))
            assert answer.status_code == 200, answer.text
    with db.read() as conn:
        owners = conn.execute(
            sa.select(events.c.customer_id).where(events.c.message_id.in_(["rot-0", "rot-1"]))
        ).scalars().all()  # fmt: skip
    assert [str(o) for o in owners] == [customer_id, customer_id]


class Interrupted(Exception):
    """Stands for a killed process."""


def test_an_interrupted_rotation_keeps_reading_and_resumes(shop, file_settings, keyring_db):
    before = plaintexts(shop)
    location = KeyLocation.from_settings(file_settings)
    start_rotation(location)
    rotating = keyring_db(file_settings)
    batches = []

    def die_after_three(table: str, rows: int) -> None:
        batches.append((table, rows))
        if len(batches) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        reencrypt(rotating, batch_size=20, progress=die_after_three)
    new_id = rotating.cipher.key_id
    with rotating.read() as conn:
        half = values_by_key(conn)
    assert set(half) == {OLD_ID, new_id}  # half-way: both keys in use ...
    assert plaintexts(shop) == before == plaintexts(rotating)  # ... and every reader still reads

    result = runner.invoke(app, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert f"Key {new_id.hex()} is current" in result.output  # carried on, no third key
    assert read_keyring(location).current.key_id == new_id
    with rotating.read() as conn:
        assert set(values_by_key(conn)) == {new_id}
    assert plaintexts(rotating) == before


def test_values_written_by_a_process_still_on_the_old_key_are_caught(
    shop, file_settings, keyring_db
):
    location = KeyLocation.from_settings(file_settings)
    stale = PiiCipher(decode_secret(TEST_SECRET))  # a process that never saw the new key
    start_rotation(location)
    rotating = keyring_db(file_settings)
    done = []

    def write_stale_value_behind_the_sweep(table: str, rows: int) -> None:
        if table == "customers" and not done:
            with rotating.write() as conn:
                oldest = sa.select(customers.c.customer_id).order_by(customers.c.customer_id)
                first = conn.execute(oldest.limit(1)).scalar()
                conn.execute(
                    customers.update()
                    .where(customers.c.customer_id == first)
                    .values(email_enc=stale.encrypt("late@example.jp"))
                )
            done.append(first)

    report = reencrypt(rotating, batch_size=25, progress=write_stale_value_behind_the_sweep)
    assert done and report.complete and report.unreadable == {}
    with rotating.read() as conn:
        assert set(values_by_key(conn)) == {rotating.cipher.key_id}
        query = sa.select(customers.c.email_enc).where(customers.c.customer_id == done[0])
        value = conn.execute(query).scalar_one()
    assert rotating.cipher.decrypt(value) == "late@example.jp"  # the late write was kept


def test_a_value_no_key_opens_holds_back_retirement(shop: Database, file_settings):
    stranger = PiiCipher(b"a key from another installation!")
    with shop.write() as conn:
        conn.execute(seed_addresses.update().values(address_enc=stranger.encrypt("x@y.jp")))
    result = runner.invoke(app, ["keys", "rotate"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "no key opens values in 1 rows of seed_addresses" in text and "again" in text
    ring = read_keyring(KeyLocation.from_settings(file_settings))
    assert [(k.key_id, k.state) for k in ring.older] == [(OLD_ID, "rotating")]  # kept in use
    status = runner.invoke(app, ["keys", "status"])
    assert status.exit_code == 0
    assert f"values under key {stranger.key_id.hex()}, which is not in the keyring" in " ".join(
        status.output.split()
    )


def test_keys_status_shows_where_each_key_is_used(shop: Database):
    before = runner.invoke(app, ["keys", "status"])
    assert before.exit_code == 0, before.output
    assert OLD_ID.hex() in before.output and "current" in before.output
    assert "derived from the current key" in before.output
    assert runner.invoke(app, ["keys", "rotate"]).exit_code == 0
    after = runner.invoke(app, ["keys", "status"])
    assert after.exit_code == 0, after.output
    assert re.search(rf"{OLD_ID.hex()}\s+.*retired.*\s0\s", after.output)
    assert "lookup.key" in after.output


def test_lookup_hashes_and_links_survive_rotation_and_old_key_deletion(file_settings):
    location = KeyLocation.from_settings(file_settings)
    first = open_cipher(location)
    hashed = first.lookup_hash("email", "taro@example.jp")
    old, new = start_rotation(location)
    second = open_cipher(location)
    assert second.key_id == new.key_id and second.lookup_hash("email", "taro@example.jp") == hashed
    assert second.signing_key("tracking") != first.signing_key("tracking")
    assert first.signing_key("tracking") in second.signing_keys("tracking")  # old links verify
    for path in (location.keys_dir / "lookup.key", location.home / "secret.key", Path(old.origin)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Path(old.origin).unlink()  # the operator deletes the retired key: lookups stay
    assert open_cipher(location).lookup_hash("email", "taro@example.jp") == hashed
    (location.keys_dir / "lookup.key").unlink()
    Path(location.keys_dir / f"retired-{old.hex}.key").write_text(TEST_SECRET + "\n")
    with pytest.raises(ConfigurationError, match="lookup key"):
        read_keyring(location)  # refuses rather than silently changing every hash


def test_links_sent_before_a_rotation_keep_working(file_settings, clock):
    """Tracking and unsubscribe links verify under the old key while it is kept (tokens wiring)."""
    location = KeyLocation.from_settings(file_settings)
    before = Tokens(open_cipher(location))
    ws, message = uuid.UUID(int=1), uuid.UUID(int=2)
    click = before.sign(TokenKind.CLICK, ws, message, "https://shop.example.jp/sale")
    unsubscribe = before.sign(TokenKind.UNSUBSCRIBE, ws, message)
    _, new = start_rotation(location)
    after = Tokens(open_cipher(location))
    assert after.verify(click, TokenKind.CLICK, clock.now()).extra == "https://shop.example.jp/sale"
    assert after.verify(unsubscribe, TokenKind.UNSUBSCRIBE, clock.now()).subject_id == message
    fresh = after.sign(TokenKind.CLICK, ws, message, "https://shop.example.jp/sale")
    assert fresh != click  # new links are signed with the new key
    lookup = read_keyring(location).lookup_key
    without_old_key = Tokens(PiiCipher(KeyMaterial(new.secret, (), lookup)))
    assert without_old_key.verify(fresh, TokenKind.CLICK, clock.now()).subject_id == message
    with pytest.raises(InvalidInput):  # once the operator deletes the old key, old links end
        without_old_key.verify(click, TokenKind.CLICK, clock.now())


def test_a_running_process_follows_the_switch(file_settings):
    location = KeyLocation.from_settings(file_settings)
    running = open_cipher(location)  # opened before the rotation, like `kizuna serve`
    start_rotation(location)
    fresh = open_cipher(location)
    written = fresh.encrypt("hanako@example.jp")  # a value re-encrypted under the new key
    assert ciphertext_key_id(written) == fresh.key_id != running.key_id
    assert running.decrypt(written) == "hanako@example.jp"  # re-read the keyring on its own
    assert running.key_id == fresh.key_id  # and encrypts with the new key from now on
    clone = pickle.loads(pickle.dumps(fresh))  # worker processes get the whole keyring
    assert clone.decrypt(written) == "hanako@example.jp" and clone.key_ids == fresh.key_ids


def test_a_second_switch_waits_for_the_first_rotation(file_settings):
    location = KeyLocation.from_settings(file_settings)
    start_rotation(location)
    with pytest.raises(Conflict, match="not finished"):
        start_rotation(location)


def test_a_key_in_the_environment_is_rotated_through_prepare(
    shop, settings, keyring_db, monkeypatch
):
    monkeypatch.setenv("KIZUNA_SECRET_KEY", TEST_SECRET)
    (settings.home / "secret.key").unlink()
    refused = runner.invoke(app, ["keys", "rotate"])
    assert refused.exit_code == 1 and "--prepare" in refused.output
    prepared = runner.invoke(app, ["keys", "rotate", "--prepare"])
    assert prepared.exit_code == 0, prepared.output
    variables = dict(re.findall(r"^(KIZUNA_[A-Z_]+)=(\S+)$", prepared.stdout, re.MULTILINE))
    assert set(variables) == {"KIZUNA_SECRET_KEY", ENV_OLDER_KEYS, ENV_LOOKUP_KEY}
    assert decode_secret(variables[ENV_OLDER_KEYS]) == decode_secret(TEST_SECRET)
    emails = known_emails(shop, 3)
    for name, value in variables.items():  # what the operator sets before restarting
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "KIZUNA_SECRET_KEYS_OLD" in result.output and "no longer protects" in result.output
    env_settings = dataclasses.replace(settings, secret_key=variables["KIZUNA_SECRET_KEY"])
    after = keyring_db(env_settings)
    with after.read() as conn:
        assert set(values_by_key(conn)) == {after.cipher.key_id} != {OLD_ID}
    for email, customer_id in emails.items():
        assert str(customer_profile(after, "demo", email)[1].customer_id) == customer_id


def test_open_database_reads_the_whole_keyring(shop: Database, file_settings, clock):
    """What every command opens must decrypt and look up after a rotation (bootstrap wiring)."""
    emails = known_emails(shop, 2)
    assert runner.invoke(app, ["keys", "rotate"]).exit_code == 0
    with open_database(file_settings, clock=clock, migrate=False) as db:
        for email, customer_id in emails.items():
            _, profile = customer_profile(db, "demo", email)
            assert str(profile.customer_id) == customer_id
            assert profile.traits["email"] == email
