"""Benchmark RFM for every customer on the store against the same query in DuckDB.

A shop of N customers and 10 × N orders (skewed: some customers buy often, some
never) is generated with NumPy and bulk-loaded straight into ``orders`` (SQLite:
``executemany`` in large transactions into a file cached under /tmp; PostgreSQL:
``COPY``, cached in a workspace named after the size and seed). Then, best of
``--repeat`` runs:

* ``kizuna``: ``analytics.rfm.rfm()`` end to end (SQL, fetch, DataFrame with labels);
* ``inside``: the same compiled query run inside the store, aggregated over every
  column it computes (one row leaves the database: the SQL's own share of the time);
* ``duckdb``: the same computation (net purchases, whole-day recency, RANK()
  quintiles, the default segment CASE) over the same arrays in an in-memory
  DuckDB, fetched as a DataFrame; loading is not timed.

Prints the times, the ratios to DuckDB and whether the segment counts agree.

    .venv/bin/python bench/analytics_rfm.py --customers 100000
    .venv/bin/python bench/analytics_rfm.py --customers 100000 \\
        --database-url postgresql+psycopg://kizuna:kizuna@127.0.0.1:54329/kizuna_h2
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import sqlalchemy as sa

from _shop import (
    NOW,
    US_PER_DAY,
    YEARS,
    analyze,
    best,
    load_table,
    micros,
    open_store,
    timestamps,
    uuid4_hexes,
    ws_value,
)
from kizuna.analytics.base import purchase_window
from kizuna.analytics.rfm import rfm, scored_customers
from kizuna.analytics.rfm_rules import DEFAULT_SEGMENT_RULES, StateRules
from kizuna.store.tables import orders
from kizuna.store.workspaces import Workspace

CACHE = Path("/tmp/kizuna-bench-rfm")
STATUSES = ["placed", "cancelled", "returned"]


@dataclass(frozen=True)
class Shop:
    """The generated orders as parallel arrays (``ordered_at`` in µs since the epoch, UTC)."""

    customer_hex: np.ndarray  # per customer, 32 hex digits
    customer: np.ndarray  # per order, index into customer_hex
    ordered_at: np.ndarray
    total: np.ndarray
    status: np.ndarray  # 0 placed, 1 cancelled, 2 returned (refunded in full)

    def __len__(self) -> int:
        return len(self.customer)


def generate(customers: int, per_customer: int, seed: int) -> Shop:
    """Orders drawn with NumPy only: gamma-weighted buyers, uniform dates, lognormal totals."""
    rng = np.random.default_rng(seed)
    hexes = uuid4_hexes(rng, customers)
    n = customers * per_customer
    weights = np.cumsum(rng.gamma(0.6, size=customers))
    customer = np.searchsorted(weights, rng.random(n) * weights[-1])
    end = micros(NOW)
    ordered_at = rng.integers(end - YEARS * 365 * US_PER_DAY, end, n)
    order = np.argsort(ordered_at, kind="stable")  # rows arrive in time order, as in a shop
    total = np.round(rng.lognormal(8.7, 0.7, n), -1)
    status = rng.choice(3, n, p=[0.965, 0.02, 0.015])
    return Shop(hexes, customer[order], ordered_at[order], total, status)


def _columns(shop: Shop, ws: Workspace, start: int, stop: int) -> dict[str, Any]:
    """The ``orders`` values of orders ``start:stop`` as :func:`_shop.load_table` takes them."""
    part = slice(start, stop)
    total = shop.total[part]
    return {
        "workspace_id": ws.workspace_id.hex,
        "order_id": np.char.add("B", np.char.zfill(np.arange(start, stop).astype(str), 10)),
        "customer_id": shop.customer_hex[shop.customer[part]],
        "ordered_at": timestamps(shop.ordered_at[part]), "channel": "online",
        "status": np.array(STATUSES)[shop.status[part]],
        "currency": "JPY", "subtotal": total, "discount": 0.0, "shipping": 0.0, "tax": 0.0,
        "total": total, "refunded": np.where(shop.status[part] == 2, total, 0.0),
        "updated_at": timestamps(np.array([micros(NOW)]))[0],
    }  # fmt: skip


def _count(engine: sa.Engine, ws: Workspace) -> int:
    with engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM orders WHERE workspace_id = :ws")
        return int(conn.execute(query, {"ws": ws_value(engine, ws)}).scalar_one())


def _fill(engine: sa.Engine, shop: Shop, ws: Workspace) -> None:
    with engine.begin() as conn:
        conn.execute(orders.delete().where(orders.c.workspace_id == ws.workspace_id))
    print(f"loading {len(shop):,} orders into {engine.dialect.name} …", flush=True)
    load_table(engine, orders, len(shop), lambda start, stop: _columns(shop, ws, start, stop))
    analyze(engine, [orders])


def open_shop(url: str | None, shop: Shop, slug: str) -> tuple[sa.Engine, Workspace]:
    """The store holding ``shop`` in workspace ``slug``: reused when complete, else (re)loaded."""
    return open_store(url, slug, CACHE, lambda engine, ws: _count(engine, ws) == len(shop),
                      lambda engine, ws: _fill(engine, shop, ws))  # fmt: skip


def _duckdb_sql() -> str:
    """The RFM query of ``analytics.rfm`` written for DuckDB (default scoring and rules)."""
    whens = []
    for rule in DEFAULT_SEGMENT_RULES.rules:
        ranges = (("r_score", rule.recency), ("f_score", rule.frequency),
                  ("m_score", rule.monetary))  # fmt: skip
        tests = [f"{c} BETWEEN {lo} AND {hi}" for c, (lo, hi) in ranges if (lo, hi) != (1, 5)]
        whens.append(f"WHEN {' AND '.join(tests) or 'true'} THEN '{rule.key}'")
    states = StateRules()
    as_of = micros(NOW)
    return f"""
    WITH p AS (
      SELECT customer_id, ordered_at, total - refunded AS amount FROM orders
      WHERE workspace_id = ? AND status <> 'cancelled' AND currency = 'JPY'
        AND ordered_at <= make_timestamp({as_of}) AND total - refunded > 0
    ), summary AS (
      SELECT customer_id, min(ordered_at) AS first_purchase_at,
             max(ordered_at) AS last_purchase_at,
             (epoch_us(make_timestamp({as_of})) - epoch_us(max(ordered_at))) // 1000000 // 86400
               AS recency_days,
             count(*) AS frequency, sum(amount) AS monetary
      FROM p GROUP BY customer_id
    ), scores AS (
      SELECT *,
        1 + (5 * (rank() OVER (ORDER BY recency_days DESC) - 1)) // count(*) OVER () AS r_score,
        1 + (5 * (rank() OVER (ORDER BY frequency) - 1)) // count(*) OVER () AS f_score,
        1 + (5 * (rank() OVER (ORDER BY monetary) - 1)) // count(*) OVER () AS m_score
      FROM summary
    )
    SELECT *, CASE {" ".join(whens)} END AS segment,
      CASE WHEN recency_days > {states.dormant_after_days} THEN 'dormant'
           WHEN frequency <= 1 THEN 'new'
           WHEN frequency >= {states.loyal_orders} THEN 'loyal'
           WHEN frequency >= {states.good_orders} THEN 'good' ELSE 'stable' END AS state
    FROM scores
    """


def open_duckdb(shop: Shop, ws: Workspace) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the same orders (the columns the query reads, UUID keys)."""
    con = duckdb.connect()
    people = pd.DataFrame({"idx": np.arange(len(shop.customer_hex)), "hex": shop.customer_hex})
    orders = pd.DataFrame({
        "idx": shop.customer,
        "ordered_at": shop.ordered_at.astype("datetime64[us]"),
        "status": pd.Categorical.from_codes(shop.status, pd.Index(STATUSES)),
        "total": shop.total,
        "refunded": np.where(shop.status == 2, shop.total, 0.0),
    })  # fmt: skip
    con.register("people", people)
    con.register("raw_orders", orders)
    con.execute(
        "CREATE TABLE orders AS SELECT ?::VARCHAR AS workspace_id, p.hex::UUID AS customer_id, "
        "o.ordered_at, o.status::VARCHAR AS status, 'JPY' AS currency, o.total, o.refunded "
        "FROM raw_orders o JOIN people p USING (idx)",
        [str(ws.workspace_id)],
    )
    con.unregister("raw_orders")
    con.unregister("people")
    return con


