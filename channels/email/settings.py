"""Email's settings: ``channels.email`` in config.yaml validates into this."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from channels.settings import MIB, ChannelSettings

__all__ = [
    "AuthenticationSettings",
    "EmailSettings",
    "ImapSettings",
    "RelaySettings",
    "SmtpReceiverSettings",
]


class RelaySettings(ChannelSettings):
    """The SMTP server our replies go out through; no host: no replies by mail."""

    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    # "starttls" (submission, port 587), "tls" (implicit TLS, port 465) or "none".
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: str = ""
    timeout_seconds: float = Field(default=30, gt=0)
    # Verify the relay's certificate (turn off only for a relay on loopback).
    verify_certificate: bool = True


class SmtpReceiverSettings(ChannelSettings):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=2525, ge=0, le=65535)
    # Bigger mail is refused with 552 (and SIZE is advertised in EHLO).
    max_message_mb: float = Field(default=25, gt=0)

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * MIB)


class ImapSettings(ChannelSettings):
    host: str
    port: int = Field(default=993, ge=1, le=65535)
    # "tls" (implicit TLS, port 993) or "none" (loopback, tests).
    security: Literal["tls", "none"] = "tls"
    verify_certificate: bool = True
    username: str
    password: str
    mailboxes: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    # Move processed mail here (it must exist); empty: mark it read and leave it.
    processed_folder: str = ""
    poll_seconds: float = Field(default=60, gt=0)
    idle: bool = True
    # Mail over this size is not downloaded: its headers are, and a person is told.
    max_message_mb: float = Field(default=25, gt=0)
    timeout_seconds: float = Field(default=30, gt=0)

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * MIB)


class AuthenticationSettings(ChannelSettings):
    # The authserv-ids of the MTAs in front of us whose Authentication-Results
    # headers we believe (e.g. mx.shop.example); nobody else's.
    trusted_upstreams: list[str] = Field(default_factory=list)
    # Also check DKIM signatures and the From domain's DMARC policy ourselves (DNS).
    check_here: bool = False

    @field_validator("trusted_upstreams")
    @classmethod
    def _no_blanks(cls, value: list[str]) -> list[str]:
        if any(not upstream.strip() for upstream in value):
            raise ValueError("must not hold blanks")
        return value


class EmailSettings(ChannelSettings):
    enabled: bool = False
    # The support addresses: mail to others is refused; the first is the From of replies.
    addresses: list[str] = Field(default_factory=list)
    from_name: str = "Support"
    relay: RelaySettings = RelaySettings()
    smtp: SmtpReceiverSettings = SmtpReceiverSettings()
    imap: list[ImapSettings] = Field(default_factory=list)
    # A mail whose sender fails SPF/DKIM/DMARC is stored and flagged, never answered.
    authentication: AuthenticationSettings = AuthenticationSettings()
    max_attachment_mb: float = Field(default=10, gt=0)
    # A mail without usable threading headers joins the same sender's open
    # conversation with the same subject if that was active within this many hours.
    thread_window_hours: float = Field(default=168, ge=0)
    # Answer automatically only above this match score (email is answered once, so be sure).
    answer_threshold: float = Field(default=40, ge=0, le=100)
    # At most this many automatic replies per sender per hour; then silence (loops).
    auto_replies_per_hour: int = Field(default=3, ge=0)
    # With several nodes on PostgreSQL one polls IMAP (an advisory lock); the others
    # try to take over this often.
    leader_retry_seconds: float = Field(default=15, gt=0)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    def problem(self) -> str | None:
        if not self.addresses:
            return "addresses: at least one support address is required"
        if not self.relay.host:
            return "relay.host: replies need an SMTP relay"
        if not self.smtp.enabled and not self.imap:
            return "enable smtp or configure an imap account to receive mail"
        return None

    @property
    def domain(self) -> str:
        return self.addresses[0].rsplit("@", 1)[1].lower()

    @property
    def max_attachment_bytes(self) -> int:
        return int(self.max_attachment_mb * MIB)

    @property
    def thread_window_seconds(self) -> float:
        return self.thread_window_hours * 3600
