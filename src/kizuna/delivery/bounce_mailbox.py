"""The bounce mailbox: an SMTP receiver for bounce and complaint mail, and mailbox import.

Point the Return-Path (envelope sender) of outgoing mail and the feedback-loop
address at a domain whose MX is this receiver, or keep delivering them to an
ordinary mailbox and import it (mbox file, Maildir directory, a directory of
``.eml`` files, or one ``.eml``). Either way each message is parsed
(:mod:`kizuna.delivery.bounces`) and applied (:mod:`kizuna.delivery.feedback`) in
the one workspace the mailbox belongs to.

The receiver accepts every message for its domains, reports or not: refusing a
non-report would only bounce it back to a mailer daemon. A message it could not
apply (the store is down) is answered ``451`` so the sending MTA tries again.
"""

from __future__ import annotations

import asyncio
import logging
import mailbox
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy.exc import SQLAlchemyError

from kizuna.delivery.feedback import ReportOutcome, apply_raw_report
from kizuna.delivery.settings import load_delivery_settings
from kizuna.errors import InvalidInput, KizunaError, Problem
from kizuna.store.database import Database
from kizuna.store.scope import Scope
from kizuna.store.workspaces import get_workspace

__all__ = [
    "BounceHandler",
    "MailboxSummary",
    "apply_messages",
    "import_mailbox",
    "read_mailbox",
    "start_bounce_server",
]

log = logging.getLogger(__name__)
_BATCH = 100  # messages per transaction on import
_MAX_PROBLEMS = 20  # non-report reasons kept for the summary


@dataclass(slots=True)
class MailboxSummary:
    """What a run over some bounce mail found and did."""

    read: int = 0
    reports: int = 0
    not_reports: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)  # hard_bounce, complaint …
    events: int = 0  # new events recorded
    suppressed: int = 0  # addresses (re)suppressed
    opted_out: int = 0
    problems: list[str] = field(default_factory=list)  # why some were not reports

    def add(self, outcome: ReportOutcome) -> None:
        """Count one applied message."""
        self.read += 1
        if not outcome.report.is_report:
            self.not_reports += 1
            if len(self.problems) < _MAX_PROBLEMS:
                self.problems.append(outcome.report.problem or "not a report")
            return
        self.reports += 1
        for applied in outcome.applied:
            self.verdicts[applied.verdict.value] += 1
            self.events += applied.events
            self.suppressed += applied.suppressed
            self.opted_out += applied.opted_out


def read_mailbox(path: Path) -> Iterator[bytes]:
    """The raw messages of an mbox file, a Maildir, a directory of .eml files or one .eml."""
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            maildir = mailbox.Maildir(str(path), factory=None, create=False)
            yield from (maildir.get_bytes(key) for key in sorted(maildir.iterkeys()))
            return
        yield from (p.read_bytes() for p in sorted(path.glob("*.eml")) if p.is_file())
        return
    if not path.is_file():
        raise InvalidInput(Problem("not_found", f"no mailbox at {path}", "path"))
    with path.open("rb") as handle:
        is_mbox = handle.read(5) == b"From "
    if not is_mbox:
        yield path.read_bytes()
        return
    box = mailbox.mbox(str(path), create=False)
    try:
        yield from (box.get_bytes(key) for key in box.iterkeys())
    finally:
        box.close()


def apply_messages(db: Database, workspace_id: uuid.UUID, raws: Iterable[bytes]) -> MailboxSummary:
    """Parse and apply raw messages in the workspace, one transaction per batch."""
    summary = MailboxSummary()
    pending = iter(raws)
    while batch := list(islice(pending, _BATCH)):
        _apply_batch(db, workspace_id, batch, summary)
    return summary


def _apply_batch(
    db: Database, workspace_id: uuid.UUID, batch: Sequence[bytes], summary: MailboxSummary
) -> None:
    with db.write() as conn:
        scope = Scope(conn, db.cipher, workspace_id, db.clock.now())
        settings = load_delivery_settings(conn, workspace_id)
        for raw in batch:
            summary.add(apply_raw_report(scope, raw, settings))


def import_mailbox(db: Database, workspace: str, path: Path) -> MailboxSummary:
    """Apply every message of a mailbox to the workspace (by slug); re-importing adds nothing."""
    with db.read() as conn:
        workspace_id = get_workspace(conn, workspace).workspace_id
    return apply_messages(db, workspace_id, read_mailbox(path))


class BounceHandler:
    """An aiosmtpd handler that applies each message it receives for its domains."""

    def __init__(self, db: Database, workspace_id: uuid.UUID, domains: Iterable[str]) -> None:
        self.db = db
        self.workspace_id = workspace_id
        self.domains = frozenset(d.strip().lower().lstrip("@") for d in domains if d.strip())
        if not self.domains:
            raise InvalidInput(
                Problem("no_domain", "name the domain(s) the bounce mailbox receives for", "domain")
            )
        self.received = 0  # messages applied (for operators' status lines and tests)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        """Accept recipients at the mailbox's domains only (never an open relay)."""
        domain = address.rpartition("@")[2].strip().lower().rstrip(">")
        if domain not in self.domains:
            return "550 5.7.1 this server only receives bounces for its own domains"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Apply the message; a failure to store it asks the sender to retry."""
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogateescape")
        try:
            summary = await asyncio.to_thread(apply_messages, self.db, self.workspace_id, [data])
        except (SQLAlchemyError, KizunaError):
            log.exception("bounce mailbox: could not apply a message; asked the sender to retry")
            return "451 4.3.0 temporary failure, try again later"
        self.received += 1
        if summary.not_reports:
            return "250 2.0.0 accepted (not a bounce or complaint report; discarded)"
        return "250 2.0.0 applied"


def start_bounce_server(
    db: Database, workspace: str, host: str, port: int, domains: Iterable[str]
) -> Controller:
    """Start the SMTP receiver in a background thread; call ``stop()`` on the result."""
    with db.read() as conn:
        workspace_id = get_workspace(conn, workspace).workspace_id
    controller = Controller(BounceHandler(db, workspace_id, domains), hostname=host, port=port)
    controller.start()
    return controller
