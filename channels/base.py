"""The envelopes every channel speaks, and the protocol a channel adapter implements.

Standard library only: this module is the whole contract between transports
(web chat, email, Telegram, ...) and the router. Channels never import the router;
the router never sees a transport's own types.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Protocol, runtime_checkable

__all__ = [
    "Attachment",
    "ChannelAdapter",
    "ChannelAddress",
    "ChannelHealth",
    "Choice",
    "DeliveryError",
    "InboundHandler",
    "InboundMessage",
    "InboundReceipt",
    "OutboundAttachment",
    "OutboundKind",
    "OutboundMessage",
    "PermanentDeliveryError",
    "RecipientUnreachable",
    "ReplyWindow",
    "SenderIdentity",
    "ThreadHints",
    "TransientDeliveryError",
    "deduplicates_resends",
    "encodable",
]


def encodable(text: str) -> bool:
    """Whether ``text`` can be stored and sent: no unpaired surrogate (``"\\ud800"``), which a
    JSON escape or a raw 8-bit header can smuggle into a str and UTF-8 cannot encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True, slots=True)
class ChannelAddress:
    """A storable reply route: enough to reach the customer again, hours later, from any node.

    ``recipient_id`` is who receives (a visitor id, an email address, a chat id);
    ``thread_id`` groups messages into one conversation where the channel has
    threads (a web-chat session, an email thread root), else ``None``.
    """

    channel: str
    recipient_id: str
    thread_id: str | None = None

    def __post_init__(self) -> None:
        _require(bool(self.channel), "ChannelAddress.channel must not be empty")
        _require(bool(self.recipient_id), "ChannelAddress.recipient_id must not be empty")

    @property
    def thread_key(self) -> str:
        """The key the router uses to find the open conversation for this address."""
        return self.thread_id or self.recipient_id


@dataclass(frozen=True, slots=True)
class SenderIdentity:
    """Who wrote: an identity on one channel, which the router maps to a contact."""

    channel: str
    external_id: str
    display_name: str | None = None
    email: str | None = None
    # What a trusted channel (a signed bridge) says of the customer, e.g. {"vip": True};
    # merged into the contact's attributes, which routing rules read.
    attributes: Mapping[str, str | int | float | bool] = field(
        default_factory=dict, hash=False, compare=False
    )

    def __post_init__(self) -> None:
        _require(bool(self.channel), "SenderIdentity.channel must not be empty")
        _require(bool(self.external_id), "SenderIdentity.external_id must not be empty")


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with a message; ``ref`` says where the channel stored its bytes."""

    name: str
    content_type: str
    size: int
    ref: str

    def __post_init__(self) -> None:
        _require(self.size >= 0, "Attachment.size must not be negative")


@dataclass(frozen=True, slots=True)
class ThreadHints:
    """How a message without a stable thread id says which conversation it continues.

    The router tries them in order: ``references`` (external ids of earlier
    messages, ours or the customer's, nearest first), then ``ticket`` (a
    conversation number the customer quoted), then ``topic`` (a normalised
    subject: the same sender's open conversation on that topic, active within
    ``topic_window`` seconds). A reference or a ticket is followed only when the
    sender is a participant of that conversation: anyone can name a
    conversation, only the people on it may join it.
    """

    references: tuple[str, ...] = ()
    ticket: int | None = None
    topic: str | None = None
    topic_window: float = 0.0
    # The other people the message was addressed to (email To and Cc): they become
    # participants of the conversation and may write into it too.
    participants: tuple[str, ...] = ()
    # Who wrote the message when replies are to go to someone else (email: From,
    # beside a Reply-To the sender identity follows). Then the author, not the
    # sender, must be on a conversation for the message to join it, and a sender who
    # is not on it never becomes its reply route: a Reply-To can neither carry a
    # stranger's mail into a customer's conversation nor take the customer's replies.
    author: str | None = None

    def __post_init__(self) -> None:
        _require(self.topic_window >= 0, "ThreadHints.topic_window must not be negative")


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One customer message, whatever it arrived by.

    ``external_id`` is the channel's own id for the message and the dedup key:
    the same ``(channel, external_id)`` delivered twice is stored once. Where anyone
    can choose the id (a mail's Message-ID), ``extras["fingerprint"]`` says what the
    message is: a second message under a stored id with another fingerprint is a
    different message, stored and flagged, not a duplicate.
    ``text`` is what the customer wrote this time (quoted history removed where
    the channel has it). ``extras`` holds the few channel details that matter
    downstream, e.g. ``subject`` for email, ``choice`` for a pressed button (the
    entry id), ``start_payload`` for a Telegram deep link.
    """

    external_id: str
    address: ChannelAddress
    sender: SenderIdentity
    text: str
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    extras: Mapping[str, str] = field(default_factory=dict, hash=False)
    # A correction of the message already stored under ``external_id`` (an edited
    # chat message): the stored text is replaced and nobody answers it again.
    edit: bool = False
    # A command the channel recognised (``start``, ``human``), without its slash.
    command: str | None = None
    # Which conversation this continues, for channels that thread by reference (email).
    thread_hints: ThreadHints | None = None
    # Why the message is machine-made (a bounce, an out-of-office reply): it is
    # stored and shown, never answered automatically.
    automated: str | None = None
    # A problem the channel found (unparseable, attachment refused): a person looks.
    flag: str | None = None
    # Why the sender's address is not to be trusted (email: SPF, DKIM or DMARC
    # failed): the message is stored and flagged, and nothing automatic goes to it.
    unverified: str | None = None
    # False when the channel could not read the customer's text at all (binary data,
    # an unparseable mail): a person looks, and nothing is sent automatically.
    readable: bool = True

    def __post_init__(self) -> None:
        _require(bool(self.external_id), "InboundMessage.external_id must not be empty")
        _require(
            self.address.channel == self.sender.channel,
            "InboundMessage.address and sender must be on the same channel",
        )
        _require(self.sent_at.tzinfo is not None, "InboundMessage.sent_at must be timezone-aware")
        object.__setattr__(self, "extras", _frozen_mapping(self.extras))

    @property
    def channel(self) -> str:
        return self.address.channel


