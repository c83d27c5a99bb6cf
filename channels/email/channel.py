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
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

from channels.base import (
    Attachment,
    ChannelAddress,
    ChannelHealth,
    InboundHandler,
    InboundMessage,
    InboundReceipt,
    OutboundMessage,
    SenderIdentity,
    ThreadHints,
)
from channels.email.authentication import (
    SenderCheck,
    TxtLookup,
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
from channels.email.relay import Relay
from channels.email.settings import EmailSettings
from channels.email.threading import is_ours, normalise_subject, ticket_in

__all__ = ["EmailChannel"]

logger = logging.getLogger(__name__)

CHANNEL = "email"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_TEXT_CHARS = 100_000
_MAX_PARTICIPANTS = 20


class EmailChannel:
    """Receives by SMTP and IMAP (see ``channels.email.smtp`` / ``.imap``), sends by SMTP."""

    def __init__(
        self,
        *,
        settings: EmailSettings,
        attachments_dir: Path,
        secret: bytes,
        txt_lookup: TxtLookup | None = None,
    ) -> None:
        """``attachments_dir``: where mail and its files are kept; ``secret`` keys the
        Message-IDs we mint, so nobody can guess one (16+ bytes); ``txt_lookup``: DNS TXT
        for DKIM/DMARC checked here (tests, or the operator's own resolver), None: the
        system's DNS."""
        if not settings.addresses:
            raise ValueError("email: at least one support address is required")
        if len(secret) < 16:
            raise ValueError("email: the secret needs 16 or more bytes")
        self._settings = settings
        self._attachments_dir = attachments_dir
        self._secret = secret
        self._txt_lookup = txt_lookup
        self._accepted = frozenset(a.lower() for a in settings.addresses)
        self._on_message: InboundHandler | None = None
        self._relay = Relay(settings.relay)
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
        self._attachments_dir.mkdir(parents=True, exist_ok=True)
        self._on_message = on_message

    async def stop(self) -> None:
        await self._relay.close()
        self._on_message = None

    def health(self) -> ChannelHealth:
        if self._relay.last_error:
            return ChannelHealth(False, self._relay.last_error)
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
        if is_ours(parsed.message_id, self._settings.domain):
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
        return await asyncio.to_thread(check_here, raw, domain, self._txt_lookup)

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
        attachments, original = self._files(parsed, raw, refused_size, written, flags)
        text = parsed.text
        if len(text) > _MAX_TEXT_CHARS:
            text = text[:_MAX_TEXT_CHARS] + "\n[…]"
        extras = _extras(parsed, text, original, check)
        if sender != author:
            # Both kept: a person sees who wrote it and where the answers go.
            extras["from"] = author
            extras["reply_to"] = sender
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
                topic_window=self._settings.thread_window_seconds,
                participants=participants,
                author=author if author != sender else None,
            ),
            automated=parsed.auto or self._envelope_auto(envelope_from, sender != author),
            flag="; ".join(flags)[:300] if flags else None,
            readable=parsed.readable,
            unverified=unverified,
        )

    def _files(
        self,
        parsed: ParsedMail,
        raw: bytes,
        refused_size: int | None,
        written: list[Path],
        flags: list[str],
    ) -> tuple[list[Attachment], Attachment]:
        """The mail's attachments within the size limit (the others flagged), and the
        mail itself as it came, byte for byte: what we could not read, a person can
        still open (it is an attachment too when the mail is unreadable)."""
        limit = self._settings.max_attachment_bytes
        attachments: list[Attachment] = []
        for item in parsed.attachments:
            if len(item.data) > limit:
                flags.append(
                    f"attachment {item.name!r} refused: {len(item.data):,} bytes "
                    f"over the {limit:,}-byte limit"
                )
                continue
            attachments.append(self._store(item, written))
        if refused_size is not None:
            flags.append(
                f"mail of {refused_size:,} bytes is over the size limit: its text and "
                "attachments were refused, only its headers were kept"
            )
        original = self._store(MailAttachment("original.eml", "message/rfc822", raw), written)
        if not parsed.readable:
            flags.append(parsed.problems[0])
            attachments.append(original)
        return attachments, original

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
            path = self._attachments_dir / f"{secrets.token_hex(12)}-{safe}"
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
        sender = Address(self._settings.from_name, addr_spec=self._settings.addresses[0])
        mail, message_id = compose_reply(
            outbound,
            sender=sender,
            domain=self._settings.domain,
            secret=self._secret,
            files=[await a.read() for a in outbound.attachments],
        )
        await self._relay.send(mail)
        return message_id

    async def notify(self, to: str, subject: str, text: str) -> None:
        """A plain automatic mail to a person of the desk (an alert, a reminder), from
        the first support address, through the relay."""
        mail = EmailMessage()
        mail["From"] = Address(self._settings.from_name, addr_spec=self._settings.addresses[0])
        mail["To"] = to
        mail["Subject"] = subject
        mail["Date"] = email.utils.format_datetime(_now())
        mail["Message-ID"] = email.utils.make_msgid(domain=self._settings.domain)
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(text)
        await self._relay.send(mail)


def _now() -> datetime:
    return datetime.now(UTC)


def _extras(
    parsed: ParsedMail, text: str, original: Attachment, check: SenderCheck | None
) -> dict[str, str]:
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
    if parsed.full_text and parsed.full_text.strip() != text.strip():
        extras["quoted"] = parsed.full_text[:_MAX_TEXT_CHARS]
    return extras


def _envelope_address(envelope_from: str | None) -> str | None:
    value = (envelope_from or "").strip().strip("<>").strip().lower()
    return value if "@" in value and " " not in value else None


def _remove(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()
