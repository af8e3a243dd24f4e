"""MIME messages for the email channel: headers, parts and encodings, as bytes.

The encodings are the standard library's (``email.header`` for RFC 2047 encoded
words, ``email.utils`` for addresses and dates, base64 for bodies); the message
is assembled here rather than through ``EmailMessage`` because that path costs
about 1.9 ms per message (header parsing and re-folding under
``policy.SMTP``, measured), more than the DKIM signature and the SMTP exchange
together. Every test parses the bytes back with the standard library's parser.

Shape: ``multipart/alternative`` (text, then HTML) when there is HTML, else a
single ``text/plain`` part. A part that is all ASCII with short lines goes as
``7bit``, anything else as UTF-8 in ``base64``, which survives 7-bit relays and
is the most compact for Japanese. Lines end in CRLF. Non-ASCII header values
(subject, display names) become RFC 2047 encoded words (UTF-8, "B"); a
non-ASCII domain becomes IDNA; a non-ASCII local part needs SMTPUTF8.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr
from functools import lru_cache

from kizuna.channels.base import Outgoing

__all__ = [
    "OWN_HEADERS",
    "Composed",
    "InvalidAddress",
    "InvalidMessage",
    "compose",
    "encode_header",
    "format_mailbox",
    "message_id_for",
    "split_address",
]

# Fields the channel writes itself; a pipeline-supplied duplicate is refused.
OWN_HEADERS = frozenset(
    {"from", "to", "subject", "date", "message-id", "mime-version", "content-type",
     "content-transfer-encoding", "dkim-signature", "reply-to", "return-path"}
)  # fmt: skip
_FIELD_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII but ':'
_MAX_7BIT_LINE = 900  # under SMTP's 998, leaving room for dot-stuffing
_FOLD_AT = 78
_BREAKS = re.compile(r"[\r\n\t]+")


class InvalidMessage(ValueError):
    """A message that cannot be written as valid email (e.g. a header with a line break)."""


class InvalidAddress(InvalidMessage):
    """The recipient is not an email address at all."""


@dataclass(frozen=True, slots=True)
class Composed:
    """One message ready for SMTP: envelope recipient, header fields and body."""

    recipient: str  # for RCPT TO (domain in IDNA)
    message_id: str  # with angle brackets, as in the header
    headers: list[tuple[str, str]]  # (name, value as written after "name: ")
    body: bytes  # CRLF lines, after the blank line that ends the header
    smtputf8: bool  # the recipient's local part is not ASCII

    def to_bytes(self, extra: tuple[str, str] | None = None) -> bytes:
        """The whole message; ``extra`` (e.g. DKIM-Signature) is prepended."""
        fields = [extra, *self.headers] if extra else self.headers
        head = "".join(f"{name}: {value}\r\n" for name, value in fields)
        return head.encode("utf-8") + b"\r\n" + self.body


def message_id_for(idempotency_key: str, domain: str) -> str:
    """The stable Message-ID of a message: a retried handover is recognisably the same one."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()
    return f"<{digest[:32]}@{domain}>"


