"""Parse bounce (DSN, RFC 3464) and complaint (ARF, RFC 5965) messages into typed reports.

A report is a ``multipart/report`` whose ``report-type`` says what it carries:

- ``delivery-status``: one block of per-message fields (Reporting-MTA,
  Arrival-Date), then one block per recipient (Final-Recipient, Action, Status,
  Diagnostic-Code). Action ``failed`` with a 5.x.x Status is a hard bounce, with
  a 4.x.x Status a soft one; ``delayed`` means the sender's MTA still retries,
  so it is reported but never counted as a bounce.
- ``feedback-report``: Feedback-Type (``abuse`` and ``fraud`` are complaints),
  Original-Rcpt-To (often redacted; then the returned message's To).

Either kind usually returns the original message (``message/rfc822``) or only
its headers (``text/rfc822-headers``); its Message-ID is how a report maps back
to the message we sent (the email channel makes it from the idempotency key).

Parsing is pure: no store, no clock. Anything that is not such a report (an
auto-reply, a free-text bounce from an old MTA, random bytes) parses to a
:class:`Report` whose ``problem`` says why, never to an exception.
"""

from __future__ import annotations

import email
import email.message
import email.utils
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header, decode_header
from email.parser import HeaderParser
from enum import StrEnum

__all__ = ["RecipientReport", "Report", "Verdict", "classify", "parse_report"]

_DSN_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_ARF_PARTS = frozenset({"message/feedback-report"})
_ORIGINAL_PARTS = frozenset({"message/rfc822", "message/global"})
_HEADER_PARTS = frozenset({"text/rfc822-headers", "message/global-headers"})
_COMPLAINT_TYPES = frozenset({"abuse", "fraud"})
# RFC 3463 calls X.2.2 (mailbox full) and X.3.4 (message too big) states of the
# mailbox or of this message, not of the address; a permanent one still counts soft.
_SOFT_PERMANENT = frozenset({"5.2.2", "5.3.4"})
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_REPLY = re.compile(r"^\s*(?:smtp\s*;)?\s*([245])\d\d\b", re.IGNORECASE)


class Verdict(StrEnum):
    """What a report means for one recipient."""

    HARD_BOUNCE = "hard_bounce"  # the address is dead: suppress it now
    SOFT_BOUNCE = "soft_bounce"  # this message failed for now: count it
    DELAYED = "delayed"  # still being retried by the sending MTA: nothing to do yet
    DELIVERED = "delivered"  # a success notification
    COMPLAINT = "complaint"  # the recipient reported the message as spam
    FAILED = "failed"  # the provider gave up on this message; the address may be fine
    IGNORED = "ignored"  # a report that asks for nothing (relayed, not-spam, auth-failure …)


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """What one report says about one recipient, with the reporter's words verbatim."""

    verdict: Verdict
    recipient: str | None  # the address we sent to, when the report names it
    action: str | None = None  # DSN Action: failed | delayed | delivered | relayed | expanded
    status: str | None = None  # DSN Status, e.g. "5.1.1"
    diagnostic: str | None = None  # DSN Diagnostic-Code, unfolded
    feedback_type: str | None = None  # ARF Feedback-Type
    occurred_at: datetime | None = None  # when the reporter saw it (UTC), when it says


@dataclass(frozen=True, slots=True)
class Report:
    """A parsed bounce or complaint message; ``problem`` is set when it is neither."""

    report_type: str | None  # "delivery-status" | "feedback-report" | None
    original_message_id: str | None  # "<…@…>" of the message the report is about
    recipients: tuple[RecipientReport, ...] = ()
    reporter: str | None = None  # Reporting-MTA or the ARF User-Agent
    report_id: str | None = None  # the report's own Message-ID (evidence)
    problem: str | None = None

    @property
    def is_report(self) -> bool:
        """Whether this was a DSN or an ARF report (even one that asks for nothing)."""
        return self.problem is None


