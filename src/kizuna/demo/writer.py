"""Generate the demo shop and write it, one transaction per chunk of customers.

Determinism: every chunk draws from its own generator seeded by ``(seed,
chunk number)``, and every id (customers, events, consent evidence) is derived
from the seed, the customer's index and the time, so the same ``customers``,
``seed`` and ``chunk_size`` give the same rows, ciphertext nonces apart.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kizuna.demo.activity import build_activity
from kizuna.demo.behaviour import Calendar, acquisition_days, build_calendar, draw_purchases
from kizuna.demo.catalogue import Catalogue, build_catalogue, product_rows
from kizuna.demo.chunk import ANONYMOUS, BUYER, REGISTERED, Chunk
from kizuna.demo.orders import build_orders
from kizuna.demo.profiles import assign_ids, build_profiles
from kizuna.errors import Conflict, NotFound
from kizuna.security.pii import PiiCipher
from kizuna.store import tables
from kizuna.store.bulk import bulk_insert, encode_rows, insert_encoded, refresh_statistics
from kizuna.store.database import Database
from kizuna.store.workspaces import Workspace, create_workspace, get_workspace

__all__ = ["TABLES", "DemoOptions", "DemoSummary", "generate_demo_data"]

# Insert order; every table here is emptied for the workspace by ``replace``.
TABLES = ("products", "customers", "identities", "orders", "order_items", "events", "carts",
          "consents", "consent_events", "suppressions", "subscriptions")  # fmt: skip
_CLEARED = (*TABLES, "customer_merges", "customer_metrics")
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
    workers: int | None = None  # builder processes; None: one from 20,000 customers up


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


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """Everything a (possibly separate) process needs to build any chunk; picklable."""

    options: DemoOptions
    workspace_id: uuid.UUID
    now: datetime
    cipher: PiiCipher
    encode: bool  # SQLite: hand back the driver's tuples, built in the worker


_SHARED: dict[tuple[Any, ...], tuple[Calendar, Catalogue, np.ndarray]] = {}


def _shared(options: DemoOptions, now: datetime) -> tuple[Calendar, Catalogue, np.ndarray]:
    """Calendar, catalogue and acquisition days: drawn once per process and shop."""
    key = (options.customers, options.seed, options.years, now)
    if key not in _SHARED:
        _SHARED.clear()
        cal = build_calendar(now, options.years)
        catalogue = build_catalogue(np.random.default_rng([options.seed, 1 << 20]))
        first = acquisition_days(np.random.default_rng([options.seed, 1 << 21]),
                                 options.customers, cal)  # fmt: skip
        _SHARED[key] = (cal, catalogue, first)
    return _SHARED[key]


def _chunk(plan: ChunkPlan, number: int) -> Chunk:
    options = plan.options
    cal, catalogue, first_days = _shared(options, plan.now)
    first = number * options.chunk_size
    days = first_days[first : first + options.chunk_size]
    rng = np.random.default_rng([options.seed, number])
    kind = rng.choice(list(_KIND_P), size=len(days), p=list(_KIND_P.values()))
    favourite = rng.choice(len(catalogue.category_share), len(days), p=catalogue.category_share)
    return Chunk(plan.workspace_id, plan.now, plan.cipher, rng, cal, catalogue, options.seed,
                 number, first, days, kind, favourite)  # fmt: skip


def build_chunk_rows(chunk: Chunk) -> dict[str, list[dict[str, Any]]]:
    """Generate every row of one chunk, by table."""
    assign_ids(chunk)
    purchases = draw_purchases(chunk.rng, chunk.cal, chunk.first_day, chunk.kind == BUYER)
    facts = build_orders(chunk, purchases)
    build_activity(chunk, facts)
    build_profiles(chunk, facts)
    return chunk.rows


def build_chunk(plan: ChunkPlan, number: int) -> dict[str, Sequence[Any]]:
    """Chunk ``number``'s rows by table: dicts, or SQLite driver tuples when ``plan.encode``."""
    rows = build_chunk_rows(_chunk(plan, number))
    if not plan.encode:
        return dict(rows)
    return {name: encode_rows(tables.metadata.tables[name], batch) for name, batch in rows.items()}


def insert_chunk(conn: Connection, plan: ChunkPlan, rows: dict[str, Sequence[Any]]) -> int:
    """Insert one built chunk in table order; returns how many rows were written."""
    written = 0
    for name in TABLES:
        batch = rows.get(name)
        if not batch:
            continue
        table = tables.metadata.tables[name]
        if plan.encode:
            insert_encoded(conn, table, list(batch))
        else:
            bulk_insert(conn, table, batch)
        written += len(batch)
    return written


def built_chunks(plan: ChunkPlan, workers: int) -> Iterator[dict[str, Sequence[Any]]]:
    """Every chunk in order; with ``workers``, built ahead in other processes.

    Building (NumPy draws, encryption, JSON) and inserting each take about half the
    time, so on two cores a builder process running one chunk ahead of the writer
    nearly halves the wall time. Spawned, not forked: the parent may hold threads.
    """
    count = -(-plan.options.customers // plan.options.chunk_size)
    if workers <= 0:
        yield from (build_chunk(plan, number) for number in range(count))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: deque[Future[dict[str, Sequence[Any]]]] = deque()
        submitted = 0
        for _ in range(count):
            while submitted < count and len(pending) < workers + 1:
                pending.append(pool.submit(build_chunk, plan, submitted))
                submitted += 1
            yield pending.popleft().result()


def generate_demo_data(
    db: Database, options: DemoOptions, progress: Callable[[int], None] | None = None
) -> DemoSummary:
    """Create (or with ``replace``, refill) the demo workspace; raises Conflict if it has data."""
    started = time.perf_counter()
    now = db.clock.now()
    with db.write() as conn:
        workspace = _prepare_workspace(conn, options, now)
        summary = DemoSummary(workspace)
        catalogue = _shared(options, now)[1]
        products = product_rows(workspace.workspace_id, catalogue, now)
        bulk_insert(conn, tables.products, products)
        summary.counts["products"] = len(products)
    plan = ChunkPlan(options, workspace.workspace_id, now, db.cipher, db.dialect == "sqlite")
    workers = options.workers if options.workers is not None else int(options.customers >= 20_000)
    for number, rows in enumerate(built_chunks(plan, workers)):
        with db.write() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
            for name, batch in rows.items():
                summary.counts[name] += len(batch)
            insert_chunk(conn, plan, rows)
        if progress is not None:
            first = number * options.chunk_size
            progress(min(options.chunk_size, options.customers - first))
    refresh_statistics(db.engine, [tables.metadata.tables[name] for name in TABLES])
    summary.seconds = time.perf_counter() - started
    return summary
