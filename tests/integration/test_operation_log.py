"""The operation log's hash chain: it verifies, and edits or deletions are detected."""

from __future__ import annotations

import hashlib
import itertools
import threading
import uuid

import sqlalchemy as sa

from kizuna.store.operation_log import GENESIS_HASH, canonical_entry, log_operation, verify_log
from kizuna.store.tables import operation_log


def _log(db, n: int, *, workspace_id=None, actor="hanako", action="segment.export") -> None:
    with db.write() as conn:
        for i in range(n):
            log_operation(
                conn,
                workspace_id=workspace_id,
                at=db.clock.now(),
                actor=actor,
                origin="cli",
                action=action,
                target=f"vip-{i}",
                details={"rows": i, "format": "csv", "revealed": i % 2 == 0, "note": "顧客"},
            )


def _entries(db) -> list:
    with db.read() as conn:
        return conn.execute(sa.select(operation_log).order_by(operation_log.c.entry_id)).all()


def _verify(db):
    with db.read() as conn:
        return verify_log(conn)


def test_the_chain_links_every_entry_and_hashes_the_documented_bytes(db, workspace):
    _log(db, 3, workspace_id=workspace.workspace_id)
    _log(db, 2)  # entries of the installation itself share the one chain
    rows = _entries(db)
    assert len(rows) == 5 and _verify(db) == []
    assert rows[0].prev_hash == GENESIS_HASH == bytes(32)
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.entry_hash
    # The format in the module docstring, rebuilt by hand for the first entry.
    first = rows[0]
    canonical = (
        '{"action":"segment.export","actor":"hanako","at":"2026-04-01T03:00:00.000000Z",'
        '"details":{"format":"csv","note":"顧客","revealed":true,"rows":0},'
        f'"entry_id":"{first.entry_id}","origin":"cli","target":"vip-0",'
        f'"workspace_id":"{workspace.workspace_id}"}}'
    )
    assert first.entry_hash == hashlib.sha256(bytes(32) + canonical.encode()).digest()


def test_an_edited_entry_is_named(db):
    _log(db, 4)
    rows = _entries(db)
    with db.write() as conn:
        conn.execute(
            operation_log.update()
            .where(operation_log.c.entry_id == rows[2].entry_id)
            .values(details={"rows": 999, "format": "csv", "revealed": True, "note": "顧客"})
        )
    problems = _verify(db)
    assert [p.code for p in problems] == ["operation_log_altered"]
    assert problems[0].field == "operation_log[3]" and str(rows[2].entry_id) in problems[0].message


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(db):
    _log(db, 3)
    rows = _entries(db)
    edited = {**rows[1]._mapping, "actor": "mallory"}
    fields = {k: edited[k] for k in ("entry_id", "workspace_id", "at", "actor", "origin",
                                     "action", "target", "details")}  # fmt: skip
    forged_hash = hashlib.sha256(rows[1].prev_hash + canonical_entry(**fields)).digest()
    with db.write() as conn:
        conn.execute(
            operation_log.update()
            .where(operation_log.c.entry_id == rows[1].entry_id)
            .values(actor="mallory", entry_hash=forged_hash)
        )
    problems = _verify(db)
    # Entry 2 is now self-consistent; entry 3 still points at its old hash.
    assert [p.code for p in problems] == ["operation_log_broken_link"]
    assert problems[0].field == "operation_log[3]"


def test_a_deleted_entry_breaks_the_chain_at_the_next_one(db):
    _log(db, 4)
    rows = _entries(db)
    with db.write() as conn:
        conn.execute(operation_log.delete().where(operation_log.c.entry_id == rows[1].entry_id))
    problems = _verify(db)
    assert [p.code for p in problems] == ["operation_log_broken_link"]
    assert problems[0].field == "operation_log[2]"
    assert str(rows[2].entry_id) in problems[0].message


def test_deleting_the_first_entry_is_detected(db):
    _log(db, 2)
    rows = _entries(db)
    with db.write() as conn:
        conn.execute(operation_log.delete().where(operation_log.c.entry_id == rows[0].entry_id))
    problems = _verify(db)
    assert problems[0].code == "operation_log_broken_link"
    assert "start of the log" in problems[0].message


def test_an_inserted_entry_is_detected(db):
    _log(db, 2)
    rows = _entries(db)
    forged = {**rows[1]._mapping, "entry_id": uuid.UUID(int=rows[1].entry_id.int + 1)}
    with db.write() as conn:
        conn.execute(operation_log.insert().values(**forged))
    assert _verify(db)[0].field == "operation_log[3]"


def test_concurrent_writers_never_fork_the_chain(db):
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for _ in range(15):
                _log(db, 1, actor=name)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = _entries(db)
    assert len(rows) == 45 and len({r.prev_hash for r in rows}) == 45
    assert _verify(db) == []
