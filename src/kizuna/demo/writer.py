"""Generate the demo shop and write it, one transaction per chunk of customers.

Determinism: every chunk draws from its own generator seeded by ``(seed,
chunk number)``, and every id (customers, events, consent evidence) is derived
from the seed, the customer's index and the time, so the same ``customers``,
``seed`` and ``chunk_size`` give the same rows, ciphertext nonces apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.demo.activity import build_activity
from kizuna.demo.behaviour import Calendar, acquisition_days, build_calendar, draw_purchases
from kizuna.demo.bulk import bulk_insert
from kizuna.demo.catalogue import Catalogue, build_catalogue, product_rows
from kizuna.demo.chunk import ANONYMOUS, BUYER, REGISTERED, Chunk
from kizuna.demo.orders import build_orders
from kizuna.demo.profiles import assign_ids, build_profiles
from kizuna.errors import Conflict, NotFound
from kizuna.store import tables
from kizuna.store.database import Database
from kizuna.store.scope import Scope
from kizuna.store.workspaces import Workspace, create_workspace, get_workspace

__all__ = ["TABLES", "DemoOptions", "DemoSummary", "generate_demo_data"]

# Insert order; every table here is emptied for the workspace by ``replace``.
TABLES = ("products", "customers", "identities", "orders", "order_items", "events", "carts",
          "consents", "consent_events", "suppressions", "subscriptions")  # fmt: skip
_CLEARED = (*TABLES, "customer_merges")
_SQLITE_CACHE_KIB = 256 * 1024  # index pages stay in memory while the tables grow
_KIND_P = {ANONYMOUS: 0.08, REGISTERED: 0.17, BUYER: 0.75}


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What to generate: how many customers (anonymous visitors included), from which seed."""

    customers: int
    seed: int = 42
    workspace: str = "demo"
    replace: bool = False
    chunk_size: int = 5_000
    years: int = 3


@dataclass(slots=True)
class DemoSummary:
    """What was written: rows per table and how long it took."""

    workspace: Workspace
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    seconds: float = 0.0


def _prepare_workspace(conn: Connection, options: DemoOptions, now: Any) -> Workspace:
    try:
        workspace = get_workspace(conn, options.workspace)
    except NotFound:
        return create_workspace(conn, options.workspace, name="Kizuna Demo Shop",
                                time_zone="Asia/Tokyo", now=now)  # fmt: skip
    ws = workspace.workspace_id
    customers = tables.customers
    has_data = conn.execute(
        sa.select(customers.c.customer_id).where(customers.c.workspace_id == ws).limit(1)
    ).first()
    if has_data and not options.replace:
        raise Conflict(f"workspace {options.workspace!r} already has customers; use --replace")
    for name in _CLEARED:
        table = tables.metadata.tables[name]
        conn.execute(table.delete().where(table.c.workspace_id == ws))
    return workspace


def _chunk(scope: Scope, options: DemoOptions, shared: tuple[Calendar, Catalogue, np.ndarray],
           number: int) -> Chunk:  # fmt: skip
    cal, catalogue, first_days = shared
    first = number * options.chunk_size
    days = first_days[first : first + options.chunk_size]
    rng = np.random.default_rng([options.seed, number])
    kind = rng.choice(list(_KIND_P), size=len(days), p=list(_KIND_P.values()))
    favourite = rng.choice(len(catalogue.category_share), len(days), p=catalogue.category_share)
    return Chunk(scope, rng, cal, catalogue, options.seed, number, first, days, kind, favourite)


def build_chunk_rows(chunk: Chunk) -> dict[str, list[dict[str, Any]]]:
    """Generate every row of one chunk, by table."""
    assign_ids(chunk)
    purchases = draw_purchases(chunk.rng, chunk.cal, chunk.first_day, chunk.kind == BUYER)
    facts = build_orders(chunk, purchases)
    build_activity(chunk, facts)
    build_profiles(chunk, facts)
    return chunk.rows


def _insert(conn: Connection, rows: dict[str, list[dict[str, Any]]], summary: DemoSummary) -> None:
    for name in TABLES:
        batch = rows.get(name)
        if batch:
            bulk_insert(conn, tables.metadata.tables[name], batch)
            summary.counts[name] += len(batch)


def generate_demo_data(
    db: Database, options: DemoOptions, progress: Callable[[int], None] | None = None
) -> DemoSummary:
    """Create (or with ``replace``, refill) the demo workspace; raises Conflict if it has data."""
    started = time.perf_counter()
    now = db.clock.now()
    cal = build_calendar(now, options.years)
    catalogue = build_catalogue(np.random.default_rng([options.seed, 1 << 20]))
    first_days = acquisition_days(np.random.default_rng([options.seed, 1 << 21]),
                                  options.customers, cal)  # fmt: skip
    with db.write() as conn:
        workspace = _prepare_workspace(conn, options, now)
        summary = DemoSummary(workspace)
        scope = Scope(conn, db.cipher, workspace.workspace_id, now)
        _insert(conn, {"products": product_rows(scope, catalogue, now)}, summary)
    chunks = -(-options.customers // options.chunk_size)
    for number in range(chunks):
        with db.write() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
            scope = Scope(conn, db.cipher, workspace.workspace_id, now)
            chunk = _chunk(scope, options, (cal, catalogue, first_days), number)
            _insert(conn, build_chunk_rows(chunk), summary)
        if progress is not None:
            progress(chunk.size)
    summary.seconds = time.perf_counter() - started
    return summary
