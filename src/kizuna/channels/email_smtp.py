"""One SMTP connection of the email channel, reused across messages and batches.

A transaction is MAIL, RCPT, DATA, sent as one group when the server offers
PIPELINING (RFC 2920: one round trip fewer per stage, which is what limits a
remote relay), else one by one. Each stage's reply decides the outcome:

- 2xx after the data: SENT;
- 4xx anywhere, or a connection error: RETRY, with the server's reply verbatim;
- 5xx at RCPT or after the data: FAILED, or UNREACHABLE when it says the mailbox
  does not exist (enhanced status 5.1.x for the destination, 5.2.1 disabled; or a
  bare 550/551/553 at RCPT, "mailbox unavailable");
- any refusal at MAIL (or of STARTTLS/AUTH): RETRY, because it is about *our*
  sender or credentials, not the message; failing it would burn a campaign while
  an operator fixes the account, RETRY lets the pipeline pause the provider.

A connection the server closed while idle is noticed at MAIL, before anything of
the message was sent, so the message is tried once more on a fresh connection.
A connection lost after the data went out is RETRY: the server may have taken
the message, and the stable Message-ID makes a second copy recognisable.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass

from kizuna.channels.base import Outcome

__all__ = ["SessionSettings", "SmtpSession", "TransportError", "classify", "reply_text"]

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_DEAD_MAILBOX = {(1, 1), (1, 2), (1, 3), (1, 6), (1, 10), (2, 1)}  # RFC 3463 subject.detail
_DEAD_AT_RCPT = {550, 551, 553}
_STAGES = ("mail", "rcpt", "data")
_EXPECTED = ((250,), (250, 251), (354,))
_LEADING_DOT = re.compile(rb"(?m)^\.")


class TransportError(Exception):
    """The connection could not be used (refused, dropped, TLS or AUTH refused)."""


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """What a connection needs: where, how securely, as whom."""

    host: str
    port: int
    helo_name: str
    timeout: float
    starttls: bool
    username: str | None
    password: str | None
    tls_context: ssl.SSLContext | None


def reply_text(code: int, message: bytes | str) -> str:
    """``"<code> <text>"`` as the server said it (multi-line replies joined by newlines)."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {text}".strip()


def classify(stage: str, code: int, message: str) -> Outcome:
    """What a reply at ``stage`` (mail, rcpt, data) means; ``message`` follows the code."""
    if 200 <= code < 400:
        return Outcome.SENT
    if code < 500 or stage == "mail":
        return Outcome.RETRY
    enhanced = _ENHANCED.match(message)
    if enhanced is not None:
        detail = (int(enhanced.group(2)), int(enhanced.group(3)))
        return Outcome.UNREACHABLE if detail in _DEAD_MAILBOX else Outcome.FAILED
    if stage == "rcpt" and code in _DEAD_AT_RCPT:
        return Outcome.UNREACHABLE
    return Outcome.FAILED


class _Stale(Exception):
    """The server closed the connection before answering MAIL: safe to retry."""


