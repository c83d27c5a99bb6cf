"""Mail peers for tests: a recording SMTP relay (aiosmtpd) and a customer's mail client."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Relay:
    """An SMTP relay on a loopback port that keeps what it accepts.

    ``script`` holds the replies to the next DATA commands ("451 ...", "550 ...");
    once it is empty every mail is accepted.
    """

    received: list[EmailMessage] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    attempts: int = 0
    # With a TLS context the relay requires STARTTLS; with credentials, AUTH.
    tls_context: ssl.SSLContext | None = None
    credentials: tuple[str, str] | None = None
    connections: int = 0
    logins: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        if self.script:
            return self.script.pop(0)
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        async with self._arrived:
            self.received.append(message)
            self._arrived.notify_all()
        return "250 2.0.0 queued"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.credentials is not None
        login = data.login.decode() if isinstance(data, LoginPassword) else ""
        ok = (
            isinstance(data, LoginPassword)
            and (
                login,
                data.password.decode(),
            )
            == self.credentials
        )
        if ok:
            self.logins.append(login)
        return AuthResult(success=ok, handled=False)

    def _protocol(self) -> SMTP:
        self.connections += 1
        return SMTP(
            self,
            decode_data=False,
            enable_SMTPUTF8=True,
            tls_context=self.tls_context,
            require_starttls=self.tls_context is not None,
            auth_required=self.credentials is not None,
            authenticator=self._authenticate if self.credentials else None,
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def wait_for(self, count: int, *, within: float = 10.0) -> list[EmailMessage]:
        """The first ``count`` mails, once they have arrived."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return self.received[:count]


def customer_mail(
    text: str,
    *,
    subject: str = "Question about my order",
    sender: str = "Li Wei <li.wei@example.net>",
    to: str = "support@shop.example",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Iterable[str] = (),
    headers: dict[str, str] | None = None,
    html: str | None = None,
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = message_id or make_msgid(domain="example.net")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    refs = list(references)
    if refs:
        mail["References"] = " ".join(refs)
    for name, value in (headers or {}).items():
        mail[name] = value
    if html is not None and not text:
        mail.set_content(html, subtype="html")
    else:
        mail.set_content(text)
        if html is not None:
            mail.add_alternative(html, subtype="html")
    return mail


async def send(port: int, mail: EmailMessage | bytes, **kwargs: Any) -> tuple[Any, str]:
    """Hand ``mail`` to the SMTP server on ``port`` as a customer's provider would."""
    if isinstance(mail, bytes):
        kwargs.setdefault("sender", "li.wei@example.net")
        kwargs.setdefault("recipients", ["support@shop.example"])
    return await aiosmtplib.send(mail, hostname="127.0.0.1", port=port, **kwargs)


def body_text(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def self_signed_context(folder: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1 (openssl CLI)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
