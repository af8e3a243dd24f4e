"""Group commit: concurrent requests share a transaction, and nothing else changes."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from kizuna.ingest import pipeline
from kizuna.ingest.group_commit import GroupCommitter
from kizuna.ingest.pipeline import IngestResult, ingest_groups
from kizuna.ingest.segment import Message, parse_batch
from kizuna.store.tables import customers, events


def _messages(db, prefix: str, user: str, count: int = 5) -> list[Message]:
    items = [
        {"type": "track", "event": "Viewed", "messageId": f"{prefix}-{n}", "userId": user}
        for n in range(count)
    ]
    items.append({"type": "identify", "messageId": f"{prefix}-id", "userId": user,
                  "traits": {"plan": prefix}})  # fmt: skip
    return parse_batch({"batch": items}, db.clock.now()).messages


def _stored(db, workspace) -> Counter[str]:
    with db.read() as conn:
        ids = conn.execute(
            sa.select(events.c.message_id).where(events.c.workspace_id == workspace.workspace_id)
        ).scalars()
        return Counter(ids)


def test_one_transaction_for_many_batches_counts_each_batch(db, workspace):
    now = db.clock.now()
    ws = workspace.workspace_id
    first = _messages(db, "a", "user-1")
    retry_of_first = _messages(db, "a", "user-1")  # same ids: must go to a later pass
    second = _messages(db, "b", "user-2")
    results = ingest_groups(db, [(ws, now, first), (ws, now, retry_of_first), (ws, now, second)])
    assert results == [IngestResult(6, 0), IngestResult(0, 6), IngestResult(6, 0)]
    stored = _stored(db, workspace)
    assert len(stored) == 12 and set(stored.values()) == {1}
    with db.read() as conn:
        plans = conn.execute(
            sa.select(customers.c.shop_customer_id, customers.c.attributes)
            .where(customers.c.workspace_id == ws)
            .order_by(customers.c.shop_customer_id)
        ).all()
    assert [(sid, attrs["plan"]) for sid, attrs in plans] == [("user-1", "a"), ("user-2", "b")]


def test_queued_requests_share_the_next_transaction_and_a_bad_one_fails_alone(
    db, workspace, monkeypatch: pytest.MonkeyPatch
):
    """While one request writes, others queue; a poisoned request fails only itself."""
    gate, entered = threading.Event(), threading.Event()
    real_store = pipeline._store
    groups: list[int] = []
    real_groups = pipeline.ingest_groups

    def store(scope, messages):
        if any(m.message_id.startswith("poison") for m in messages):
            raise ValueError("poisoned batch")
        if not entered.is_set():
            entered.set()
            assert gate.wait(10)  # hold the first transaction open while others queue
        return real_store(scope, messages)

    def counting_groups(db_, batches):
        groups.append(len(batches))
        return real_groups(db_, batches)

    monkeypatch.setattr(pipeline, "_store", store)
    monkeypatch.setattr("kizuna.ingest.group_commit.ingest_groups", counting_groups)
    committer = GroupCommitter(db)
    ws, now = workspace.workspace_id, db.clock.now()
    outcomes: dict[str, object] = {}

    def send(name: str) -> None:
        try:
            outcomes[name] = committer.submit(ws, now, _messages(db, name, f"user-{name}"))
        except ValueError as exc:
            outcomes[name] = exc

    leader = threading.Thread(target=send, args=("lead",))
    leader.start()
    assert entered.wait(10)
    followers = [threading.Thread(target=send, args=(n,)) for n in ("f1", "poison", "f2")]
    for t in followers:
        t.start()
    while len(committer._pending) < 3:  # all three queued behind the open transaction
        threading.Event().wait(0.01)
    gate.set()
    for t in [leader, *followers]:
        t.join(10)
    assert groups == [3]  # the three queued requests were tried as one group
    assert outcomes["lead"] == IngestResult(6, 0)
    assert outcomes["f1"] == IngestResult(6, 0) and outcomes["f2"] == IngestResult(6, 0)
    assert isinstance(outcomes["poison"], ValueError)
    stored = _stored(db, workspace)
    assert len(stored) == 18 and not any(mid.startswith("poison") for mid in stored)
