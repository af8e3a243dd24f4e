"""Apply bounces, complaints and provider status callbacks: message events and suppressions.

Every source (the bounce mailbox, the raw-message endpoint, Twilio's status
callback, the generic JSON webhook) becomes :class:`Feedback` items, applied by
:func:`apply_feedback` in the workspace the mailbox or endpoint belongs to:

============  ================================================================
hard bounce   "Message Bounced" (bounce_type hard); the address is suppressed now
soft bounce   "Message Bounced" (bounce_type soft); the address is suppressed
              (reason hard_bounce, the note says why) once it has
              ``DeliverySettings.soft_bounce_limit`` bounced messages since a
              message last reached it (delivered, opened or clicked)
complaint     "Message Complained"; suppressed (complaint); the customer is
              opted out of the channel with evidence, method "complaint (ARF)"
delivered     "Message Delivered"
failed        "Message Failed"; the address is not blamed
delayed …     nothing
============  ================================================================

A report for a message we cannot find (another system's mail, a Message-ID the
reporter rewrote) still suppresses the address it names. A message found under
another workspace counts as unknown: a workspace's endpoint never touches another
workspace's messages. Applying the same report twice changes nothing more: events
are keyed by message, name and bounce status, suppressions and consent evidence
by their content.

Twilio status callbacks (``MessageStatus`` / ``ErrorCode``):

==========================  ====================================================
delivered                   "Message Delivered"
undelivered/failed 30005,   "Message Bounced" hard, the number suppressed now
30006                       (unknown handset; landline or unreachable carrier)
undelivered/failed 30003    "Message Bounced" soft: the handset is off or out of
                            reach, so it counts toward the soft-bounce limit
any other error             "Message Failed" (carrier filtering, queue overflow …
                            say nothing about the number)
queued, sent, …             nothing (not final)
==========================  ====================================================
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kizuna.delivery.bounces import Report, Verdict, parse_report
from kizuna.delivery.settings import DeliverySettings
from kizuna.domain.records import Channel, SuppressionReason
from kizuna.errors import InvalidInput, NotFound, Problem
from kizuna.security.masking import mask_email, mask_phone
from kizuna.store.consent import address_hash, suppress_hashes
from kizuna.store.messages import (
    MessageEvent,
    MessageRecord,
    find_by_provider_id,
    record_message_events,
)
from kizuna.store.preferences import PREFERENCE_CHANNELS, ConsentEvidence, set_channel_consents
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import address_owners
from kizuna.store.tables import messages

__all__ = [
    "COMPLAINT_METHOD",
    "TWILIO_COUNTED_CODES",
    "TWILIO_DEAD_CODES",
    "Applied",
    "Feedback",
    "ReportOutcome",
    "apply_feedback",
    "apply_raw_report",
    "feedback_from_report",
    "twilio_feedback",
]

COMPLAINT_METHOD = "complaint (ARF)"
TWILIO_DEAD_CODES = {"30005": "unknown destination handset", "30006": "landline or unreachable"}
TWILIO_COUNTED_CODES = {"30003": "unreachable destination handset"}
_TWILIO_FINAL = frozenset({"delivered", "undelivered", "failed"})
_EVENTS = {
    Verdict.HARD_BOUNCE: "Message Bounced",
    Verdict.SOFT_BOUNCE: "Message Bounced",
    Verdict.COMPLAINT: "Message Complained",
    Verdict.DELIVERED: "Message Delivered",
    Verdict.FAILED: "Message Failed",
}


@dataclass(frozen=True, slots=True)
class Feedback:
    """One thing a provider reported about one message or address, normalized."""

    verdict: Verdict
    channel: Channel
    provider: str  # whose message id ``provider_message_id`` is: smtp, twilio …
    provider_message_id: str | None
    address: str | None  # the recipient the report names, in clear
    occurred_at: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)  # status, diagnostic … verbatim
    reason: str | None = None  # stored on the message and in the suppression note
    evidence: str | None = None  # where it came from (consent evidence of a complaint)
    sole_recipient: bool = True  # False: the report names others too; match by address


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying one Feedback did (the address masked)."""

    verdict: Verdict
    message_id: uuid.UUID | None
    address: str | None
    events: int  # new events recorded
    suppressed: bool
    opted_out: bool
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """A raw bounce or complaint message, parsed, and what applying it did."""

    report: Report
    applied: tuple[Applied, ...]


