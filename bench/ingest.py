"""Ingestion throughput: events/s through ``POST /v1/batch`` vs straight inserts into ``events``.

Usage: .venv/bin/python bench/ingest.py [--database-url URL] [--events N] [--clients C]

Several client processes post 100-event batches over keep-alive HTTP to a real
uvicorn server on loopback (track/page/identify, mostly known customers, some
new anonymous ones). The anchor is the same number of event rows inserted
straight into the same database's ``events`` table, 100 rows per transaction.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import multiprocessing
import random
import socket
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import orjson
import uvicorn

from kizuna.api import build_app
from kizuna.bootstrap import open_database
from kizuna.config import load_settings
from kizuna.ingest.pipeline import ingest_messages
from kizuna.ingest.segment import parse_batch
from kizuna.store.scope import Scope
from kizuna.store.tables import events
from kizuna.store.types import new_id
from kizuna.store.workspaces import create_workspace, create_write_key

BATCH = 100
KNOWN = 2_000
PAGES = ["/", "/items", "/items/tea", "/cart", "/campaign/spring"]
EVENTS = ["Product Viewed", "Product List Viewed", "Products Searched", "Promotion Viewed"]


def message(rng: random.Random, n: int, run: str) -> dict:
    if rng.random() < 0.9:
        who = {"userId": f"user-{rng.randrange(KNOWN)}"}
    else:
        who = {"anonymousId": f"anon-{run}-{n}"}
    base = {"messageId": f"{run}-{n}", "timestamp": "2026-04-01T02:59:00Z", **who,
            "context": {"library": {"name": "bench"}, "page": {"path": rng.choice(PAGES)},
                        "userAgent": "Mozilla/5.0 (bench)", "locale": "ja-JP"}}  # fmt: skip
    kind = rng.random()
    if kind < 0.6:
        props = {"product_id": f"P{rng.randrange(500)}", "price": rng.randrange(500, 9000)}
        return {**base, "type": "track", "event": rng.choice(EVENTS), "properties": props}
    if kind < 0.9:
        return {**base, "type": "page", "name": "Page", "properties": {"path": rng.choice(PAGES)}}
    traits = {"plan": rng.choice(["free", "gold"]), "email": f"u{n}-{run}@example.com"}
    return {**base, "type": "identify", "traits": traits}


def bodies(total: int, run: str, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for start in range(0, total, BATCH):
        batch = [message(rng, n, run) for n in range(start, min(start + BATCH, total))]
        out.append(orjson.dumps({"batch": batch, "sentAt": "2026-04-01T02:59:30Z"}))
    return out


def seed_known(db, workspace_id) -> None:
    items = [
        {"type": "identify", "userId": f"user-{i}", "traits": {"plan": "free"}}
        for i in range(KNOWN)
    ]
    parsed = parse_batch({"batch": items}, db.clock.now())
    with db.write() as conn:
        ingest_messages(Scope(conn, db.cipher, workspace_id, db.clock.now()), parsed.messages)


def client(args: tuple[int, str, list[bytes]]) -> int:
    port, key, payloads = args
    conn = http.client.HTTPConnection("127.0.0.1", port)
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    for body in payloads:
        conn.request("POST", "/v1/batch", body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}")
    conn.close()
    return len(payloads)


def serve(db) -> tuple[uvicorn.Server, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(build_app(db), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off", ws="none", access_log=False,
                            http="httptools", loop="uvloop")  # fmt: skip
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, port


def through_http(db, key: str, total: int, clients: int) -> float:
    payloads = bodies(total, uuid.uuid4().hex[:8])
    server, port = serve(db)
    shares = [(port, key, payloads[i::clients]) for i in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        pool.map(client, [(port, key, [])] * clients)  # start the workers before timing
        started = time.perf_counter()
        pool.map(client, shares)
        elapsed = time.perf_counter() - started
    server.should_exit = True
    return total / elapsed


def direct(db, workspace_id, total: int) -> float:
    now = db.clock.now()
    owners = [new_id() for _ in range(KNOWN)]
    rng = random.Random(3)
    run = uuid.uuid4().hex[:8]
    rows = [
        {"workspace_id": workspace_id, "customer_id": rng.choice(owners), "event_id": new_id(),
         "message_id": f"direct-{run}-{n}", "type": "track", "name": rng.choice(EVENTS),
         "properties": {"product_id": f"P{n % 500}", "price": 1200},
         "context": {"library": {"name": "bench"}, "page": {"path": "/"}, "locale": "ja-JP"},
         "anonymous_id": None, "user_id": f"user-{n % KNOWN}",
         "occurred_at": now - timedelta(seconds=30), "received_at": now}
        for n in range(total)
    ]  # fmt: skip
    started = time.perf_counter()
    for start in range(0, total, BATCH):
        with db.write() as conn:
            conn.execute(events.insert(), rows[start : start + BATCH])
    return total / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="kizuna-bench-"))
    env = {"KIZUNA_HOME": str(home)}
    if args.database_url:
        env["KIZUNA_DATABASE_URL"] = args.database_url
    db = open_database(load_settings(env))
    with db.write() as conn:
        ws = create_workspace(conn, "bench-" + uuid.uuid4().hex[:8], now=db.clock.now())
        key = create_write_key(conn, ws.workspace_id, "bench", db.clock.now())
    seed_known(db, ws.workspace_id)
    http_rate = through_http(db, key, args.events, args.clients)
    limit = direct(db, ws.workspace_id, args.events)
    print(f"backend            {db.dialect}")
    print(f"events             {args.events} in batches of {BATCH}, {args.clients} clients")
    print(f"through /v1/batch  {http_rate:,.0f} events/s")
    print(f"direct insert      {limit:,.0f} events/s (the limit)")
    print(f"ratio              {http_rate / limit:.2f}")
    db.dispose()


if __name__ == "__main__":
    main()
