"""Consent evidence retention: the report per address and the purge rules, on both backends.

The clock stands at 2026-04-01 12:00 JST; with the default of one month, evidence
whose latest send or decision is on or before 2026-03-01 may go once its consent
has ended, and never while it stands.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from kizuna.clock import ensure_utc
from kizuna.domain.normalize import parse_datetime
from kizuna.domain.records import ConsentRecord, CustomerTraits, Identifiers
from kizuna.errors import InvalidInput
from kizuna.privacy import (
    erase_customer,
    purge_expired_evidence,
    retention_report,
    update_privacy_settings,
)
from kizuna.store.consent import record_consents
from kizuna.store.customers import apply_traits
from kizuna.store.identity import IdentityResolver
from kizuna.store.messages import SendIntent, enqueue
from kizuna.store.operation_log import verify_log
from kizuna.store.tables import consent_events, messages, operation_log
from tests.integration.test_privacy_shop import ANALYST

ADDRESSES = {
    "A": "standing@example.jp",
    "B": "left.long.ago@example.jp",
    "C": "left.lately@example.jp",
    "D": "mailed.after@example.jp",
    "E": "shared.address@example.jp",
}


def _at(text: str):
    return ensure_utc(parse_datetime(text, "at"))


def _person(scope, shop_id: str, decisions: list[tuple[str, str]], sends: list[str]):
    resolver = IdentityResolver(scope)
    email = ADDRESSES[shop_id]
    customer_id = resolver.resolve(Identifiers(user_id=shop_id, email=email), scope.now)
    resolver.flush()
    apply_traits(scope, customer_id, CustomerTraits(email=email))
    record_consents(
        scope,
        resolver,
        [
            ConsentRecord(
                customer={"user_id": shop_id},
                channel="email",
                status=status,
                occurred_at=day,
                method="web form",
                ip="203.0.113.9",
                address=email,
            )
            for status, day in decisions
        ],
    )
    _sent(scope, customer_id, email, sends, shop_id)
    return customer_id


def _sent(scope, customer_id, email: str, days: list[str], tag: str) -> None:
    intents = [SendIntent(customer_id, "email", "news", f"{tag}:{n}") for n in range(len(days))]
    for message_id, day in zip(enqueue(scope, intents), days, strict=True):
        scope.conn.execute(
            messages.update()
            .where(messages.c.message_id == message_id)
            .values(status="delivered", sent_at=_at(day), address_hash=scope.hash("email", email))
        )


@pytest.fixture
def people(scope_factory):
    with scope_factory() as scope:
        ids = {
            "A": _person(scope, "A", [("opted_in", "2025-06-01")], ["2026-03-29"]),
            "B": _person(
                scope,
                "B",
                [("opted_in", "2025-12-01"), ("opted_out", "2026-01-10")],
                ["2026-01-05"],
            ),
            "C": _person(
                scope,
                "C",
                [("opted_in", "2025-12-01"), ("opted_out", "2026-03-20")],
                ["2026-03-15"],
            ),
            "D": _person(
                scope,
                "D",
                [("opted_in", "2025-12-01"), ("opted_out", "2026-01-10")],
                ["2026-03-20"],
            ),
            "E": _person(scope, "E", [("opted_in", "2025-12-01"), ("opted_out", "2026-01-10")], []),
        }
        # Another record mailed E's address in late March: E's evidence must stay.
        other = IdentityResolver(scope).resolve(Identifiers(user_id="E2"), scope.now)
        _sent(scope, other, ADDRESSES["E"], ["2026-03-25"], "E2")
    return ids


def _lines(report):
    return {line.customer_id: line for line in report.lines}


def test_report_says_until_when_each_line_is_kept(db, people):
    report = retention_report(db, "shop", actor=ANALYST)
    lines = _lines(report)
    assert (report.evidence_rows, report.lines_total, report.months) == (9, 5, 1)
    standing = lines[people["A"]]
    assert (standing.consent, standing.keep_until, standing.purgeable) == ("opted_in", None, False)
    assert standing.last_sent_at == _at("2026-03-29")
    gone = lines[people["B"]]
    assert (gone.keep_until, gone.purgeable) == (_at("2026-02-10"), True)
    assert lines[people["C"]].keep_until == _at("2026-04-20")
    assert lines[people["D"]].keep_until == _at("2026-04-20")  # mailed after opting out
    assert lines[people["E"]].last_sent_at == _at("2026-03-25")
    assert not any(lines[people[k]].purgeable for k in "ACDE")
    assert report.purgeable_rows == 2  # B's opt-in and opt-out


def test_report_for_one_address_is_masked_unless_revealed_and_reveal_is_logged(db, people):
    masked = retention_report(db, "shop", actor=ANALYST, address="Left.Long.Ago@example.jp")
    (line,) = masked.lines
    assert line.customer_id == people["B"] and masked.address == "l***@example.jp"
    assert [e.status for e in line.evidence] == ["opted_in", "opted_out"]
    assert {(e.address, e.ip) for e in line.evidence} == {("l***@example.jp", "203.0.113.*")}
    with db.read() as conn:
        assert conn.execute(sa.select(operation_log)).all() == []
    clear = retention_report(db, "shop", actor=ANALYST, address=ADDRESSES["B"], reveal=True)
    assert {(e.address, e.ip) for e in clear.lines[0].evidence} == {(ADDRESSES["B"], "203.0.113.9")}
    with db.read() as conn:
        assert verify_log(conn) == []
        entry = conn.execute(sa.select(operation_log)).one()
    assert entry.action == "privacy.retention_report"
    assert entry.details["customers"] == [str(people["B"])] and entry.target is None
    with pytest.raises(InvalidInput) as info:
        retention_report(db, "shop", actor=ANALYST, address="broken@", limit=10)
    assert info.value.problems[0].field == "address"


def test_purge_deletes_only_ended_evidence_past_retention(db, people):
    dry = purge_expired_evidence(db, "shop", actor=ANALYST, dry_run=True)
    assert (dry.rows, dry.dry_run, dry.cutoff) == (2, True, _at("2026-03-01 12:00"))
    done = purge_expired_evidence(db, "shop", actor=ANALYST)
    assert done.rows == 2
    with db.read() as conn:
        left = set(conn.execute(sa.select(consent_events.c.customer_id)).scalars())
        entry = conn.execute(sa.select(operation_log)).one()
    assert left == {people[k] for k in "ACDE"}
    assert (entry.action, entry.details["rows"]) == ("privacy.retention_purge", 2)
    assert purge_expired_evidence(db, "shop", actor=ANALYST).rows == 0


def test_a_longer_retention_keeps_more(db, people):
    update_privacy_settings(db, "shop", {"evidence_retention_months": 3}, actor=ANALYST)
    report = retention_report(db, "shop", actor=ANALYST)
    assert report.months == 3 and report.purgeable_rows == 0
    assert _lines(report)[people["B"]].keep_until == _at("2026-04-10")
    assert purge_expired_evidence(db, "shop", actor=ANALYST).rows == 0
    for bad in (
        {"evidence_retention_months": 0},
        {"evidence_retention_months": "x"},
        {"months": 2},
    ):
        with pytest.raises(InvalidInput) as info:
            update_privacy_settings(db, "shop", bad, actor=ANALYST)
        assert info.value.problems[0].field in ("evidence_retention_months", "months")


def test_an_erased_customers_evidence_goes_when_due(db, clock, people):
    erase_customer(db, "shop", ADDRESSES["A"], actor=ANALYST)  # last mailed 2026-03-29
    line = _lines(retention_report(db, "shop", actor=ANALYST))[people["A"]]
    assert (line.erased, line.keep_until, line.purgeable) == (True, _at("2026-04-29"), False)
    assert line.evidence[0].address == "(no longer held)"
    clock.advance(timedelta(days=29))
    assert _lines(retention_report(db, "shop", actor=ANALYST))[people["A"]].purgeable
    purge_expired_evidence(db, "shop", actor=ANALYST)
    with db.read() as conn:
        left = set(conn.execute(sa.select(consent_events.c.customer_id)).scalars())
    assert left == set()  # by 2026-04-30 every line has ended and is past its month