def split_address(address: str) -> tuple[str, str, bool]:
    """(local part, IDNA domain, needs SMTPUTF8) of a bare address; InvalidAddress if malformed."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain or any(c in address for c in '\r\n<>" ,;()[]\\'):
        raise InvalidAddress(f"not an email address: {address!r}")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidAddress(f"not an email address: {address!r} ({exc})") from exc
    return local, domain.lower(), not local.isascii()


def format_mailbox(name: str, address: str) -> str:
    """``Name <address>`` with the name as encoded words when it is not ASCII."""
    name = _one_line(name)
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))  # quotes the name when it needs quoting
    encoded = Header(name, "utf-8", header_name="From").encode(linesep="\r\n")
    return f"{encoded} <{address}>"


@lru_cache(maxsize=4096)
def encode_header(name: str, value: str) -> str:
    """A header value as written: ASCII folded at spaces, else UTF-8 encoded words.

    Cached, since a batch's subjects and unsubscribe headers often repeat.
    """
    value = _one_line(value)
    # Literal "=?" in plain text would read back as an encoded word: encode it too.
    if value.isascii() and "=?" not in value:
        return _fold_ascii(name, value)
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def _fold_ascii(name: str, value: str) -> str:
    """Fold before existing spaces only, so unfolding gives ``value`` back exactly.

    (``email.header`` also folds after ',' and ';', which would put a space into a URL.)
    """
    lines: list[list[str]] = [[]]
    used = len(name) + 2
    for word in value.split(" "):
        current = lines[-1]
        if current and used + 1 + len(word) > _FOLD_AT:
            lines.append([word])
            used = 1 + len(word)
        else:
            used += len(word) + (1 if current else 0)
            current.append(word)
    return "\r\n ".join(" ".join(line) for line in lines)


def compose(
    message: Outgoing,
    sender: str,
    date: str,
    message_id_domain: str,
    reply_to: str | None = None,
    feedback_id: str | None = None,
) -> Composed:
    """Write ``message`` as MIME: header fields and body; InvalidMessage if it cannot be."""
    local, domain, smtputf8 = split_address(message.address)
    recipient = f"{local}@{domain}"
    message_id = message_id_for(message.idempotency_key, message_id_domain)
    headers = [
        ("From", sender),
        ("To", recipient),
        ("Subject", encode_header("Subject", message.content.subject or "")),
        ("Date", date),
        ("Message-ID", message_id),
    ]
    if reply_to:
        headers.append(("Reply-To", reply_to))
    headers.extend(_extra_headers(message.headers, feedback_id))
    body_headers, body = _body(message, message_id)
    headers.append(("MIME-Version", "1.0"))
    headers.extend(body_headers)
    return Composed(recipient, message_id, headers, body, smtputf8)


def _extra_headers(given: Mapping[str, str], feedback_id: str | None) -> list[tuple[str, str]]:
    """The pipeline's fields (List-Unsubscribe …), checked; Feedback-ID unless given."""
    fields: list[tuple[str, str]] = []
    for name, value in given.items():
        if not _FIELD_NAME.match(name) or name.lower() in OWN_HEADERS:
            raise InvalidMessage(f"header {name!r} cannot be set on a message")
        if "\r" in value or "\n" in value:
            raise InvalidMessage(f"header {name!r} has a line break in its value")
        fields.append((name, encode_header(name, value)))
    if feedback_id and not any(n.lower() == "feedback-id" for n in given):
        fields.append(("Feedback-ID", encode_header("Feedback-ID", feedback_id)))
    return fields


def _body(message: Outgoing, message_id: str) -> tuple[list[tuple[str, str]], bytes]:
    """Content-Type (and encoding) fields and the body: one part, or text + HTML."""
    content = message.content
    if content.html is None:
        return _part_fields("plain", content.text), _encode(content.text)
    if not content.text:
        return _part_fields("html", content.html), _encode(content.html)
    parts = [
        ("plain", content.text, _encode(content.text)),
        ("html", content.html, _encode(content.html)),
    ]
    boundary = _boundary(message_id, [p[2] for p in parts])
    # The CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1), so each
    # part gets one more, or a 7bit part would lose its last line break.
    out = [b"This is a multi-part message in MIME format.\r\n"]
    for subtype, text, encoded in parts:
        head = "".join(f"{n}: {v}\r\n" for n, v in _part_fields(subtype, text))
        out.append(f"--{boundary}\r\n{head}\r\n".encode("ascii") + encoded + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode("ascii"))
    fields = [("Content-Type", f'multipart/alternative;\r\n boundary="{boundary}"')]
    return fields, b"".join(out)


def _part_fields(subtype: str, text: str) -> list[tuple[str, str]]:
    encoding = "7bit" if _is_7bit(text) else "base64"
    charset = "us-ascii" if encoding == "7bit" else "utf-8"
    return [
        ("Content-Type", f'text/{subtype}; charset="{charset}"'),
        ("Content-Transfer-Encoding", encoding),
    ]


def _encode(text: str) -> bytes:
    """The part's body: CRLF lines, as 7bit when possible, else base64 of UTF-8."""
    crlf = _crlf(text)
    if _is_7bit(text):
        return crlf.encode("ascii")
    return base64.encodebytes(crlf.encode("utf-8")).replace(b"\n", b"\r\n")


def _crlf(text: str) -> str:
    """Text with CRLF line ends (RFC 2045 canonical form), ending in one."""
    lines = text.splitlines()
    return "\r\n".join(lines) + "\r\n" if lines else ""


def _is_7bit(text: str) -> bool:
    lines = text.splitlines()
    return text.isascii() and "\x00" not in text and all(len(ln) <= _MAX_7BIT_LINE for ln in lines)


def _boundary(message_id: str, bodies: list[bytes]) -> str:
    """A boundary derived from the Message-ID; base64 cannot contain '=_', 7bit text might."""
    seed = hashlib.sha256(message_id.encode()).hexdigest()[:24]
    n = 0
    while True:
        boundary = f"=_kz_{seed}_{n}"
        if not any(boundary.encode() in body for body in bodies):
            return boundary
        n += 1


def _one_line(value: str) -> str:
    """A header value on one line: line breaks and tabs become spaces, ends trimmed."""
    # Only ASCII whitespace: an ideographic space (U+3000) is part of Japanese text.
    return _BREAKS.sub(" ", value).strip(" ")