def apply_raw_report(scope: Scope, raw: bytes | str, settings: DeliverySettings) -> ReportOutcome:
    """Parse one RFC 822 message and apply it; a non-report applies nothing (see its problem)."""
    report = parse_report(raw)
    return ReportOutcome(
        report, tuple(apply_feedback(scope, feedback_from_report(report), settings))
    )


def feedback_from_report(report: Report, provider: str = "smtp") -> list[Feedback]:
    """The feedback items of a parsed DSN or ARF report (none for a non-report)."""
    sole = len(report.recipients) == 1
    source = " by ".join(x for x in (report.report_id, report.reporter) if x)
    kind = "ARF report" if report.report_type == "feedback-report" else "DSN"
    return [
        Feedback(
            r.verdict, Channel.EMAIL, provider, report.original_message_id, r.recipient,
            r.occurred_at,
            details={k: v for k, v in (("action", r.action), ("status", r.status),
                     ("diagnostic", r.diagnostic), ("feedback_type", r.feedback_type),
                     ("reporter", report.reporter)) if v},
            reason=r.diagnostic or r.status or r.feedback_type,
            evidence=f"{kind} {source}".strip(), sole_recipient=sole,
        )
        for r in report.recipients
    ]  # fmt: skip


def twilio_feedback(params: Mapping[str, str]) -> Feedback | None:
    """The feedback of a Twilio status callback; None while the status is not final."""
    sid = params.get("MessageSid") or params.get("SmsSid")
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    if not sid or not status:
        raise InvalidInput(
            Problem("not_a_status_callback", "MessageSid and MessageStatus are required")
        )
    if status not in _TWILIO_FINAL:
        return None
    code = (params.get("ErrorCode") or "").strip()
    if status == "delivered":
        verdict = Verdict.DELIVERED
    elif code in TWILIO_DEAD_CODES:
        verdict = Verdict.HARD_BOUNCE
    elif code in TWILIO_COUNTED_CODES:
        verdict = Verdict.SOFT_BOUNCE
    else:
        verdict = Verdict.FAILED
    details = {"status": status, **({"error_code": code} if code else {})}
    explained = TWILIO_DEAD_CODES.get(code) or TWILIO_COUNTED_CODES.get(code)
    reason = f"{status} (ErrorCode {code}{': ' + explained if explained else ''})" if code else None
    return Feedback(
        verdict, Channel.SMS, "twilio", sid, params.get("To") or None, details=details,
        reason=reason if verdict is not Verdict.DELIVERED else None,
        evidence=f"Twilio status callback {sid}",
    )  # fmt: skip


def apply_feedback(
    scope: Scope, items: Sequence[Feedback], settings: DeliverySettings
) -> list[Applied]:
    """Record each item's event and suppress or opt out as the table above says."""
    return [_apply(scope, item, settings) for item in items]


def _apply(scope: Scope, item: Feedback, settings: DeliverySettings) -> Applied:
    hashed = _hash(scope, item)
    message = _message_of(scope, item, hashed)
    events = _record(scope, message, item)
    hashes = {h for h in (hashed, message.address_hash if message else None) if h is not None}
    suppressed = opted_out = False
    if item.verdict is Verdict.HARD_BOUNCE:
        suppressed = _suppress(scope, item, hashes, message, SuppressionReason.HARD_BOUNCE)
    elif item.verdict is Verdict.SOFT_BOUNCE:
        target = (message.address_hash if message else None) or hashed
        count = 0 if target is None else _bounced_since_reached(scope, item.channel, target)
        if count >= settings.soft_bounce_limit:
            why = f"{count} soft bounces (limit {settings.soft_bounce_limit}); last: {item.reason}"
            suppressed = _suppress(scope, item, hashes, message, SuppressionReason.HARD_BOUNCE, why)
    elif item.verdict is Verdict.COMPLAINT:
        suppressed = _suppress(scope, item, hashes, message, SuppressionReason.COMPLAINT)
        opted_out = _opt_out(scope, item, message, hashed)
    quiet = message is not None or item.verdict in (Verdict.DELAYED, Verdict.IGNORED)
    return Applied(
        item.verdict, message.message_id if message else None, _masked(item), events,
        suppressed, opted_out, None if quiet else _unknown(item),
    )  # fmt: skip


