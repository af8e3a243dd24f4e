"""Group commit: requests that arrive while a write is under way share the next transaction.

Each ingestion request used to pay for its own transaction: SQLite writes every
page a commit dirtied (the ``events`` indexes are keyed by customer, so 100 events
touch many pages) and PostgreSQL pays a round trip per statement. With several
clients posting at once, the requests that queue behind the running transaction
are stored together in the next one: one identity prefetch, one events insert and
one commit for all of them. A single client sees no change: its request finds no
one writing and runs at once.

Leader/follower, no background thread: the first waiting request becomes the
leader, takes every queued submission, writes them in one transaction and wakes
the others; if more have queued meanwhile, it hands leadership to the oldest of
them, so no request waits behind more than one group besides its own.

Only SQLite groups: it admits one writer at a time anyway, so queued requests lose
nothing by sharing. PostgreSQL runs concurrent requests' transactions side by side
(measured: grouping them behind one writer halved ``bench/ingest.py``'s rate there),
so :func:`ingest_request` sends them straight to their own transactions.

Every request still hears success only after the transaction holding its data
has committed. If a shared transaction fails, each of its submissions is run
again alone, so one bad request cannot fail the others and errors reach the
request that caused them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from kizuna.ingest.pipeline import IngestResult, ingest_groups, ingest_transaction
from kizuna.ingest.segment import Message
from kizuna.store.database import Database

__all__ = ["GroupCommitter", "committer_for", "ingest_request"]

_MAX_GROUP_MESSAGES = 5_000  # bounds one transaction's size and latency


@dataclass(slots=True)
class _Submission:
    workspace_id: uuid.UUID
    received_at: datetime
    messages: Sequence[Message]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    result: IngestResult | None = None
    error: BaseException | None = None

    def outcome(self) -> IngestResult:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class GroupCommitter:
    """Writes concurrent ingestion requests of one database in shared transactions."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._pending: list[_Submission] = []
        self._busy = False

    def submit(
        self, workspace_id: uuid.UUID, received_at: datetime, messages: Sequence[Message]
    ) -> IngestResult:
        """Store ``messages`` (in a transaction perhaps shared with others); after the commit."""
        mine = _Submission(workspace_id, received_at, messages)
        with self._lock:
            self._pending.append(mine)
            leading = not self._busy
            self._busy = True
        if not leading:
            mine.done.wait()
            if not mine.lead:
                return mine.outcome()
        self._lead()
        return mine.outcome()

    def _lead(self) -> None:
        with self._lock:
            group: list[_Submission] = []
            size = 0
            while self._pending and (not group or size < _MAX_GROUP_MESSAGES):
                taken = self._pending.pop(0)
                group.append(taken)
                size += len(taken.messages)
        try:
            self._write(group)
        finally:
            with self._lock:
                successor = self._pending[0] if self._pending else None
                self._busy = successor is not None
            for submission in group:
                submission.done.set()
            if successor is not None:
                successor.lead = True
                successor.done.set()

    def _write(self, group: list[_Submission]) -> None:
        if len(group) > 1:
            try:
                batches = [(s.workspace_id, s.received_at, s.messages) for s in group]
                for submission, result in zip(group, ingest_groups(self._db, batches), strict=True):
                    submission.result = result
                return
            except Exception:  # noqa: S110 — each submission is retried alone below
                pass
        for submission in group:
            try:
                submission.result = ingest_transaction(
                    self._db, submission.workspace_id, submission.received_at, submission.messages
                )
            except BaseException as exc:  # handed to the request that sent these messages
                submission.error = exc


_committers: dict[int, GroupCommitter] = {}
_committers_lock = threading.Lock()


def committer_for(db: Database) -> GroupCommitter:
    """The process's group committer for ``db`` (one per engine)."""
    key = id(db.engine)
    with _committers_lock:
        committer = _committers.get(key)
        if committer is None or committer._db is not db:
            committer = _committers[key] = GroupCommitter(db)
        return committer


def ingest_request(
    db: Database, workspace_id: uuid.UUID, received_at: datetime, messages: Sequence[Message]
) -> IngestResult:
    """Store one request's messages: grouped with concurrent requests on SQLite."""
    if db.dialect == "sqlite":
        return committer_for(db).submit(workspace_id, received_at, messages)
    return ingest_transaction(db, workspace_id, received_at, messages)
