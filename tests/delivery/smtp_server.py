"""A real SMTP server in-process (aiosmtpd) for delivery tests and benchmarks.

Usage::

    with SmtpServer() as server:            # listens on a free loopback port
        server.answer("gone@example.com", "550 5.1.1 User unknown")
        ...send to ("127.0.0.1", server.port)...
        server.messages     # what was accepted: envelope and the exact bytes
        server.sessions     # how many connections clients opened

Replies can be scripted per sender at MAIL and per recipient at RCPT or DATA;
connections can be dropped to simulate a server that closed an idle session.
``pipelining=True`` advertises PIPELINING (RFC 2920); ``tls_context`` requires
STARTTLS and ``credentials`` (login, password) AUTH over it. ``keep=False``
counts messages without keeping their bytes (for benchmarks). Only the
standard library and aiosmtpd are imported, so benchmarks can reuse it.

A benchmark that wants the server in its own process, as a real MTA would be
(so it does not share the client's GIL), runs
``python -m tests.delivery.smtp_server [--pipelining]``: it prints its port,
then the count of accepted messages for each line written to its stdin, and
stops when stdin closes.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["Received", "SmtpServer"]

Stage = Literal["mail", "rcpt", "data"]


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted message: envelope and the bytes exactly as received."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    session: int  # which connection (1-based) carried it
    mail_options: tuple[str, ...] = ()
    pipelined: bool = False  # RCPT and DATA had arrived already when MAIL was read


class _Handler:
    """aiosmtpd hooks: scripted replies per recipient, recording of what was accepted."""

    def __init__(self, keep: bool, pipelining: bool) -> None:
        self.keep = keep
        self.pipelining = pipelining
        self.lock = threading.Lock()
        self.replies: dict[tuple[Stage, str], str] = {}
        self.messages: list[Received] = []
        self.accepted = 0

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            # aiosmtpd reads commands line by line, so pipelined groups already work;
            # this only lets a client see that it may pipeline.
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.replies.get(("mail", address.lower()))
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        # Peeks at aiosmtpd's unread input: a pipelining client's DATA is already there.
        buffered = bytes(getattr(server._reader, "_buffer", b""))
        session.pipelined = b"DATA\r\n" in buffered.upper()  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.replies.get(("rcpt", address.lower()))
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for rcpt in envelope.rcpt_tos:
            reply = self.replies.get(("data", rcpt.lower()))
            if reply is not None:
                return reply
        data = envelope.original_content or b""
        with self.lock:
            self.accepted += 1
            if self.keep:
                self.messages.append(
                    Received(
                        envelope.mail_from or "",
                        tuple(envelope.rcpt_tos),
                        data,
                        getattr(server, "session_number", 0),
                        tuple(envelope.mail_options),
                        getattr(session, "pipelined", False),
                    )
                )
        return "250 2.0.0 Message accepted for delivery"


class _CountingSMTP(SMTP):
    """aiosmtpd's protocol, numbering TCP connections (not the TLS upgrade of one)."""

    def __init__(self, owner: SmtpServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.session_number = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # a new connection, not STARTTLS on one
            self.session_number = self.owner._opened(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.owner._closed(self)
        super().connection_lost(error)


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=0, **kwargs)
        self.owner = owner

    def factory(self) -> SMTP:
        return _CountingSMTP(self.owner, self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # Port 0 lets the kernel pick a free port; learn it before aiosmtpd connects to it.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 in a background thread; a context manager."""

    def __init__(
        self,
        *,
        keep: bool = True,
        pipelining: bool = False,
        tls_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
        smtputf8: bool = True,
    ) -> None:
        self.handler = _Handler(keep, pipelining)
        self._sessions = 0
        self._open: set[SMTP] = set()
        self._credentials = credentials
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        if credentials is not None:
            if tls_context is None:
                raise ValueError("AUTH without TLS is not offered; pass tls_context too")
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        self._controller = _Controller(self, self.handler, **kwargs)

    host = "127.0.0.1"

    @property
    def port(self) -> int:
        """The loopback port the server listens on."""
        return int(self._controller.port)

    @property
    def messages(self) -> list[Received]:
        """Accepted messages so far, in the order they were accepted."""
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def accepted(self) -> int:
        """How many messages were accepted (also when ``keep=False``)."""
        with self.handler.lock:
            return self.handler.accepted

    @property
    def sessions(self) -> int:
        """How many connections clients have opened since the server started."""
        with self.handler.lock:
            return self._sessions

    def answer(self, address: str, reply: str, *, at: Stage = "rcpt") -> None:
        """Answer ``reply`` (e.g. ``"450 4.2.1 Try later"``) at RCPT or DATA for a recipient,
        or at MAIL for a sender."""
        self.handler.replies[(at, address.lower())] = reply

    def forget(self, address: str) -> None:
        """Accept ``address`` normally again."""
        for stage in ("mail", "rcpt", "data"):
            self.handler.replies.pop((stage, address.lower()), None)  # type: ignore[misc]

    def drop_connections(self) -> None:
        """Close every open client connection, as a server does with idle sessions."""
        done = threading.Event()

        def close_all() -> None:
            for protocol in list(self._open):
                if protocol.transport is not None:
                    protocol.transport.close()
            done.set()

        self._controller.loop.call_soon_threadsafe(close_all)
        done.wait(5)

    def start(self) -> SmtpServer:
        """Listen; the connection aiosmtpd makes to check readiness is not counted."""
        self._controller.start()
        with self.handler.lock:
            self._sessions = 0
        return self

    def stop(self) -> None:
        """Stop listening and close connections."""
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _opened(self, protocol: SMTP) -> int:
        with self.handler.lock:
            self._sessions += 1
            self._open.add(protocol)
            return self._sessions

    def _closed(self, protocol: SMTP) -> None:
        with self.handler.lock:
            self._open.discard(protocol)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self._credentials is not None
            and (data.login.decode(), data.password.decode()) == self._credentials
        )
        return AuthResult(success=ok, handled=False)


def main(argv: list[str]) -> None:
    """Serve until stdin closes; print the port, then the accepted count per stdin line."""
    server = SmtpServer(keep=False, pipelining="--pipelining" in argv).start()
    print(server.port, flush=True)
    try:
        for _ in sys.stdin:
            print(server.accepted, flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
