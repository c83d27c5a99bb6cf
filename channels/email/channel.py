"""The email channel: mail in by SMTP (aiosmtpd) or IMAP, replies out through a relay.

Every mail, however it arrives, goes through ``EmailChannel.receive``: parse,
recognise our own mail coming back, keep attachments (refusing oversized
ones, which flags the conversation for a person), derive the threading hints
and hand an ``InboundMessage`` to the router. The SMTP receiver answers 250
and IMAP marks a message processed only after that returned, i.e. after the
ingest committed. Replies go out through ``send`` over one reused aiosmtplib
connection; 4xx and network trouble are transient, 5xx permanent.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import re
import secrets
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage, Message
from pathlib import Path

import aiosmtplib

from channels.base import (
    Attachment,
    ChannelAddress,
    ChannelHealth,
    InboundHandler,
    InboundMessage,
    InboundReceipt,
    OutboundMessage,
    PermanentDeliveryError,
    SenderIdentity,
    ThreadHints,
    TransientDeliveryError,
)
from channels.email.authentication import (
    AuthenticationSettings,
    SenderCheck,
    check_here,
    read_upstream,
)
from channels.email.compose import compose_reply
from channels.email.parse import (
    MailAttachment,
    ParsedMail,
    clean_header_text,
    envelope_auto_reason,
    parse_mail,
)
from channels.email.threading import is_ours, normalise_subject, ticket_in

__all__ = ["EmailChannel", "EmailSettings", "RelaySettings"]

logger = logging.getLogger(__name__)

CHANNEL = "email"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_TEXT_CHARS = 100_000
_MAX_PARTICIPANTS = 20


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """The SMTP server our replies go out through."""

    host: str
    port: int = 587
    # "starttls" (submission, port 587), "tls" (implicit TLS, port 465) or "none".
    security: str = "starttls"
    username: str = ""
    password: str = ""
    timeout: float = 30.0
    # Verify the relay's certificate (turn off only for a relay on loopback).
    verify: bool = True

    def __post_init__(self) -> None:
        if self.security not in ("starttls", "tls", "none"):
            raise ValueError("RelaySettings.security must be starttls, tls or none")


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """``addresses``: the support addresses we receive for; the first is the From of replies."""

    addresses: tuple[str, ...]
    attachments_dir: Path
    # Keys the Message-IDs we mint, so nobody can guess one (at least 16 bytes).
    secret: bytes
    relay: RelaySettings | None = None
    from_name: str = "Support"
    max_attachment_bytes: int = 10 * 1024 * 1024
    # Join a mail to the same sender's open conversation with the same subject
    # when its threading headers are missing, within this many seconds.
    thread_window: float = 7 * 24 * 3600.0
    extra_own_domains: tuple[str, ...] = field(default=())
    # Whose SPF/DKIM/DMARC results to believe, and whether to check DKIM/DMARC here.
    authentication: AuthenticationSettings = field(default_factory=AuthenticationSettings)

    def __post_init__(self) -> None:
        if not self.addresses:
            raise ValueError("EmailSettings.addresses needs at least one support address")
        if any("@" not in a for a in self.addresses):
            raise ValueError("EmailSettings.addresses must be email addresses")
        if len(self.secret) < 16:
            raise ValueError("EmailSettings.secret must be at least 16 bytes")

    @property
    def domain(self) -> str:
        return self.addresses[0].rsplit("@", 1)[1].lower()


class EmailChannel:
    """Receives by SMTP and IMAP (see ``channels.email.smtp`` / ``.imap``), sends by SMTP."""

    def __init__(self, *, settings: EmailSettings) -> None:
        self._settings = settings
        self._accepted = frozenset(a.lower() for a in settings.addresses)
        self._on_message: InboundHandler | None = None
        self._smtp: aiosmtplib.SMTP | None = None
        self._smtp_lock = asyncio.Lock()
        self._last_error = ""
        self.received = 0
        self.ignored_own = 0

    @property
    def name(self) -> str:
        return CHANNEL

    @property
    def settings(self) -> EmailSettings:
        return self._settings

    def accepts(self, address: str) -> bool:
        """Whether ``address`` is one of our support addresses."""
        return address.strip().lower() in self._accepted

    async def start(self, on_message: InboundHandler) -> None:
        self._settings.attachments_dir.mkdir(parents=True, exist_ok=True)
        self._on_message = on_message

    async def stop(self) -> None:
        async with self._smtp_lock:
            if self._smtp is not None:
                with contextlib.suppress(Exception):
                    await self._smtp.quit()
                self._smtp = None
        self._on_message = None

    def health(self) -> ChannelHealth:
        if self._last_error:
            return ChannelHealth(False, self._last_error)
        return ChannelHealth(True, f"{self.received} mails received")

    # -- receiving ---------------------------------------------------------------

    async def receive(
        self, raw: bytes, *, envelope_from: str | None = None, refused_size: int | None = None
    ) -> InboundReceipt | None:
        """Ingest one raw mail; returns once it is committed (None: our own mail, dropped).

        ``refused_size``: the mail was too big to fetch, only its headers are in ``raw``.
        """
        if self._on_message is None:
            raise RuntimeError("the email channel is not started")
        parsed = parse_mail(raw)
        if self._is_own(parsed):
            self.ignored_own += 1
            logger.info("our own mail %s came back; not taken in", parsed.message_id)
            return None
        written: list[Path] = []
        check = await self._check_sender(parsed, raw)
        try:
            inbound = self._inbound(
                parsed,
                raw,
                envelope_from=envelope_from,
                refused_size=refused_size,
                written=written,
                check=check,
            )
            receipt = await self._on_message(inbound)
        except BaseException:
            _remove(written)  # the source re-sends; nothing of this attempt stays
            raise
        if receipt.duplicate:
            # Stored before: the first copy's files stay as they were, this copy's go.
            _remove(written)
        self.received += 1
        return receipt

    def _is_own(self, parsed: ParsedMail) -> bool:
        domains = (self._settings.domain, *self._settings.extra_own_domains)
        if any(is_ours(parsed.message_id, d) for d in domains):
            return True
        return any(k.lower() == "x-relaydesk-conversation" for k, _ in parsed.headers)

    async def _check_sender(self, parsed: ParsedMail, raw: bytes) -> SenderCheck | None:
        """The trusted upstream's results, else our own check if it is on, else None."""
        settings = self._settings.authentication
        upstream = read_upstream(
            (v for k, v in parsed.headers if k.lower() == "authentication-results"),
            settings.trusted_upstreams,
        )
        if upstream is not None or not settings.check_here:
            return upstream
        domain = (parsed.from_address or "").rpartition("@")[2] or None
        return await asyncio.to_thread(check_here, raw, domain, settings.txt_lookup)

    def _inbound(
        self,
        parsed: ParsedMail,
        raw: bytes,
        *,
        envelope_from: str | None,
        refused_size: int | None,
        written: list[Path],
        check: SenderCheck | None = None,
    ) -> InboundMessage:
        flags: list[str] = []
        unverified = check.failure if check is not None else None
        if unverified is not None:
            flags.append(f"sender not verified: {unverified}; not answered automatically")
        author = parsed.from_address or _envelope_address(envelope_from) or "unknown@invalid"
        sender, name = self._customer(parsed, author)
        attachments: list[Attachment] = []
        for item in parsed.attachments:
            if len(item.data) > self._settings.max_attachment_bytes:
                flags.append(
                    f"attachment {item.name!r} refused: {len(item.data):,} bytes "
                    f"over the {self._settings.max_attachment_bytes:,}-byte limit"
                )
                continue
            attachments.append(self._store(item, written))
        if refused_size is not None:
            flags.append(
                f"mail of {refused_size:,} bytes is over the size limit: its text and "
                "attachments were refused, only its headers were kept"
            )
        # Every mail is kept as it came, byte for byte: what we could not read, a
        # person can still open.
        original = self._store(MailAttachment("original.eml", "message/rfc822", raw), written)
        if not parsed.readable:
            flags.append(parsed.problems[0])
            attachments.append(original)
        text = parsed.text
        if len(text) > _MAX_TEXT_CHARS:
            text = text[:_MAX_TEXT_CHARS] + "\n[…]"
        extras = {
            "subject": parsed.subject[:300],
            "message_id": parsed.message_id,
            "original": original.ref,
            # The router tells a re-sent copy from a different mail reusing the id.
            "fingerprint": parsed.fingerprint,
        }
        if parsed.problems:
            extras["problems"] = "; ".join(parsed.problems)[:500]
        if check is not None:
            extras["authentication"] = check.header_text()[:300]
        if sender != author:
            # Both kept: a person sees who wrote it and where the answers go.
            extras["from"] = author
            extras["reply_to"] = sender
        if parsed.full_text and parsed.full_text.strip() != text.strip():
            extras["quoted"] = parsed.full_text[:_MAX_TEXT_CHARS]
        references = tuple(
            dict.fromkeys((*parsed.in_reply_to, *reversed(parsed.references), *parsed.about))
        )
        # Whoever else the customer wrote to (To, Cc): people on the thread, not us.
        participants = tuple(
            dict.fromkeys(a for a in parsed.to if not self.accepts(a) and a not in (sender, author))
        )[:_MAX_PARTICIPANTS]
        return InboundMessage(
            external_id=parsed.message_id,
            address=ChannelAddress(CHANNEL, sender, thread_id=parsed.message_id),
            sender=SenderIdentity(
                CHANNEL,
                sender,
                display_name=clean_header_text(name or "")[:200] or None,
                email=sender,
            ),
            text=text,
            html=parsed.html,
            attachments=tuple(attachments),
            sent_at=parsed.sent_at or _now(),
            extras=extras,
            thread_hints=ThreadHints(
                references=references,
                ticket=ticket_in(parsed.subject),
                topic=normalise_subject(parsed.subject) or None,
                topic_window=self._settings.thread_window,
                participants=participants,
                author=author if author != sender else None,
            ),
            automated=parsed.auto or self._envelope_auto(envelope_from, sender != author),
            flag="; ".join(flags)[:300] if flags else None,
            readable=parsed.readable,
            unverified=unverified,
        )

    def _customer(self, parsed: ParsedMail, author: str) -> tuple[str, str | None]:
        """Who the mail is from as far as the desk is concerned, and their name: the
        Reply-To when it names someone else than From (a shop's contact form sends
        from noreply@ on the customer's behalf), unless it names one of our support
        addresses; From otherwise."""
        if parsed.reply_to is not None:
            name, address = parsed.reply_to
            if address != author and not self.accepts(address):
                return address, name
        return author, parsed.from_name

    @staticmethod
    def _envelope_auto(envelope_from: str | None, for_someone: bool) -> str | None:
        """Why the envelope says the mail is machine-made. A form that writes for a
        customer named in Reply-To sends from a no-reply envelope too; only the null
        sender of a bounce still counts then."""
        reason = envelope_auto_reason(envelope_from)
        if for_someone and reason is not None and reason != "null sender":
            return None
        return reason

    def _store(self, item: MailAttachment, written: list[Path]) -> Attachment:
        """Write a new file under a random name: a stored file never changes, whatever
        a later mail claims to be (the same Message-ID, the same file name)."""
        safe = _SAFE_NAME.sub("_", item.name)[-80:] or "attachment"
        while True:
            path = self._settings.attachments_dir / f"{secrets.token_hex(12)}-{safe}"
            try:
                with path.open("xb") as handle:
                    written.append(path)
                    handle.write(item.data)
            except FileExistsError:
                continue
            break
        return Attachment(
            name=clean_header_text(item.name)[:200] or "attachment",
            content_type=item.content_type,
            size=len(item.data),
            ref=f"email/{path.name}",
        )

    # -- sending -----------------------------------------------------------------

    async def send(self, outbound: OutboundMessage) -> str | None:
        relay = self._settings.relay
        if relay is None:
            raise PermanentDeliveryError("no SMTP relay is configured for the email channel")
        sender = Address(self._settings.from_name, addr_spec=self._settings.addresses[0])
        mail, message_id = compose_reply(
            outbound,
            sender=sender,
            domain=self._settings.domain,
            secret=self._settings.secret,
            files=[await a.read() for a in outbound.attachments],
        )
        await self._relay_send(relay, mail)
        return message_id

    async def notify(self, to: str, subject: str, text: str) -> None:
        """A plain automatic mail to a person of the desk (an alert, a reminder), from
        the first support address, through the relay."""
        relay = self._settings.relay
        if relay is None:
            raise PermanentDeliveryError("no SMTP relay is configured for the email channel")
        mail = EmailMessage()
        mail["From"] = Address(self._settings.from_name, addr_spec=self._settings.addresses[0])
        mail["To"] = to
        mail["Subject"] = subject
        mail["Date"] = email.utils.format_datetime(_now())
        mail["Message-ID"] = email.utils.make_msgid(domain=self._settings.domain)
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(text)
        await self._relay_send(relay, mail)

    async def _relay_send(self, relay: RelaySettings, mail: Message) -> None:
        async with self._smtp_lock:
            for attempt in (1, 2):
                client = await self._connected(relay)
                try:
                    errors, _ = await client.send_message(mail)
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    codes = [r.code for r in exc.recipients]
                    detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
                    if codes and all(400 <= c < 500 for c in codes):
                        raise TransientDeliveryError(f"relay deferred: {detail}") from exc
                    raise PermanentDeliveryError(f"relay refused: {detail}") from exc
                except aiosmtplib.SMTPResponseException as exc:
                    if 400 <= exc.code < 500:
                        raise TransientDeliveryError(
                            f"relay said {exc.code} {exc.message}"
                        ) from exc
                    if exc.code >= 500:
                        raise PermanentDeliveryError(
                            f"relay said {exc.code} {exc.message}"
                        ) from exc
                    raise TransientDeliveryError(str(exc)) from exc
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
                    # A reused connection the relay had closed: once more on a fresh one.
                    await self._drop_connection()
                    if attempt == 2:
                        self._last_error = f"relay {relay.host}:{relay.port}: {exc}"
                        raise TransientDeliveryError(f"relay disconnected: {exc}") from exc
                    continue
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    await self._drop_connection()
                    self._last_error = f"relay {relay.host}:{relay.port}: {exc}"
                    raise TransientDeliveryError(f"relay unreachable: {exc}") from exc
                self._last_error = ""
                if errors:
                    detail = "; ".join(f"{k}: {v.code} {v.message}" for k, v in errors.items())
                    raise PermanentDeliveryError(f"relay refused: {detail}")
                return
        raise AssertionError("unreachable")

    async def _connected(self, relay: RelaySettings) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        context = ssl.create_default_context()
        if not relay.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        client = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            timeout=relay.timeout,
            use_tls=relay.security == "tls",
            start_tls=relay.security == "starttls",
            tls_context=context if relay.security != "none" else None,
            username=relay.username or None,
            password=relay.password or None,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Refused logins and broken TLS are the operator's to fix (health shows it);
            # the replies wait and retry meanwhile.
            self._last_error = f"relay {relay.host}:{relay.port}: {exc}"
            raise TransientDeliveryError(f"relay unreachable: {exc}") from exc
        self._smtp = client
        return client

    async def _drop_connection(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(Exception):
                self._smtp.close()
            self._smtp = None


def _now() -> datetime:
    return datetime.now(UTC)


def _envelope_address(envelope_from: str | None) -> str | None:
    value = (envelope_from or "").strip().strip("<>").strip().lower()
    return value if "@" in value and " " not in value else None


def _remove(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()
