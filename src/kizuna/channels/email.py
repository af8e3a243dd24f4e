"""Email over SMTP: MIME, DKIM, and a few reused connections.

Settings: ``host``, ``port`` (587), ``starttls`` (true; never falls back to plain
text), ``from_address``, ``from_name``, ``reply_to``, ``return_path`` (envelope
sender, where bounces go; default ``from_address``), ``message_id_domain``
(default: the From domain), ``dkim_domain`` (default: the From domain),
``dkim_selector``, ``feedback_id_prefix`` (adds ``Feedback-ID: <prefix>:<purpose>``
unless the pipeline gave one), ``helo_name``, ``timeout`` (seconds), ``connections``
(1–16, default 3), ``ca_pem`` (a CA to trust besides the system's, for a private
relay). Secrets: ``username``, ``password``, ``dkim_private_key`` (RSA PEM).

Per batch: each message is written as MIME (``email_mime``), signed
(``email_dkim``) and handed over on one of ``connections`` SMTP sessions
(``email_smtp``), which stay open across batches and reconnect when the server
has closed them. The batch is split across the sessions, each in its own thread:
RSA signing releases the GIL and the network waits overlap. Outcomes per message:
SENT with ``provider_message_id`` = the Message-ID (angle brackets included,
derived from the idempotency key, so a retried handover carries the same one);
RETRY with the server's reply verbatim; FAILED / UNREACHABLE for permanent
refusals (see ``email_smtp``); a recipient that is not an email address is
UNREACHABLE, a header the channel cannot write is FAILED. ``send`` never raises.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from email.utils import format_datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from kizuna.channels.base import ChannelSender, Handover, Outcome, Outgoing, ProviderConfig
from kizuna.channels.email_dkim import DkimSigner, load_dkim_key
from kizuna.channels.email_mime import (
    InvalidAddress,
    InvalidMessage,
    compose,
    format_mailbox,
    split_address,
)
from kizuna.channels.email_smtp import SessionSettings, SmtpSession, TransportError
from kizuna.channels.settings import parse_settings
from kizuna.clock import Clock, SystemClock
from kizuna.errors import InvalidInput, Problem

__all__ = ["Rendered", "SmtpChannel", "SmtpSettings", "open_channel"]

# Below this many messages per connection, another connection costs more than it saves.
MIN_PER_CONNECTION = 8


class Rendered(NamedTuple):
    """One message as it goes on the wire."""

    message_id: str  # the Message-ID header, angle brackets included
    recipient: str  # RCPT TO (domain in IDNA)
    data: bytes  # header and body, CRLF lines, DKIM-signed when a key is set
    smtputf8: bool  # the recipient needs SMTPUTF8


class SmtpSettings(BaseModel):
    """A workspace's SMTP settings (secrets are separate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    from_address: str = Field(min_length=3)
    from_name: str = ""
    reply_to: str | None = None
    return_path: str | None = None
    message_id_domain: str | None = None
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    feedback_id_prefix: str | None = None
    helo_name: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    connections: int = Field(default=3, ge=1, le=16)
    ca_pem: str | None = None


