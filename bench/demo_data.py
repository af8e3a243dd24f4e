"""Benchmark ``kizuna demo-data`` into a fresh temporary SQLite store.

Prints seconds, customers/s and rows/s per table, then the anchor: the time to
insert the same rows, already built, with the same bulk insert (no generation),
and the ratio of the two.

    .venv/bin/python bench/demo_data.py --customers 100000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kizuna.bootstrap import open_database
from kizuna.clock import FixedClock
from kizuna.config import load_settings
from kizuna.demo import DemoOptions, generate_demo_data
from kizuna.demo.writer import ChunkPlan, build_chunk, insert_chunk
from kizuna.store.workspaces import create_workspace

SECRET = "YmVuY2gtc2VjcmV0LWtleS1mb3Ita2l6dW5hLWRlbW8tZGF0YQ"
NOW = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)


def _open(home: Path) -> Any:
    settings = load_settings({"KIZUNA_HOME": str(home), "KIZUNA_SECRET_KEY": SECRET})
    return open_database(settings, clock=FixedClock(NOW))


def _prebuilt(db: Any, options: DemoOptions) -> tuple[ChunkPlan, list[dict[str, Any]]]:
    """Build every chunk's rows into memory, encoded as the run inserts them."""
    with db.write() as conn:
        ws = create_workspace(conn, options.workspace, now=NOW)
    plan = ChunkPlan(options, ws.workspace_id, NOW, db.cipher, encode=True)
    chunks = -(-options.customers // options.chunk_size)
    return plan, [build_chunk(plan, number) for number in range(chunks)]


def _anchor(db: Any, plan: ChunkPlan, built: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for rows in built:
        with db.write() as conn:
            conn.exec_driver_sql("PRAGMA cache_size=-262144")
            insert_chunk(conn, plan, rows)
    return time.perf_counter() - started


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = _open(Path(tmp) / "run")
        summary = generate_demo_data(db, DemoOptions(customers=args.customers, seed=args.seed))
        db.dispose()
        total = sum(summary.counts.values())
        print(f"demo-data: {args.customers:,} customers, {total:,} rows in {summary.seconds:.1f} s"
              f" ({args.customers / summary.seconds:,.0f} customers/s,"
              f" {total / summary.seconds:,.0f} rows/s)")  # fmt: skip
        for name, count in summary.counts.items():
            print(f"  {name:<15} {count:>10,} rows  {count / summary.seconds:>10,.0f} rows/s")
        db = _open(Path(tmp) / "anchor")
        plan, built = _prebuilt(db, DemoOptions(customers=args.customers, seed=args.seed))
        seconds = _anchor(db, plan, built)
        db.dispose()
        print(f"anchor: insert of the same {total:,} pre-built rows: {seconds:.1f} s"
              f" ({total / seconds:,.0f} rows/s)")  # fmt: skip
        print(f"ratio demo-data / anchor: {summary.seconds / seconds:.2f}")


if __name__ == "__main__":
    main()
