"""The SMTP receiver (aiosmtpd), for teams that forward support mail from their MTA.

It runs in the service's own event loop. It answers 250 to DATA only after
the mail is committed, 451 if it could not be (the sending MTA retries), 550
to recipients that are not our support addresses, and 552 to mail over the
size limit (aiosmtpd's ``data_size_limit``, also advertised as SIZE in EHLO).
Every refusal is logged with its reason and the peer.

Lines may be as long as the whole mail: RFC 5321 says 998 bytes, but real mail
(one-line HTML, long base64 without breaks) is longer, and refusing it loses a
customer's message for a formality.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.channel import EmailChannel

__all__ = ["SmtpReceiver"]

logger = logging.getLogger(__name__)


class _Protocol(SMTP):
    """aiosmtpd's protocol with the two settings it only takes as class state.

    ``line_length_limit`` is read in aiosmtpd's own constructor (it sizes the
    stream reader), so it cannot be passed in; and the responses it sends by
    itself (a line too long, a syntax error) are logged here, where they are made.
    """

    def __init__(self, handler: _Handler, *, line_limit: int, **kwargs: Any) -> None:
        self.line_length_limit = line_limit
        super().__init__(handler, **kwargs)

    async def push(self, status: AnyStr) -> None:
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else str(status)
        if text[:1] in ("4", "5"):
            peer = self.session.peer if self.session is not None else None
            logger.warning("SMTP refused to %s: %s", peer, text[:200])
        await super().push(status)


class _Handler:
    def __init__(self, channel: EmailChannel) -> None:
        self._channel = channel

    async def handle_RCPT(  # aiosmtpd calls hooks by these names
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not self._channel.accepts(address):
            return f"550 5.1.1 <{address}>: no such support mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # aiosmtpd calls hooks by these names
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        if raw is None:
            return "554 5.6.0 no message"
        try:
            receipt = await self._channel.receive(raw, envelope_from=envelope.mail_from)
        except Exception:
            logger.exception("mail from %s not taken in; the sender will retry", envelope.mail_from)
            return "451 4.3.0 temporary failure, please try again later"
        if receipt is None:
            return "250 2.0.0 OK (own mail, ignored)"
        return f"250 2.0.0 OK conversation {receipt.conversation_id}"


class SmtpReceiver:
    """Listens on ``host:port`` (0 picks a free port; see ``port`` after ``start``)."""

    def __init__(
        self,
        *,
        channel: EmailChannel,
        host: str = "127.0.0.1",
        port: int = 2525,
        max_message_bytes: int = 25 * 1024 * 1024,
        hostname: str | None = None,
    ) -> None:
        self._channel = channel
        self._host = host
        self._port = port
        self._max = max_message_bytes
        self._hostname = hostname
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the SMTP receiver is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    def _protocol(self) -> SMTP:
        kwargs: dict[str, Any] = {
            "line_limit": self._max + 2,
            "data_size_limit": self._max,
            "enable_SMTPUTF8": True,
            "decode_data": False,
            "ident": "RelayDesk",
        }
        if self._hostname:
            kwargs["hostname"] = self._hostname
        return _Protocol(_Handler(self._channel), **kwargs)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self._host, self._port)
        logger.info("SMTP receiver listening on %s:%s", self._host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