def parse_report(raw: bytes | str) -> Report:
    """Parse one RFC 822 message; a message that is not a DSN or ARF report sets ``problem``."""
    message = (
        email.message_from_bytes(raw) if isinstance(raw, bytes) else email.message_from_string(raw)
    )
    report_id = _message_id(message.get("Message-ID"))
    container = next(
        (p for p in message.walk() if p.get_content_type() == "multipart/report"), None
    )
    if container is None:
        return Report(None, None, report_id=report_id, problem=_not_a_report(message))
    kind = _report_type(container)
    parts = _children(container)
    original = _original_headers(parts)
    if kind in ("delivery-status", "global-delivery-status"):
        status = next((p for p in parts if p.get_content_type() in _DSN_PARTS), None)
        if status is not None:
            return _delivery_status(status, original, message, report_id)
    if kind == "feedback-report":
        feedback = next((p for p in parts if p.get_content_type() in _ARF_PARTS), None)
        if feedback is not None:
            return _feedback(feedback, original, message, report_id)
    found = ", ".join(p.get_content_type() for p in parts) or "no parts"
    problem = f"multipart/report of type {kind or '(none)'!r} without its report part ({found})"
    return Report(None, None, report_id=report_id, problem=problem)


def classify(action: str | None, status: str | None, diagnostic: str | None) -> Verdict:
    """The verdict of one DSN recipient block, from its Action, Status and Diagnostic-Code."""
    action = (action or "").strip().lower()
    if action == "delayed":
        return Verdict.DELAYED
    if action == "delivered":
        return Verdict.DELIVERED
    if action in ("relayed", "expanded"):
        return Verdict.IGNORED
    code = _status_code(status) or _status_code(diagnostic)
    if code is None:
        reply = _SMTP_REPLY.match(diagnostic or "")
        code = f"{reply.group(1)}.0.0" if reply else None
    if code is not None and code.startswith("2"):
        return Verdict.IGNORED  # "failed" with a success status contradicts itself: act on neither
    if code is not None and (code.startswith("4") or code in _SOFT_PERMANENT):
        return Verdict.SOFT_BOUNCE
    return Verdict.HARD_BOUNCE  # failed with a 5.x.x status, or with no usable status


def _report_type(container: email.message.Message) -> str:
    value = container.get_param("report-type")
    if isinstance(value, tuple):  # an RFC 2231 encoded parameter
        value = email.utils.collapse_rfc2231_value(value)
    return (value or "").strip().lower()


def _status_code(text: str | None) -> str | None:
    found = _STATUS.search(text or "")
    return None if found is None else ".".join(found.groups())


def _not_a_report(message: email.message.Message) -> str:
    kind = message.get_content_type()
    subject = _unfold(message.get("Subject")) or "(no subject)"
    return (
        f"not a bounce or complaint report: no multipart/report part "
        f"(Content-Type {kind}, Subject {subject[:80]!r})"
    )


def _children(part: email.message.Message) -> list[email.message.Message]:
    payload = part.get_payload()
    return (
        [p for p in payload if isinstance(p, email.message.Message)]
        if isinstance(payload, list)
        else []
    )


def _delivery_status(
    part: email.message.Message,
    original: email.message.Message | None,
    message: email.message.Message,
    report_id: str | None,
) -> Report:
    blocks = list(_field_blocks(part))
    per_message = blocks[0] if blocks else email.message.Message()
    arrived = _date(per_message.get("Arrival-Date")) or _date(message.get("Date"))
    recipients = tuple(
        _recipient_block(block, arrived) for block in blocks[1:] if _has_recipient(block)
    )
    return Report(
        "delivery-status",
        _original_id(original),
        recipients,
        reporter=_typed_value(per_message.get("Reporting-MTA")),
        report_id=report_id,
    )


def _has_recipient(block: email.message.Message) -> bool:
    return bool(block.get("Final-Recipient") or block.get("Original-Recipient"))


def _recipient_block(block: email.message.Message, arrived: datetime | None) -> RecipientReport:
    action = _unfold(block.get("Action"))
    status = _unfold(block.get("Status"))
    diagnostic = _unfold(block.get("Diagnostic-Code"))
    # Original-Recipient is the address as we gave it (before forwarding or aliasing).
    recipient = _address(_typed_value(block.get("Original-Recipient"))) or _address(
        _typed_value(block.get("Final-Recipient"))
    )
    return RecipientReport(
        classify(action, status, diagnostic),
        recipient,
        action=action.lower() if action else None,
        status=_status_code(status) or status,
        diagnostic=diagnostic,
        occurred_at=_date(block.get("Last-Attempt-Date")) or arrived,
    )