class SmtpSession:
    """A lazily opened, reusable SMTP connection; one thread uses it at a time."""

    # Servers drop idle sessions after a few minutes (RFC 5321 §4.5.3.2 asks for at least
    # five); past this, a fresh connection is cheaper than finding out, possibly only
    # after ``timeout``, that a middlebox forgot the old one.
    max_idle = 120.0

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self._smtp: smtplib.SMTP | None = None
        self._used = 0.0

    def deliver(
        self, sender: str, recipient: str, data: bytes, smtputf8: bool = False
    ) -> tuple[Outcome, str | None]:
        """Hand one message over: its outcome and the server's reply when not SENT.

        Raises TransportError when no connection can be had (the caller retries
        the rest of its messages without reconnecting for each).
        """
        for _ in range(2):
            smtp, fresh = self._connection()
            try:
                return self._transact(smtp, sender, recipient, data, smtputf8)
            except _Stale as exc:
                self.reset()
                if fresh:
                    return Outcome.RETRY, str(exc)
            except (OSError, smtplib.SMTPException) as exc:
                self.reset()
                return Outcome.RETRY, _describe(exc)
        return Outcome.RETRY, "connection closed by the server"

    def close(self) -> None:
        """Say QUIT politely, then close."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def reset(self) -> None:
        """Drop the connection without a word (it is broken or in an unknown state)."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _connection(self) -> tuple[smtplib.SMTP, bool]:
        now = time.monotonic()
        idle, self._used = now - self._used, now
        if self._smtp is not None and idle > self.max_idle:
            self.reset()  # not QUIT: it could wait ``timeout`` on a connection that is gone
        if self._smtp is not None:
            return self._smtp, False
        s = self.settings
        try:
            # Host given here, not to connect(): STARTTLS checks the certificate against it.
            smtp = smtplib.SMTP(s.host, s.port, local_hostname=s.helo_name, timeout=s.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(_describe(exc)) from exc
        try:
            smtp.ehlo()
            if s.starttls:
                # No fallback to plain text: without STARTTLS this raises and nothing is sent.
                smtp.starttls(context=s.tls_context)
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password or "")
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            smtp.close()
            raise TransportError(_describe(exc)) from exc
        self._smtp = smtp
        return smtp, True

    def _transact(
        self, smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes, smtputf8: bool
    ) -> tuple[Outcome, str | None]:
        if smtputf8 and not smtp.has_extn("smtputf8"):
            return Outcome.FAILED, "the server does not offer SMTPUTF8 for a non-ASCII address"
        replies = self._envelope(smtp, sender, recipient, smtputf8)
        for stage, (code, reply), ok in zip(_STAGES, replies, _EXPECTED, strict=False):
            if code not in ok:
                if replies[-1][0] == 354:  # pipelined: DATA was taken although RCPT was not
                    smtp.send(b".\r\n")
                    smtp.getreply()
                return self._refused(stage, code, reply)
        # Dot-stuffing (RFC 5321 §4.5.2); the message already ends in CRLF.
        smtp.send(_LEADING_DOT.sub(b"..", data) + b".\r\n")
        code, reply = smtp.getreply()
        if code != 250:
            return self._refused("data", code, reply)
        return Outcome.SENT, None

    def _envelope(
        self, smtp: smtplib.SMTP, sender: str, recipient: str, smtputf8: bool
    ) -> list[tuple[int, bytes]]:
        """Replies to MAIL, RCPT and DATA: one round trip when the server offers
        PIPELINING (RFC 2920), else one each, stopping at the first refusal.

        Raises _Stale when the connection turns out closed before MAIL is answered.
        """
        options = " SMTPUTF8 BODY=8BITMIME" if smtputf8 else ""
        if smtputf8:
            smtp.command_encoding = "utf-8"  # as smtplib.mail does for SMTPUTF8
        commands = [f"MAIL FROM:<{sender}>{options}", f"RCPT TO:<{recipient}>", "DATA"]
        pipelined = smtp.has_extn("pipelining")
        try:
            if pipelined:
                smtp.send("".join(f"{command}\r\n" for command in commands))
            else:
                smtp.putcmd(commands[0])
            first = smtp.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            raise _Stale(_describe(exc)) from exc
        if first[0] == 421:  # the server is closing this connection
            raise _Stale(reply_text(*first))
        replies = [first]
        for command, ok in zip(commands[1:], _EXPECTED[:2], strict=True):
            if not pipelined and replies[-1][0] not in ok:
                break
            if not pipelined:
                smtp.putcmd(command)
            replies.append(smtp.getreply())
        return replies

    def _refused(self, stage: str, code: int, reply: bytes | str) -> tuple[Outcome, str | None]:
        """Classify a refusal and clear the transaction so the connection stays usable."""
        text = reply_text(code, reply)
        outcome = classify(stage, code, text.partition(" ")[2])
        if code == 421 or self._smtp is None:
            self.reset()
        else:
            try:
                self._smtp.rset()
            except (OSError, smtplib.SMTPException):
                self.reset()
        return outcome, text


def _describe(exc: BaseException) -> str:
    """An exception as the server's reply when it carries one, else its text."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return reply_text(exc.smtp_code, exc.smtp_error)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