@dataclass(frozen=True, slots=True)
class InboundReceipt:
    """What the inbound handler tells the channel once ingest has committed."""

    conversation_id: int
    message_id: int
    duplicate: bool = False


InboundHandler = Callable[[InboundMessage], Awaitable[InboundReceipt]]


class OutboundKind(enum.StrEnum):
    """Why a message goes out; channels may render kinds differently."""

    ANSWER = "answer"
    CLARIFY = "clarify"
    ACK = "ack"
    AGENT = "agent"
    SURVEY = "survey"
    SYSTEM = "system"
    # A scheduled message after the service (回访): "is everything working?"
    FOLLOW_UP = "follow_up"


@dataclass(frozen=True, slots=True)
class Choice:
    """A quick reply offered to the customer: ``id`` comes back in ``extras["choice"]``."""

    id: str
    label: str

    def __post_init__(self) -> None:
        _require(bool(self.id), "Choice.id must not be empty")
        _require(bool(self.label), "Choice.label must not be empty")


@dataclass(frozen=True, slots=True)
class OutboundAttachment:
    """A file an agent sends with a reply.

    ``path`` is where its bytes are on this node (the shared attachments folder), for
    channels that upload them (email, Telegram); ``url`` a signed, expiring link to
    the same bytes, always served as a download, for channels whose far side fetches
    them (web chat, bridges): absolute when the service knows its public address.
    """

    name: str
    content_type: str
    size: int
    path: str
    url: str

    def __post_init__(self) -> None:
        _require(bool(self.name), "OutboundAttachment.name must not be empty")
        _require(self.size >= 0, "OutboundAttachment.size must not be negative")
        _require(bool(self.path), "OutboundAttachment.path must not be empty")

    @property
    def is_image(self) -> bool:
        """A photo a messaging app can show as one (JPEG, PNG, GIF, WebP)."""
        return self.content_type in ("image/jpeg", "image/png", "image/gif", "image/webp")

    async def read(self) -> bytes:
        """The file's bytes (read off the event loop); a file that is gone (erased, or
        a node without the shared folder) is a ``PermanentDeliveryError``."""
        try:
            return await asyncio.to_thread(Path(self.path).read_bytes)
        except OSError as exc:
            raise PermanentDeliveryError(
                f"the attached file {self.name!r} cannot be read here: {exc.strerror}"
            ) from exc


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One reply to deliver.

    ``idempotency_key`` is stable across retries of the same outbox row, so a
    channel that can detect repeats (web chat, some APIs) never shows a reply twice.
    A reply may be files alone (``attachments``) with no text.
    """

    address: ChannelAddress
    conversation_id: int
    text: str
    kind: OutboundKind
    idempotency_key: str
    choices: tuple[Choice, ...] = ()
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The conversation's subject, for channels that show one (email).
    subject: str | None = None
    attachments: tuple[OutboundAttachment, ...] = ()

    def __post_init__(self) -> None:
        _require(bool(self.idempotency_key), "OutboundMessage.idempotency_key must not be empty")
        _require(
            bool(self.text) or bool(self.choices) or bool(self.attachments),
            "OutboundMessage needs text, choices or attachments",
        )


@dataclass(frozen=True, slots=True)
class ReplyWindow:
    """A platform's rule for replies: only within ``hours`` of the customer's last
    message, and at most ``replies`` of them before the customer writes again (None:
    no count). A channel that has one says ``reply_window = ReplyWindow(...)``; the
    outbox then marks a reply outside it dead, with the reason, instead of sending it."""

    hours: float
    replies: int | None = None

    def __post_init__(self) -> None:
        _require(self.hours > 0, "ReplyWindow.hours must be positive")
        _require(self.replies is None or self.replies > 0, "ReplyWindow.replies must be positive")


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    ok: bool
    detail: str = ""


class DeliveryError(Exception):
    """A channel could not deliver an outbound message."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying; ``retry_after`` (seconds) if the far side said when."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (unknown recipient, rejected content)."""


class RecipientUnreachable(PermanentDeliveryError):
    """The customer cannot be reached on this channel any more (e.g. blocked the bot)."""


@runtime_checkable
class ChannelAdapter(Protocol):
    """What the router needs of a channel.

    The adapter gets its inbound handler at ``start()`` and awaits it for every
    message; it acknowledges to its source only after the handler returned.
    It never touches the database or the bot.
    """

    @property
    def name(self) -> str: ...

    async def start(self, on_message: InboundHandler) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, outbound: OutboundMessage) -> str | None:
        """Deliver, or raise TransientDeliveryError / PermanentDeliveryError.

        Returns the channel's own id for the delivered message where it has one
        (an email Message-ID), which the router stores to recognise replies to it.
        """
        ...

    def health(self) -> ChannelHealth: ...


def deduplicates_resends(channel: object) -> bool:
    """Whether a reply sent twice (a node killed between sending and recording it)
    reaches the customer once: the channel carries the idempotency key (bridges), a
    stable id the client skips (web chat's frame ids, email's Message-ID). A channel
    without one (Telegram's Bot API) says ``deduplicates = False``; the outbox then
    records each of its sends at once, leaving the smallest window."""
    return bool(getattr(channel, "deduplicates", True))