class SmtpChannel:
    """Hands batches of email to one SMTP server over a few reused connections."""

    provider = "smtp"
    max_batch = 200

    def __init__(
        self,
        settings: SmtpSettings,
        session: SessionSettings,
        signer: DkimSigner | None,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self._clock = clock
        self._from_domain = split_address(settings.from_address)[1]
        self._sender = format_mailbox(settings.from_name, settings.from_address)
        self._envelope_from = settings.return_path or settings.from_address
        self._sessions = [SmtpSession(session) for _ in range(settings.connections)]
        self._pool: ThreadPoolExecutor | None = None

    def send(self, batch: Sequence[Outgoing]) -> list[Handover]:
        """Write, sign and hand over ``batch``; one Handover per message, never raises."""
        now = self._clock.now().astimezone(UTC)
        stamp = (format_datetime(now, usegmt=True), int(now.timestamp()))
        ways = max(1, min(len(self._sessions), len(batch) // MIN_PER_CONNECTION))
        chunks = [batch[i::ways] for i in range(ways)]
        if ways == 1:
            return self._deliver(self._sessions[0], chunks[0], stamp)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(len(self._sessions), "kizuna-smtp")
        futures = [
            self._pool.submit(self._deliver, session, chunk, stamp)
            for session, chunk in zip(self._sessions, chunks, strict=False)
        ]
        return [handover for future in futures for handover in future.result()]

    def close(self) -> None:
        """Quit every connection and stop the threads."""
        for session in self._sessions:
            with session.lock:
                session.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def render(self, message: Outgoing, date: str, timestamp: int) -> Rendered:
        """One message as it goes on the wire, signed; InvalidMessage if it cannot be written."""
        s = self.settings
        feedback_id = f"{s.feedback_id_prefix}:{message.purpose}" if s.feedback_id_prefix else None
        composed = compose(
            message,
            self._sender,
            date,
            s.message_id_domain or self._from_domain,
            reply_to=s.reply_to,
            feedback_id=feedback_id,
        )
        signature = None
        if self.signer is not None:
            value = self.signer.sign(composed.headers, composed.body, timestamp)
            signature = ("DKIM-Signature", value)
        data = composed.to_bytes(signature)
        return Rendered(composed.message_id, composed.recipient, data, composed.smtputf8)

    def _deliver(
        self, session: SmtpSession, chunk: Sequence[Outgoing], stamp: tuple[str, int]
    ) -> list[Handover]:
        """One connection's share of a batch, in order; a dead connection retries the rest."""
        out: list[Handover] = []
        broken: str | None = None
        with session.lock:
            for message in chunk:
                if broken is not None:
                    out.append(Handover(message.message_id, Outcome.RETRY, detail=broken))
                    continue
                try:
                    out.append(self._deliver_one(session, message, stamp))
                except TransportError as exc:
                    broken = str(exc)
                    out.append(Handover(message.message_id, Outcome.RETRY, detail=broken))
                except Exception as exc:  # a surprise in one message must not lose the batch
                    session.reset()
                    out.append(Handover(message.message_id, Outcome.RETRY, detail=repr(exc)))
        return out

    def _deliver_one(
        self, session: SmtpSession, message: Outgoing, stamp: tuple[str, int]
    ) -> Handover:
        """Render and hand over one message; TransportError when there is no connection."""
        try:
            rendered = self.render(message, *stamp)
        except InvalidAddress as exc:
            return Handover(message.message_id, Outcome.UNREACHABLE, detail=str(exc))
        except ValueError as exc:  # InvalidMessage, or text that cannot be encoded
            return Handover(message.message_id, Outcome.FAILED, detail=str(exc))
        outcome, detail = session.deliver(
            self._envelope_from, rendered.recipient, rendered.data, rendered.smtputf8
        )
        if outcome is Outcome.SENT:
            return Handover(message.message_id, outcome, rendered.message_id)
        return Handover(message.message_id, outcome, detail=detail)


def open_channel(config: ProviderConfig, *, clock: Clock | None = None) -> ChannelSender:
    """An SMTP channel from a workspace's settings and secrets; InvalidInput if unusable."""
    settings = parse_settings(SmtpSettings, config.settings)
    _check_addresses(settings)
    secrets = config.secrets
    session = SessionSettings(
        host=settings.host,
        port=settings.port,
        helo_name=settings.helo_name or split_address(settings.from_address)[1],
        timeout=settings.timeout,
        starttls=settings.starttls,
        username=_secret(secrets, "username"),
        password=_secret(secrets, "password"),
        tls_context=_tls_context(settings) if settings.starttls else None,
    )
    return SmtpChannel(settings, session, _signer(settings, secrets), clock or SystemClock())


def _signer(settings: SmtpSettings, secrets: Mapping[str, Any]) -> DkimSigner | None:
    pem = _secret(secrets, "dkim_private_key")
    if pem is None:
        return None
    if not settings.dkim_selector:
        raise InvalidInput(
            Problem("missing_setting", "a DKIM key needs dkim_selector", "settings.dkim_selector")
        )
    domain = settings.dkim_domain or split_address(settings.from_address)[1]
    return DkimSigner(domain, settings.dkim_selector, load_dkim_key(pem))


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cadata=settings.ca_pem or None)
    except ssl.SSLError as exc:
        raise InvalidInput(Problem("invalid_setting", str(exc), "settings.ca_pem")) from exc


def _check_addresses(settings: SmtpSettings) -> None:
    for name in ("from_address", "reply_to", "return_path"):
        value = getattr(settings, name)
        if value is None:
            continue
        try:
            split_address(value)
        except InvalidMessage as exc:
            raise InvalidInput(Problem("invalid_setting", str(exc), f"settings.{name}")) from exc


def _secret(secrets: Mapping[str, Any], name: str) -> str | None:
    value = secrets.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(Problem("invalid_secret", f"{name} must be text", f"secrets.{name}"))
    return value
