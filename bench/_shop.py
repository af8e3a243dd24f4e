"""Shared by the benchmarks: large shops bulk-loaded into a cached store, and timing.

Generation is NumPy only; loading bypasses the repositories (they are not what is
measured): SQLite gets the driver's ``executemany`` in one transaction per million
rows, PostgreSQL gets ``COPY``. Non-unique indexes are dropped while a table
loads and rebuilt after it (a sorted build is several times faster than ten
million random inserts), so the store ends with exactly the migrated schema.

A store is cached: SQLite in a file under ``cache`` (written as ``*.loading``,
renamed when complete), PostgreSQL in a workspace named after the size and seed.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from kizuna.demo.catalogue import Catalogue, build_catalogue, product_rows
from kizuna.demo.people import PREFECTURES as DEMO_PREFECTURES
from kizuna.errors import NotFound
from kizuna.security.pii import PiiCipher, load_or_create_secret
from kizuna.store import tables
from kizuna.store.bulk import bulk_insert
from kizuna.store.engine import json_dumps, make_engine
from kizuna.store.migrate import upgrade
from kizuna.store.workspaces import Workspace, create_workspace, get_workspace

__all__ = [
    "CHUNK",
    "EVENT_DAYS",
    "EVENT_NAMES",
    "NOW",
    "SECRET",
    "US_PER_DAY",
    "YEARS",
    "Build",
    "Events",
    "Orders",
    "People",
    "SegmentShop",
    "analyze",
    "best",
    "cipher",
    "event_properties",
    "generate_shop",
    "load_table",
    "micros",
    "open_shop",
    "open_store",
    "timestamps",
    "uuid4_hexes",
    "uuid7_hexes",
    "ws_value",
]

NOW = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)
US_PER_DAY = 86_400_000_000
CHUNK = 1_000_000

# Column name -> one value per row: an array, a list, or a scalar repeated on every row.
Columns = Mapping[str, Any]
Build = Callable[[int, int], Columns]  # rows start:stop of a table


def micros(moment: datetime) -> int:
    """Microseconds since the epoch (the generators' time unit)."""
    return int(moment.timestamp() * 1_000_000)


def uuid4_hexes(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random version-4 UUIDs as 32 hex digits."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return np.frombuffer(raw.tobytes().hex().encode(), dtype="S32").astype(str)


def uuid7_hexes(rng: np.random.Generator, at_us: np.ndarray) -> np.ndarray:
    """Time-ordered UUIDs (the layout of ``store.types.new_id``) for times in µs."""
    n = len(at_us)
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    ms = (at_us // 1000).astype(">u8").view(np.uint8).reshape(n, 8)
    raw[:, :6] = ms[:, 2:]
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x70
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return np.frombuffer(raw.tobytes().hex().encode(), dtype="S32").astype(str)


def timestamps(at_us: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` text: how the store keeps UTC times in SQLite."""
    text = np.datetime_as_string(at_us.astype("datetime64[us]"), unit="us")
    return np.char.replace(text, "T", " ")


def ws_value(engine: sa.Engine, ws: Workspace) -> Any:
    """The workspace id as a raw statement binds it (SQLite keeps UUIDs as hex)."""
    return ws.workspace_id.hex if engine.dialect.name == "sqlite" else ws.workspace_id


def best(runs: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """Fastest of ``runs`` calls and the last result."""
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def _values(value: Any, size: int) -> list[Any]:
    if isinstance(value, np.ndarray):
        return list(value.tolist())
    if isinstance(value, list):
        return value
    return [value] * size


def _insert_sqlite(driver: Any, table: sa.Table, columns: Columns, size: int) -> None:
    names = list(columns)
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) "
           f"VALUES ({', '.join('?' * len(names))})")  # fmt: skip
    values = [_values(columns[name], size) for name in names]
    driver.execute("BEGIN")
    driver.executemany(sql, zip(*values, strict=True))
    driver.execute("COMMIT")


def _bytea(values: list[Any]) -> list[str | None]:
    return [None if v is None else "\\x" + v.hex() for v in values]


def _copy_postgresql(driver: Any, table: sa.Table, columns: Columns, size: int) -> None:
    frame = pd.DataFrame({
        name: _bytea(_values(value, size))
        if isinstance(table.c[name].type, sa.LargeBinary) else value
        for name, value in columns.items()
    }, index=range(size))  # fmt: skip
    buffer = io.StringIO()
    frame.to_csv(buffer, header=False, index=False)
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    with driver.cursor() as cursor, cursor.copy(sql) as copy:
        copy.write(buffer.getvalue())
    driver.commit()


def load_table(engine: sa.Engine, table: sa.Table, total: int, build: Build) -> None:
    """Append ``total`` rows built ``CHUNK`` at a time; non-unique indexes are rebuilt after.

    Values as the store binds them on SQLite: UUIDs as 32 hex digits, times as
    :func:`timestamps` (UTC), JSON as text, ``None`` for NULL; bytes as ``bytes``.
    """
    sqlite = engine.dialect.name == "sqlite"
    indexes = [index for index in table.indexes if not index.unique]
    with engine.begin() as conn:
        for index in indexes:
            index.drop(conn, checkfirst=True)
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        if sqlite:
            driver.execute("PRAGMA synchronous=OFF")
            driver.execute("PRAGMA cache_size=-1048576")
        else:
            driver.execute("SET TIME ZONE 'UTC'")  # times arrive without an offset
            driver.commit()
        for start in range(0, total, CHUNK):
            stop = min(start + CHUNK, total)
            load = _insert_sqlite if sqlite else _copy_postgresql
            load(driver, table, build(start, stop), stop - start)
            verb = "loaded" if sqlite else "copied"
            print(f"  {verb} {stop:,} / {total:,} {table.name}", flush=True)
    finally:
        raw.close()
    _create_indexes(engine, indexes)


def _create_indexes(engine: sa.Engine, indexes: list[sa.Index]) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        for index in indexes:
            index.create(conn, checkfirst=True)


def analyze(engine: sa.Engine, tables: list[sa.Table]) -> None:
    """Refresh the planner's statistics after a bulk load."""
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        if engine.dialect.name == "sqlite":
            driver.execute("ANALYZE")
            return
        driver.autocommit = True
        for table in tables:
            driver.execute(f"VACUUM ANALYZE {table.name}")
    finally:
        raw.close()


def open_store(
    url: str | None,
    slug: str,
    cache: Path,
    is_loaded: Callable[[sa.Engine, Workspace], bool],
    fill: Callable[[sa.Engine, Workspace], None],
) -> tuple[sa.Engine, Workspace]:
    """The store holding workspace ``slug``: reused when ``is_loaded``, else ``fill``-ed.

    Without ``url``, a SQLite file under ``cache``; ``fill`` must clear what a
    previous, interrupted fill left in the workspace.
    """
    fresh_file = None
    if url is None:
        cache.mkdir(parents=True, exist_ok=True)
        path = cache / f"{slug}.db"
        if not path.exists():
            fresh_file = path.with_suffix(".loading")
            fresh_file.unlink(missing_ok=True)
        url = f"sqlite:///{fresh_file or path}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        try:
            ws = get_workspace(conn, slug)
        except NotFound:
            ws = create_workspace(conn, slug, time_zone="Asia/Tokyo", now=NOW)
    if not is_loaded(engine, ws):
        started = time.perf_counter()
        fill(engine, ws)
        print(f"  load took {time.perf_counter() - started:.1f} s", flush=True)
    if fresh_file is not None:
        engine.dispose()
        final = fresh_file.with_suffix(".db")
        fresh_file.rename(final)
        engine = make_engine(f"sqlite:///{final}")
    return engine, ws


# The segments shop ---------------------------------------------------------------------------

SECRET = base64.urlsafe_b64encode(b"kizuna bench: not a real secret!").decode().rstrip("=")
YEARS = 3  # of orders
EVENT_DAYS = 365  # of behaviour events
EVENT_NAMES = ("Product Viewed", "Product List Viewed", "Products Searched", "Product Added",
               "Checkout Started", "Order Completed")  # fmt: skip
_EVENT_P = (0.56, 0.10, 0.08, 0.14, 0.07, 0.05)
_CONTEXT = '{"library":{"name":"kizuna-bench"},"locale":"ja-JP"}'
_SOURCES = np.array(['{"source":"instagram"}', '{"source":"search"}', '{"source":"line"}',
                     '{"source":"referral"}', '{"source":"store"}'])  # fmt: skip
_STATUS = np.array(["placed", "cancelled", "returned"])
_CHANNELS = np.array(["online", "store", "marketplace"])


def cipher() -> PiiCipher:
    """The PII cipher of the benchmark shops (a fixed, public key: the data is invented)."""
    return PiiCipher(load_or_create_secret(Path("/nonexistent"), SECRET))


@dataclass(frozen=True)
class People:
    """Per customer, in primary-key order (``hexes`` sorted)."""

    hexes: np.ndarray
    favourite: np.ndarray  # category index
    registered: np.ndarray  # has a shop account (user_id identity, registered_at)
    first_seen: np.ndarray  # µs
    email: np.ndarray  # has an email address
    email_status: np.ndarray  # -1 no consent row, 0 opted out, 1 opted in
    suppressed: np.ndarray  # the address is on the email suppression list
    line_status: np.ndarray  # -1 no LINE id, else as email_status
    gender: np.ndarray  # object: str or None, as are the next three
    prefecture: np.ndarray
    rank: np.ndarray
    birth_md: np.ndarray


@dataclass(frozen=True)
class Events:
    """Behaviour events in time order (as a shop's tracking sends them)."""

    customer: np.ndarray
    at: np.ndarray  # µs
    name: np.ndarray  # index into EVENT_NAMES
    sku: np.ndarray  # index into the catalogue


@dataclass(frozen=True)
class Orders:
    """Orders (one line each) in time order."""

    customer: np.ndarray
    at: np.ndarray
    total: np.ndarray
    status: np.ndarray  # 0 placed, 1 cancelled, 2 returned (refunded in full)
    channel: np.ndarray
    sku: np.ndarray
    sale: np.ndarray


@dataclass(frozen=True)
class SegmentShop:
    """A generated shop: people, their events and orders, and the catalogue."""

    seed: int
    people: People
    events: Events
    orders: Orders
    catalogue: Catalogue

    @property
    def size(self) -> int:
        """How many customers."""
        return len(self.people.hexes)


def _skus(rng: np.random.Generator, catalogue: Catalogue, category: np.ndarray) -> np.ndarray:
    counts = np.bincount(catalogue.category_index, minlength=len(catalogue.category_names))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    picked: np.ndarray = start[category] + rng.random(len(category)) * counts[category]
    return picked.astype(np.int16)


def _categories(rng: np.random.Generator, favourite: np.ndarray, share: np.ndarray) -> np.ndarray:
    """The customer's favourite category six times in ten, else one by overall share."""
    other = rng.choice(len(share), len(favourite), p=share)
    return np.where(rng.random(len(favourite)) < 0.6, favourite, other)


def _draw_people(rng: np.random.Generator, n: int, catalogue: Catalogue) -> People:
    end = micros(NOW)
    email = rng.random(n) < 0.88
    opted = np.where(rng.random(n) < 0.68, 1, 0)
    line = rng.random(n) < 0.3
    population = np.array([p[1] for p in DEMO_PREFECTURES], dtype=float)
    birthday = np.datetime64("2001-01-01") + rng.integers(0, 365, n)
    birth_md = np.char.replace(np.datetime_as_string(birthday)[:], "2001-", "")
    return People(
        hexes=np.sort(uuid4_hexes(rng, n)),
        favourite=rng.choice(len(catalogue.category_share), n, p=catalogue.category_share),
        registered=rng.random(n) < 0.8,
        first_seen=end - rng.integers(0, YEARS * 365 * US_PER_DAY, n),
        email=email,
        email_status=np.where(email, opted, -1),
        suppressed=email & (rng.random(n) < 0.025),
        line_status=np.where(line, np.where(rng.random(n) < 0.85, 1, 0), -1),
        gender=np.array(["female", "male", None], dtype=object)[
            rng.choice(3, n, p=[0.62, 0.33, 0.05])],
        prefecture=np.array([p[0] for p in DEMO_PREFECTURES], dtype=object)[
            rng.choice(len(population), n, p=population / population.sum())],
        rank=np.array([None, "regular", "silver", "gold", "platinum"], dtype=object)[
            rng.choice(5, n, p=[0.3, 0.4, 0.17, 0.09, 0.04])],
        birth_md=_or_none(rng.random(n) < 0.75, birth_md),
    )  # fmt: skip


def _or_none(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` where ``mask``, else ``None`` (NULL)."""
    out = np.full(len(mask), None, dtype=object)
    out[mask] = values[mask]
    return out


def _skewed(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """``m`` draws of customers weighted by Gamma(0.6): a few very active, many barely."""
    weights = np.cumsum(rng.gamma(0.6, size=n))
    picked: np.ndarray = np.searchsorted(weights, rng.random(m) * weights[-1])
    return picked.astype(np.int32)


def _draw_events(rng: np.random.Generator, people: People, catalogue: Catalogue, m: int) -> Events:
    customer = _skewed(rng, len(people.hexes), m)
    at = micros(NOW) - rng.integers(0, EVENT_DAYS * US_PER_DAY, m)
    name = rng.choice(len(EVENT_NAMES), m, p=_EVENT_P).astype(np.int8)
    category = _categories(rng, people.favourite[customer], catalogue.category_share)
    sku = _skus(rng, catalogue, category)
    order = np.argsort(at, kind="stable")  # rows arrive in time order, as in a shop
    return Events(customer[order], at[order], name[order], sku[order])


def _draw_orders(rng: np.random.Generator, people: People, catalogue: Catalogue, m: int) -> Orders:
    customer = _skewed(rng, len(people.hexes), m)
    at = micros(NOW) - rng.integers(0, YEARS * 365 * US_PER_DAY, m)
    order = np.argsort(at, kind="stable")
    category = _categories(rng, people.favourite[customer], catalogue.category_share)
    return Orders(
        customer=customer[order],
        at=at[order],
        total=np.round(rng.lognormal(8.7, 0.7, m), -1),
        status=rng.choice(3, m, p=[0.965, 0.02, 0.015]).astype(np.int8),
        channel=rng.choice(3, m, p=[0.85, 0.12, 0.03]).astype(np.int8),
        sku=_skus(rng, catalogue, category)[order],
        sale=rng.random(m) < 0.2,
    )


def generate_shop(customers: int, events_per: int, orders_per: int, seed: int) -> SegmentShop:
    """The shop, drawn with NumPy only (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    catalogue = build_catalogue(np.random.default_rng([seed, 1]))
    people = _draw_people(rng, customers, catalogue)
    events = _draw_events(rng, people, catalogue, customers * events_per)
    orders = _draw_orders(rng, people, catalogue, customers * orders_per)
    return SegmentShop(seed, people, events, orders, catalogue)


class _Writer:
    """Builds each table's rows of a shop, chunk by chunk, as :func:`load_table` takes them."""

    def __init__(self, shop: SegmentShop, ws: Workspace, pii: PiiCipher) -> None:
        self.shop, self.ws, self.pii = shop, ws.workspace_id.hex, pii
        p = shop.people
        self.last_seen = p.first_seen.copy()
        np.maximum.at(self.last_seen, shop.events.customer, shop.events.at)
        self.email_hash = [
            pii.lookup_hash("email", f"c{i:07d}@example.com") if has else None
            for i, has in enumerate(p.email.tolist())
        ]
        kinds = [
            ("email", p.email),
            ("user_id", p.registered),
            ("line_user_id", p.line_status >= 0),
        ]
        self.ident_kind = np.concatenate([np.full(int(m.sum()), k) for k, m in kinds])
        self.ident_customer = np.concatenate([np.flatnonzero(m) for _, m in kinds])
        consent = [("email", p.email_status), ("line", p.line_status)]
        self.consent_channel = np.concatenate([np.full(int((s >= 0).sum()), c) for c, s in consent])
        self.consent_customer = np.concatenate([np.flatnonzero(s >= 0) for _, s in consent])
        self.consent_status = np.concatenate([s[s >= 0] for _, s in consent])
        self.props = event_properties(shop.catalogue)

    def tables(self) -> list[tuple[sa.Table, int, Build]]:
        """Every table to load, with its row count and row builder, in load order."""
        s, p = self.shop, self.shop.people
        return [
            (tables.customers, s.size, self.customers),
            (tables.identities, len(self.ident_kind), self.identities),
            (tables.consents, len(self.consent_channel), self.consents),
            (tables.suppressions, int(p.suppressed.sum()), self.suppressions),
            (tables.events, len(s.events.customer), self.events),
            (tables.orders, len(s.orders.customer), self.orders),
            (tables.order_items, len(s.orders.customer), self.order_items),
        ]

    def customers(self, start: int, stop: int) -> Columns:
        """``customers`` rows (personal values encrypted with :func:`cipher`)."""
        p, part = self.shop.people, slice(start, stop)
        index = np.arange(start, stop)
        shop_id = np.char.add("C", np.char.zfill(index.astype(str), 7))
        enc = [None if h is None else self.pii.encrypt(f"c{i:07d}@example.com")
               for i, h in zip(index.tolist(), self.email_hash[part], strict=True)]  # fmt: skip
        seen = timestamps(p.first_seen[part])
        return {
            "workspace_id": self.ws, "customer_id": p.hexes[part],
            "shop_customer_id": _or_none(p.registered[part], shop_id),
            "email_enc": enc, "email_hash": self.email_hash[part], "birth_md": p.birth_md[part],
            "gender": p.gender[part], "prefecture": p.prefecture[part],
            "membership_rank": p.rank[part], "attributes": _SOURCES[index % len(_SOURCES)],
            "registered_at": _or_none(p.registered[part], seen),
            "first_seen_at": seen, "last_seen_at": timestamps(self.last_seen[part]),
            "updated_at": timestamps(np.array([micros(NOW)]))[0],
        }  # fmt: skip

    def identities(self, start: int, stop: int) -> Columns:
        """Email, user id and LINE identities, hashed and encrypted as the resolver writes them."""
        p, part = self.shop.people, slice(start, stop)
        kinds, owners = self.ident_kind[part].tolist(), self.ident_customer[part]
        values = [_identity_value(kind, i, p.hexes[i]) for kind, i in zip(kinds, owners.tolist(),
                                                                          strict=True)]  # fmt: skip
        seen = timestamps(p.first_seen[owners])
        return {
            "workspace_id": self.ws, "kind": kinds,
            "value_hash": [self.pii.lookup_hash(k, v) for k, v in zip(kinds, values, strict=True)],
            "customer_id": p.hexes[owners], "value_enc": [self.pii.encrypt(v) for v in values],
            "first_seen_at": seen, "last_seen_at": seen,
        }  # fmt: skip

    def consents(self, start: int, stop: int) -> Columns:
        """The latest consent per customer and channel."""
        part, owners = slice(start, stop), self.consent_customer[start:stop]
        status = np.where(self.consent_status[part] == 1, "opted_in", "opted_out")
        return {"workspace_id": self.ws, "customer_id": self.shop.people.hexes[owners],
                "channel": self.consent_channel[part], "status": status,
                "changed_at": timestamps(self.shop.people.first_seen[owners]),
                "updated_at": timestamps(np.array([micros(NOW)]))[0]}  # fmt: skip

    def suppressions(self, start: int, stop: int) -> Columns:
        """Suppressed email addresses (hard bounces, a few complaints)."""
        owners = np.flatnonzero(self.shop.people.suppressed)[start:stop]
        reason = np.where(owners % 10 == 0, "complaint", "hard_bounce")
        return {"workspace_id": self.ws, "channel": "email",
                "address_hash": [self.email_hash[i] for i in owners.tolist()], "reason": reason,
                "customer_id": self.shop.people.hexes[owners],
                "created_at": timestamps(self.shop.people.first_seen[owners])}  # fmt: skip

    def events(self, start: int, stop: int) -> Columns:
        """Track events with the e-commerce spec's properties."""
        e, part = self.shop.events, slice(start, stop)
        rng = np.random.default_rng([self.shop.seed, 9, start])
        stamp = timestamps(e.at[part])
        serial = np.char.zfill(np.arange(start, stop).astype(str), 10)
        props = self.props[e.name[part].astype(np.int64) * len(self.shop.catalogue) + e.sku[part]]
        return {
            "workspace_id": self.ws, "customer_id": self.shop.people.hexes[e.customer[part]],
            "event_id": uuid7_hexes(rng, e.at[part]), "message_id": np.char.add("bench-", serial),
            "type": "track", "name": np.array(EVENT_NAMES)[e.name[part]], "properties": props,
            "context": _CONTEXT, "occurred_at": stamp, "received_at": stamp,
        }  # fmt: skip

    def orders(self, start: int, stop: int) -> Columns:
        """Orders in yen, net of nothing: cancelled and fully returned ones included."""
        o, part = self.shop.orders, slice(start, stop)
        total = o.total[part]
        return {
            "workspace_id": self.ws, "order_id": _order_ids(start, stop),
            "customer_id": self.shop.people.hexes[o.customer[part]],
            "ordered_at": timestamps(o.at[part]), "channel": _CHANNELS[o.channel[part]],
            "status": _STATUS[o.status[part]], "currency": "JPY", "subtotal": total,
            "discount": 0.0, "shipping": 0.0, "tax": 0.0, "total": total,
            "refunded": np.where(o.status[part] == 2, total, 0.0),
            "updated_at": timestamps(np.array([micros(NOW)]))[0],
        }  # fmt: skip

    def order_items(self, start: int, stop: int) -> Columns:
        """One line per order, from the catalogue."""
        o, part, cat = self.shop.orders, slice(start, stop), self.shop.catalogue
        sku = o.sku[part]
        return {
            "workspace_id": self.ws, "order_id": _order_ids(start, stop), "line_no": 1,
            "customer_id": self.shop.people.hexes[o.customer[part]],
            "sku": np.array(cat.sku)[sku], "product_id": np.array(cat.sku)[sku],
            "product_name": np.array(cat.name)[sku], "category": np.array(cat.category)[sku],
            "brand": np.array(cat.brand)[sku], "quantity": 1, "unit_price": o.total[part],
            "discount": 0.0, "is_sale": o.sale[part],
            "returned_quantity": (o.status[part] == 2).astype(np.int64),
        }  # fmt: skip


def _order_ids(start: int, stop: int) -> np.ndarray:
    return np.char.add("B", np.char.zfill(np.arange(start, stop).astype(str), 10))


def _identity_value(kind: str, index: int, customer_hex: str) -> str:
    if kind == "email":
        return f"c{index:07d}@example.com"
    return f"C{index:07d}" if kind == "user_id" else f"U{customer_hex}"


def event_properties(catalogue: Catalogue) -> np.ndarray:
    """JSON ``properties`` text per event name and SKU, at ``name * len(catalogue) + sku``."""
    skus = range(len(catalogue))
    return np.array(
        [json_dumps(_properties(catalogue, name, sku)) for name in EVENT_NAMES for sku in skus]
    )


def _properties(catalogue: Catalogue, name: str, sku: int) -> dict[str, Any]:
    """What a shop's tracking sends with each event (Segment e-commerce spec)."""
    product = {"product_id": catalogue.sku[sku], "sku": catalogue.sku[sku],
               "name": catalogue.name[sku], "category": catalogue.category[sku],
               "brand": catalogue.brand[sku], "price": float(catalogue.price[sku]),
               "currency": "JPY"}  # fmt: skip
    if name in ("Product Viewed", "Product Added"):
        return product if name == "Product Viewed" else {**product, "quantity": 1}
    if name == "Product List Viewed":
        return {"category": catalogue.category[sku]}
    if name == "Products Searched":
        return {"query": catalogue.brand[sku]}
    value = float(catalogue.price[sku])
    return (
        {"value": value, "currency": "JPY"}
        if name == "Checkout Started"
        else {"revenue": value, "currency": "JPY", "products": [product]}
    )


def _mark(shop: SegmentShop) -> str:
    e, o = len(shop.events.customer), len(shop.orders.customer)
    return f"bench shop v2: {shop.size} customers, {e} events, {o} orders, seed {shop.seed}"


def _fill(shop: SegmentShop, engine: sa.Engine, ws: Workspace) -> None:
    writer = _Writer(shop, ws, cipher())
    loads = writer.tables()
    print(f"loading the shop into {engine.dialect.name} …", flush=True)
    with engine.begin() as conn:
        for table in [tables.products, *(t for t, _, _ in loads), tables.customer_metrics]:
            conn.execute(table.delete().where(table.c.workspace_id == ws.workspace_id))
        bulk_insert(conn, tables.products, product_rows(ws.workspace_id, shop.catalogue, NOW))
    for table, total, build in loads:
        load_table(engine, table, total, build)
    analyze(engine, [table for table, _, _ in loads])
    with engine.begin() as conn:
        conn.execute(tables.workspaces.update()
                     .where(tables.workspaces.c.workspace_id == ws.workspace_id)
                     .values(name=_mark(shop)))  # fmt: skip


def open_shop(url: str | None, shop: SegmentShop, cache: Path) -> tuple[sa.Engine, Workspace]:
    """The store holding ``shop`` (cached: SQLite file under ``cache`` or PostgreSQL workspace)."""
    e, o = len(shop.events.customer) // shop.size, len(shop.orders.customer) // shop.size
    slug = f"bench-segments-v2-{shop.size}-{e}-{o}-{shop.seed}"
    return open_store(url, slug, cache, lambda _engine, ws: ws.name == _mark(shop),
                      lambda engine, ws: _fill(shop, engine, ws))  # fmt: skip
