"""Migrations, personal data at rest, workspaces and write keys on the backend under test."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from kizuna.domain.records import CustomerTraits, Identifiers
from kizuna.errors import Conflict, InvalidInput, Unauthorized
from kizuna.store.customers import apply_traits
from kizuna.store.identity import IdentityResolver
from kizuna.store.migrate import pending_differences
from kizuna.store.profiles import find_customer_id, read_profile
from kizuna.store.tables import metadata
from kizuna.store.workspaces import (
    authenticate_write_key,
    create_workspace,
    create_write_key,
    revoke_write_key,
)
from tests.conftest import PG_URL

EMAIL = "hanako.sato.secret@example.jp"


def test_migrations_build_exactly_the_declared_schema(db):
    assert pending_differences(db.engine) == []


def _dump_everything(db, settings) -> bytes:
    if PG_URL:
        chunks = []
        with db.read() as conn:
            for table in metadata.sorted_tables:
                rows = conn.exec_driver_sql(f'SELECT t::text FROM "{table.name}" t').scalars()
                chunks.extend(rows)
        return "\n".join(chunks).encode()
    db.dispose()  # the WAL holds recent pages: read the main file and the WAL both
    home = settings.home
    return b"".join(p.read_bytes() for p in home.glob("kizuna.db*"))


def test_personal_data_is_never_stored_in_clear(db, settings, scope_factory, clock):
    with scope_factory() as scope:
        resolver = IdentityResolver(scope)
        customer_id = resolver.resolve(Identifiers(user_id="C1", email=EMAIL), clock.now())
        resolver.flush()
        apply_traits(
            scope,
            customer_id,
            CustomerTraits(
                email=EMAIL,
                phone="090-1111-2222",
                last_name="佐藤",
                first_name="花子",
                last_name_kana="サトウ",
                first_name_kana="ハナコ",
                postal_code="150-0001",
                address="渋谷区神宮前1-2-3",
                birthday="1991-07-15",
            ),
        )
    raw = _dump_everything(db, settings)
    for secret in (EMAIL, "+819011112222", "佐藤", "ハナコ", "神宮前", "1991-07-15", "150-0001"):
        assert secret.encode() not in raw, f"{secret} found in clear"
    with db.read() as conn:
        found = find_customer_id(conn, db.cipher, scope.workspace_id, EMAIL.upper())
        profile = read_profile(conn, db.cipher, scope.workspace_id, found)
    assert profile.traits["email"] == EMAIL
    assert profile.traits["last_name_kana"] == "サトウ"


def test_workspace_rules_and_write_keys(db):
    with db.write() as conn:
        with pytest.raises(InvalidInput) as info:
            create_workspace(conn, "Bad Slug", time_zone="Mars/Base", now=db.clock.now())
        assert {p.field for p in info.value.problems} == {"slug", "time_zone"}
        ws = create_workspace(conn, "brand-a", now=db.clock.now())
        with pytest.raises(Conflict):
            create_workspace(conn, "brand-a", now=db.clock.now())
        key = create_write_key(conn, ws.workspace_id, "shop", db.clock.now())
        assert authenticate_write_key(conn, key).slug == "brand-a"
        revoke_write_key(conn, ws.workspace_id, key[:10], db.clock.now())
        with pytest.raises(Unauthorized):
            authenticate_write_key(conn, key)
        stored = conn.execute(sa.text("SELECT key_hash FROM write_keys")).scalar()
        assert key.encode() not in stored