def _hash(scope: Scope, item: Feedback) -> bytes | None:
    """The address's lookup hash; None when the report names none we can read."""
    if not item.address:
        return None
    try:
        return address_hash(scope.cipher, item.channel, item.address)
    except InvalidInput:
        return None  # a redacted or mangled address: nothing to suppress by


def _message_of(scope: Scope, item: Feedback, hashed: bytes | None) -> MessageRecord | None:
    if not item.provider_message_id:
        return None
    found = find_by_provider_id(scope.conn, item.provider, item.provider_message_id)
    # IMPORTANT: callbacks carry no workspace; another workspace's message is unknown here.
    if found is None or found.workspace_id != scope.workspace_id:
        return None
    if item.sole_recipient or hashed is None or found.address_hash in (None, hashed):
        return found
    return None  # a multi-recipient report's line about somebody else


def _unknown(item: Feedback) -> str:
    named = item.provider_message_id or "no message id"
    return f"no {item.channel.value} message of this workspace matches {named}"


def _record(scope: Scope, message: MessageRecord | None, item: Feedback) -> int:
    name = _EVENTS.get(item.verdict)
    if message is None or name is None:
        return 0
    properties: dict[str, Any] = dict(item.details)
    dedupe = ""
    if name == "Message Bounced":
        bounce_type = "hard" if item.verdict is Verdict.HARD_BOUNCE else "soft"
        properties["bounce_type"] = bounce_type
        dedupe = f"{bounce_type}:{item.details.get('status', '')}"
    if item.reason:
        properties["reason"] = item.reason
    at = min(item.occurred_at or scope.now, scope.now)
    happened = MessageEvent(message.message_id, name, at, properties, dedupe)
    return record_message_events(scope, [happened])


def _suppress(
    scope: Scope,
    item: Feedback,
    hashes: set[bytes],
    message: MessageRecord | None,
    reason: SuppressionReason,
    note: str | None = None,
) -> bool:
    """Suppress the reported address and the one the message went to (forwarding differs)."""
    if not hashes:
        return False
    text = note or item.reason or reason.value
    customer_id = message.customer_id if message else None
    suppress_hashes(scope, item.channel.value, sorted(hashes), reason.value, text, customer_id)
    return True


def _bounced_since_reached(scope: Scope, channel: Channel, hashed: bytes) -> int:
    """Bounced messages to the address since a message last reached it (one statement)."""
    m, reached = messages.c, messages.alias("reached").c
    same = (m.workspace_id == scope.workspace_id, m.channel == channel.value)
    last_reached = (
        sa.select(sa.func.max(reached.delivered_at))
        .where(
            reached.workspace_id == scope.workspace_id,
            reached.channel == channel.value,
            reached.address_hash == hashed,
            reached.status != "bounced",
            reached.delivered_at.is_not(None),
        )
        .scalar_subquery()
    )
    query = (
        sa.select(sa.func.count())
        .select_from(messages)
        .where(*same, m.address_hash == hashed, m.status == "bounced")
        .where(
            sa.or_(last_reached.is_(None), sa.func.coalesce(m.sent_at, m.created_at) > last_reached)
        )
    )
    return int(scope.conn.execute(query).scalar_one())


def _opt_out(
    scope: Scope, item: Feedback, message: MessageRecord | None, hashed: bytes | None
) -> bool:
    """Opt the complaining customer out of the channel, with the report as evidence."""
    if message is not None:
        customer_id = message.customer_id
    else:
        # No message: the address's owner complained, when exactly one customer holds it.
        owners = address_owners(scope, [hashed]) if hashed is not None else set()
        if len(owners) != 1:
            return False
        customer_id = owners.pop()
    if item.channel.value not in PREFERENCE_CHANNELS:
        return False
    evidence = ConsentEvidence(COMPLAINT_METHOD, None, (item.evidence or item.provider)[:200])
    try:
        set_channel_consents(scope, customer_id, {item.channel.value: False}, evidence)
    except NotFound:
        return False  # a customer with no identifier left: the suppression still holds
    return True


def _masked(item: Feedback) -> str | None:
    if not item.address:
        return None
    if item.channel is Channel.EMAIL:
        return mask_email(item.address)
    return mask_phone(item.address) if item.channel is Channel.SMS else "***"
