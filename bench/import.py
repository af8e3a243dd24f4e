"""Benchmark: import an orders CSV (CP932, Japanese headers) and compare with bare csv parsing.

    .venv/bin/python bench/import.py [--rows 1000000] [--database-url postgresql+psycopg://…]

Prints rows/s of the import, rows/s of merely reading and parsing the same file
with Python's csv module (the anchor), their ratio, and the peak resident memory.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kizuna.bootstrap import open_database
from kizuna.config import load_settings
from kizuna.ingest.files import import_file
from kizuna.store.workspaces import create_workspace

HEADER = ["受注番号", "顧客ID", "メールアドレス", "電話番号", "購入日時", "商品コード", "商品名",
          "カテゴリ", "数量", "単価", "値引", "合計金額"]  # fmt: skip
SECRET = "YmVuY2gtc2VjcmV0LWtleS1mb3Ita2l6dW5hLWJlbmNoLTMyYnl0ZXM"


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write ``rows`` line-item rows (about 2 per order) in CP932."""
    rng = random.Random(seed)
    customers = max(rows // 8, 1)
    with path.open("w", encoding="cp932", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        written, order = 0, 0
        while written < rows:
            order += 1
            c = rng.randrange(customers)
            day, hour = f"2024/{rng.randint(1, 12)}/{rng.randint(1, 28)}", rng.randint(0, 23)
            when = f"{day} {hour}:{rng.randint(0, 59):02d}"
            lines = min(rng.choice((1, 1, 2, 3)), rows - written)
            prices = [rng.choice((500, 980, 1980, 3200)) for _ in range(lines)]
            total = sum(prices)
            for n in range(lines):
                sku = rng.randrange(2000)
                out.writerow([
                    f"ORD{order:08d}", f"C{c:07d}", f"user{c}@example.jp",
                    f"０９０－{c % 10000:04d}－{c // 10000 % 10000:04d}", when, f"SKU-{sku:05d}",
                    f"商品{sku}", "食品", "１", prices[n], 0, total,
                ])  # fmt: skip
            written += lines


def parse_only(path: Path) -> float:
    """Rows/s of decoding and splitting the file with the csv module (the anchor)."""
    started = time.perf_counter()
    with path.open(encoding="cp932", newline="") as f:
        count = sum(1 for _ in csv.reader(f)) - 1
    return count / (time.perf_counter() - started)


def run_import(path: Path, home: Path, database_url: str | None, chunk_rows: int) -> float:
    """Import the file into a fresh workspace; returns rows/s."""
    env = {"KIZUNA_HOME": str(home), "KIZUNA_SECRET_KEY": SECRET}
    if database_url:
        env["KIZUNA_DATABASE_URL"] = database_url
    db = open_database(load_settings(env))
    with db.write() as conn:
        ws = create_workspace(conn, "bench-" + uuid.uuid4().hex[:8], now=db.clock.now())
    summary = import_file(db, ws, "orders", path, chunk_rows=chunk_rows)
    db.dispose()
    print(f"import: {summary.rows_read:,} rows read, {summary.rows_imported:,} imported, "
          f"{summary.rows_rejected:,} rejected in {summary.seconds:.1f} s")  # fmt: skip
    return summary.rows_per_second


def main() -> None:
    """Generate, parse, import, report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--chunk-rows", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "受注.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        size = path.stat().st_size / 1e6
        print(
            f"generated {args.rows:,} rows ({size:.0f} MB) in {time.perf_counter() - started:.1f} s"
        )
        anchor = parse_only(path)
        rate = run_import(path, Path(tmp) / "home", args.database_url, args.chunk_rows)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backend = "postgresql" if args.database_url else "sqlite"
    print(f"anchor (csv module read+parse): {anchor:,.0f} rows/s")
    print(f"import ({backend}): {rate:,.0f} rows/s  ratio to anchor: {rate / anchor:.3f}")
    print(f"peak memory (ru_maxrss): {peak_mb:.0f} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
