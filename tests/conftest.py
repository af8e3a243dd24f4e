"""Fixtures shared by the whole suite.

The backend is SQLite unless ``KIZUNA_TEST_DATABASE_URL`` names a PostgreSQL
database; each xdist worker then gets its own database, migrated once and
emptied before every test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from kizuna.bootstrap import open_database
from kizuna.clock import FixedClock
from kizuna.config import Settings, load_settings
from kizuna.store.database import Database
from kizuna.store.migrate import upgrade
from kizuna.store.scope import Scope
from kizuna.store.tables import metadata
from kizuna.store.workspaces import Workspace, create_workspace

PG_URL = os.environ.get("KIZUNA_TEST_DATABASE_URL", "")
TEST_SECRET = "dGVzdC1zZWNyZXQta2V5LWZvci1raXp1bmEtdGVzdHMtMzJieXRlcw"
T0 = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)


def backend() -> str:
    """``postgresql`` or ``sqlite``: which store this run tests."""
    return "postgresql" if PG_URL else "sqlite"


def _worker_pg_url(worker: str) -> str:
    base = sa.engine.make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{base.database}_{worker}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> str:
    """A migrated database: a template SQLite file, or this worker's PostgreSQL database."""
    if PG_URL:
        url = _worker_pg_url(worker_id)
        engine = sa.create_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    path = tmp_path_factory.mktemp("template") / "kizuna.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return str(path)


@pytest.fixture
def settings(tmp_path: Path, database_template: str) -> Settings:
    """Settings for a fresh, empty, migrated store under ``tmp_path``."""
    home = tmp_path / "kizuna-home"
    home.mkdir()
    env = {"KIZUNA_HOME": str(home), "KIZUNA_SECRET_KEY": TEST_SECRET}
    if PG_URL:
        engine = sa.create_engine(database_template)
        with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            conn.exec_driver_sql(f"TRUNCATE {names}")
        engine.dispose()
        env["KIZUNA_DATABASE_URL"] = database_template
    else:
        shutil.copy(database_template, home / "kizuna.db")
    return load_settings(env)


@pytest.fixture
def clock() -> FixedClock:
    """A clock standing at 2026-04-01 12:00 JST."""
    return FixedClock(T0)


@pytest.fixture
def db(settings: Settings, clock: FixedClock) -> Iterator[Database]:
    """An empty store on the backend under test."""
    database = open_database(settings, clock=clock, migrate=False)
    yield database
    database.dispose()


@pytest.fixture
def workspace(db: Database) -> Workspace:
    """A production workspace named ``shop``."""
    with db.write() as conn:
        return create_workspace(conn, "shop", name="Demo Shop", now=db.clock.now())


@pytest.fixture
def scope_factory(db: Database, workspace: Workspace) -> object:
    """Call ``with scope_factory() as scope:`` for a write scope on the workspace."""
    from contextlib import contextmanager

    @contextmanager
    def make() -> Iterator[Scope]:
        with db.write() as conn:
            yield Scope(conn, db.cipher, workspace.workspace_id, db.clock.now())

    return make


def unique_slug() -> str:
    """A workspace slug no other test uses."""
    return "ws-" + uuid.uuid4().hex[:10]
