"""Concurrent ingestion of one workspace: exactly-once events, one customer per identifier.

On PostgreSQL these batches really run at the same time (no workspace lock); on
SQLite they queue for the single writer. Either way the outcome must be the same.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from kizuna.ingest.pipeline import ingest_transaction
from kizuna.ingest.segment import parse_batch
from kizuna.store.tables import customers, events, identities

CLIENTS = 6


def _batch(client: int, copy: int) -> list[dict[str, object]]:
    """Every client names the same new anonymousIds and known users, each in its own order."""
    items: list[dict[str, object]] = []
    for n in range(12):
        who = {"anonymousId": f"shared-{n}"} if n % 2 else {"userId": f"user-{n}"}
        mid = f"c{client}-{n}" if copy else f"same-{n}"  # copy 0 is one batch sent by all
        items.append({"type": "track", "event": "Viewed", "messageId": mid, **who})
    if client % 2:
        items.reverse()
    items.append({"type": "identify", "messageId": f"id-{client}-{copy}",
                  "userId": f"user-{client}", "anonymousId": f"shared-{client}"})  # fmt: skip
    return items


def _run_together(db, workspace, batches: list[list[dict[str, object]]]) -> list[BaseException]:
    start = threading.Barrier(len(batches))
    failures: list[BaseException] = []

    def run(items: list[dict[str, object]]) -> None:
        parsed = parse_batch({"batch": items}, db.clock.now())
        start.wait()
        try:
            ingest_transaction(db, workspace.workspace_id, db.clock.now(), parsed.messages)
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


@pytest.mark.parametrize("copy", [0, 1])
def test_concurrent_batches_store_each_message_once_and_one_customer_per_id(db, workspace, copy):
    batches = [_batch(client, copy) for client in range(CLIENTS)]
    assert _run_together(db, workspace, batches) == []
    with db.read() as conn:
        stored = conn.execute(sa.select(events)).all()
        owning = set(conn.execute(sa.select(identities.c.customer_id)).scalars())
        live = set(
            conn.execute(
                sa.select(customers.c.customer_id).where(customers.c.merged_into.is_(None))
            ).scalars()
        )
    expected = {m["messageId"] for b in batches for m in b}
    assert Counter(r.message_id for r in stored) == Counter(expected)  # exactly once
    for column in ("anonymous_id", "user_id"):  # each identifier names one customer
        named: dict[str, set[object]] = {}
        for r in stored:
            if getattr(r, column):
                named.setdefault(getattr(r, column), set()).add(r.customer_id)
        assert all(len(c) == 1 for c in named.values()), column
    assert {r.customer_id for r in stored} <= live  # no event left on a merged customer
    assert live == owning  # no customer orphaned by a lost race