def _feedback(
    part: email.message.Message,
    original: email.message.Message | None,
    message: email.message.Message,
    report_id: str | None,
) -> Report:
    fields = _first_block(part)
    feedback_type = (_unfold(fields.get("Feedback-Type")) or "").lower() or None
    verdict = Verdict.COMPLAINT if feedback_type in _COMPLAINT_TYPES else Verdict.IGNORED
    addresses = [_address(v) for v in _all(fields, "Original-Rcpt-To")]
    if not any(addresses) and original is not None:
        addresses = [_address(a) for _, a in email.utils.getaddresses(_all(original, "To"))]
    occurred = _date(fields.get("Arrival-Date") or fields.get("Received-Date")) or _date(
        message.get("Date")
    )
    recipients = tuple(
        RecipientReport(verdict, a, feedback_type=feedback_type, occurred_at=occurred)
        for a in (dict.fromkeys(a for a in addresses if a) or [None])
    )
    return Report(
        "feedback-report",
        _original_id(original),
        recipients,
        reporter=_unfold(fields.get("User-Agent")),
        report_id=report_id,
    )


def _all(message: email.message.Message, name: str) -> list[str]:
    """Every value of a header as text."""
    return [_text(v) for v in message.get_all(name) or []]


def _text(value: object) -> str:
    """A header value as text; raw 8-bit values (SMTPUTF8 reports) are read as UTF-8."""
    if not isinstance(value, Header):
        return str(value)
    # The parser wraps raw 8-bit header bytes in a Header whose str() loses them.
    return "".join(
        _decoded(chunk, charset) if isinstance(chunk, bytes) else chunk
        for chunk, charset in decode_header(value)
    )


def _decoded(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", "replace")
    except LookupError:  # "unknown-8bit" or a made-up charset: UTF-8 is the likely truth
        return data.decode("utf-8", "replace")


def _field_blocks(part: email.message.Message) -> Iterator[email.message.Message]:
    """The header blocks of a delivery-status part, whether the parser split them or not."""
    children = _children(part)
    if children:
        yield from children
        return
    text = _text_of(part)
    for chunk in re.split(r"\r?\n[ \t]*\r?\n", text.strip()):
        if chunk.strip():
            yield HeaderParser().parsestr(chunk.strip() + "\n")


def _first_block(part: email.message.Message) -> email.message.Message:
    return next(_field_blocks(part), email.message.Message())


def _text_of(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:
            return payload.decode("utf-8", errors="replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _original_headers(parts: Iterable[email.message.Message]) -> email.message.Message | None:
    """The returned original message (or just its headers), when the report includes it."""
    for part in parts:
        kind = part.get_content_type()
        if kind in _ORIGINAL_PARTS:
            inner = _children(part)
            return inner[0] if inner else HeaderParser().parsestr(_text_of(part))
        if kind in _HEADER_PARTS:
            return HeaderParser().parsestr(_text_of(part))
    return None


def _original_id(original: email.message.Message | None) -> str | None:
    return None if original is None else _message_id(original.get("Message-ID"))


def _message_id(value: str | None) -> str | None:
    """A Message-ID as the email channel stores it: ``<local@domain>``."""
    text = _unfold(value)
    if not text:
        return None
    found = re.search(r"<([^<>\s]+)>", text)
    bare = found.group(1) if found else text.split()[0].strip("<>")
    return f"<{bare}>" if bare else None


def _typed_value(value: str | None) -> str | None:
    """The value of an ``addr-type; value`` field (``rfc822; taro@example.jp``)."""
    text = _unfold(value)
    if text is None:
        return None
    return text.split(";", 1)[1].strip() if ";" in text else text


def _address(value: str | None) -> str | None:
    if not value:
        return None
    _, addr = email.utils.parseaddr(value.strip())
    addr = (addr or value).strip().strip("<>").strip()
    return addr if "@" in addr else None


def _unfold(value: object) -> str | None:
    if value is None:
        return None
    text = " ".join(_text(value).split())
    return text or None


def _date(value: object) -> datetime | None:
    text = _unfold(value)
    if not text:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    # RFC 5322 allows "-0000" for an unknown zone; read it, and naive dates, as UTC.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
