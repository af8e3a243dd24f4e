"""The unmodified segment-analytics-python SDK against a real uvicorn server of ours.

The first answer to a batch is a 503 sent *after* the data was committed (as when
a proxy times out), so the SDK retries; the retry must add no duplicate rows.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from segment.analytics import Client

from kizuna.api import build_app
from kizuna.store.tables import customers, events
from kizuna.store.workspaces import create_write_key


class FailFirstBatch:
    """ASGI middleware: let the app commit the first /v1/batch, then answer 503 once."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.batches: list[int] = []
        self.failed = False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/batch":
            await self.app(scope, receive, send)
            return
        fail = not self.failed
        self.failed = True

        async def answer(message: dict) -> None:
            if message["type"] == "http.response.start":
                self.batches.append(message["status"])
                if fail:
                    message = {
                        **message,
                        "status": 503,
                        "headers": [(b"content-type", b"application/json")],
                    }
            elif message["type"] == "http.response.body" and fail:
                message = {**message, "body": b'{"code":"unavailable","message":"try again"}'}
            await send(message)

        await self.app(scope, receive, answer)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(db) -> Iterator[tuple[str, FailFirstBatch]]:
    app = FailFirstBatch(build_app(db))
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.started
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(5)


@pytest.mark.parametrize("gzip", [False, True])
def test_sdk_calls_land_exactly_once_through_a_retry(server, db, workspace, gzip):
    host, app = server
    with db.write() as conn:
        key = create_write_key(conn, workspace.workspace_id, "sdk", db.clock.now())
    client = Client(key, host=host, gzip=gzip, upload_interval=0.05, max_retries=3, timeout=5)
    client.page(anonymous_id="anon-1", name="Home", properties={"path": "/"})
    client.identify("C1", {"email": "sdk@example.com", "plan": "gold"}, anonymous_id="anon-1")
    client.track("C1", "Product Viewed", {"sku": "S1", "name": "Tea", "price": 800})
    client.flush()
    client.join()
    assert app.batches[0] == 200 and len(app.batches) >= 2  # answered 503, then retried
    with db.read() as conn:
        stored = conn.execute(sa.select(events.c.type, events.c.customer_id)).all()
        live = conn.execute(sa.select(customers).where(customers.c.merged_into.is_(None))).all()
    assert sorted(t for t, _ in stored) == ["identify", "page", "track"]
    assert len({c for _, c in stored}) == 1 and len(live) == 1