def main() -> None:
    """Generate or reuse the shop, time the three runs and print the comparison."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=int, default=10)
    parser.add_argument("--database-url", default=None, help="default: a cached SQLite file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    shop = generate(args.customers, args.orders_per_customer, args.seed)
    print(f"generated {len(shop):,} orders for {args.customers:,} customers "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    slug = f"bench-rfm-v2-{args.customers}-{args.orders_per_customer}-{args.seed}"
    engine, ws = open_shop(args.database_url, shop, slug)
    backend = engine.dialect.name

    def run_kizuna() -> pd.DataFrame:
        with engine.connect() as conn:
            return rfm(conn, ws, as_of=NOW)

    def run_in_database() -> int:
        with engine.connect() as conn:
            window = purchase_window(ws, as_of=NOW)
            q = scored_customers(window, as_of=NOW, dialect=backend).subquery()
            # Aggregates over every computed column, so none can be skipped, and one row returns.
            scores = sa.func.sum(q.c.r_score + q.c.f_score + q.c.m_score)
            labels = (sa.func.max(q.c.segment), sa.func.max(q.c.state))
            times = (sa.func.max(q.c.first_purchase_at), sa.func.max(q.c.last_purchase_at))
            query = sa.select(sa.func.count(), scores, *labels, *times, sa.func.sum(q.c.monetary))
            return int(conn.execute(query).one()[0])

    con = open_duckdb(shop, ws)
    sql = _duckdb_sql()
    kizuna_s, frame = best(args.repeat, run_kizuna)
    sql_s, rows = best(args.repeat, run_in_database)
    duck_s, duck = best(args.repeat, lambda: con.execute(sql, [str(ws.workspace_id)]).df())
    print(f"RFM for {len(frame):,} customers over {len(shop):,} orders ({backend}):")
    print(f"  kizuna rfm() on {backend:<11} {kizuna_s:7.2f} s   {kizuna_s / duck_s:5.1f}× DuckDB")
    print(f"  inside {backend} (no fetch) {sql_s:7.2f} s   {sql_s / duck_s:5.1f}× DuckDB")
    print(f"  DuckDB in memory (anchor) {duck_s:7.2f} s")
    print(f"  results agree (every customer's R, F, M and segment): {_agree(frame, duck, rows)}")


def _agree(frame: pd.DataFrame, duck: pd.DataFrame, rows: int) -> str:
    duck = duck.assign(customer_id=duck["customer_id"].astype(str))
    columns = ["recency_days", "frequency", "r_score", "f_score", "m_score", "segment", "state"]
    merged = frame.merge(duck, on="customer_id", suffixes=("", "_duck"))
    same = len(merged) == len(frame) == len(duck) == rows
    for column in columns:
        same = same and bool((merged[column] == merged[f"{column}_duck"]).all())
    same = same and bool(np.allclose(merged["monetary"], merged["monetary_duck"]))
    return "yes" if same else "NO"


if __name__ == "__main__":
    main()
