"""Mail whose sender fails SPF, DKIM or DMARC is kept and shown to a person, but nothing
automatic goes back to the address it forged (issue 31, item 5): results read from a
trusted upstream's Authentication-Results, or checked on our own SMTP receiver."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.base import InboundMessage, InboundReceipt
from channels.email import AuthenticationSettings, EmailChannel, EmailSettings, SmtpReceiver
from channels.email.authentication import SenderCheck, read_upstream
from router.storage import Database
from tests.channels.test_email import conversation_of, email_overrides, smtp_port
from tests.support.mail import Relay, customer_mail, send
from tests.support.service import Service, running_service

# The display name is RFC 2047-encoded, as the probe's was: 中国银行.
BANK = "=?utf-8?b?5Lit5Zu96ZO26KGM?= <alerts@bank.example>"
UPSTREAM = "mx.shop.example"


@pytest.fixture
async def guarded(database: Database, tmp_path: Path, relay: Relay) -> AsyncIterator[Service]:
    overrides = email_overrides(relay.port, authentication={"trusted_upstreams": [UPSTREAM]})
    async with running_service(tmp_path, database=database, overrides=overrides) as running:
        await running.add_agent("ana")
        yield running


async def _outgoing(service: Service, conversation: int) -> list[dict[str, object]]:
    status, detail = await service.api("ana", "GET", f"/api/agent/conversations/{conversation}")
    assert status == 200 and isinstance(detail, dict)
    return [m for m in detail["messages"] if m["direction"] == "out"]


async def test_a_mail_that_fails_dmarc_upstream_is_flagged_and_never_acknowledged(
    guarded: Service, relay: Relay
) -> None:
    forged = customer_mail(
        "How long does a refund take?",
        sender=BANK,
        headers={
            "Authentication-Results": f"{UPSTREAM}; spf=fail smtp.mailfrom=bank.example; "
            "dkim=none; dmarc=fail (p=reject) header.from=bank.example"
        },
    )
    await send(smtp_port(guarded), forged, sender="alerts@bank.example")
    conversation = await conversation_of(guarded, forged["Message-ID"])
    assert await _outgoing(guarded, conversation) == [], "no answer, no handoff notice"
    _, detail = await guarded.api("ana", "GET", f"/api/agent/conversations/{conversation}")
    assert detail["status"] == "queued", "a person looks at it"  # type: ignore[index]
    (stored,) = detail["messages"]  # type: ignore[index]
    assert "sender not verified: dmarc=fail (mx.shop.example)" in stored["extras"]["flag"]
    assert relay.received == []

    # The same question from a sender the upstream vouches for is answered.
    genuine = customer_mail(
        "How long does a refund take?",
        headers={
            "Authentication-Results": f"{UPSTREAM}; spf=pass smtp.mailfrom=example.net; "
            "dkim=pass header.d=example.net; dmarc=pass header.from=example.net"
        },
    )
    async with guarded.delivered(1):
        await send(smtp_port(guarded), genuine)
    assert relay.received[0]["To"] == "li.wei@example.net"


async def test_results_from_an_untrusted_server_change_nothing(
    guarded: Service, relay: Relay
) -> None:
    """A sender can write any Authentication-Results: only the trusted id counts, and
    only its topmost header (the one our upstream added)."""
    mail = customer_mail(
        "How long does a refund take?",
        headers={"Authentication-Results": "evil.example; dmarc=fail header.from=example.net"},
    )
    async with guarded.delivered(1):
        await send(smtp_port(guarded), mail)
    assert read_upstream(
        [
            f"{UPSTREAM}; dmarc=fail header.from=bank.example",
            f"{UPSTREAM}; dmarc=pass header.from=bank.example",  # forged below ours
        ],
        [UPSTREAM],
    ) == SenderCheck((("dmarc", "fail"),), by=UPSTREAM)
    assert read_upstream(["garbage;;; ==="], [UPSTREAM]) is None


class _Keys:
    """A DKIM key pair and the DNS records a local resolver answers with."""

    def __init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        self.private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.records = {
            "s1._domainkey.example.net": "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode(),
            "_dmarc.example.net": "v=DMARC1; p=reject",
            "_dmarc.bank.example": "v=DMARC1; p=reject",
        }
        self.lookups: list[str] = []

    def lookup(self, name: str) -> str | None:
        self.lookups.append(name)
        return self.records.get(name)

    def sign(self, raw: bytes) -> bytes:
        signature = dkim.sign(
            raw, b"s1", b"example.net", self.private, include_headers=[b"from", b"subject"]
        )
        return bytes(signature) + raw


async def test_the_smtp_receiver_checks_dkim_and_dmarc_itself(tmp_path: Path) -> None:
    keys = _Keys()
    received: list[InboundMessage] = []

    async def on_message(inbound: InboundMessage) -> InboundReceipt:
        received.append(inbound)
        return InboundReceipt(conversation_id=len(received), message_id=len(received))

    channel = EmailChannel(
        settings=EmailSettings(
            addresses=["support@shop.example"],
            authentication=AuthenticationSettings(check_here=True),
        ),
        attachments_dir=tmp_path,
        secret=b"s" * 32,
        txt_lookup=keys.lookup,
    )
    await channel.start(on_message)
    receiver = SmtpReceiver(channel=channel, port=0)
    await receiver.start()
    try:
        signed = keys.sign(customer_mail("Where is my parcel?").as_bytes(policy=_SMTP))
        await send(receiver.port, signed)
        forged = customer_mail("Where is my parcel?", sender=BANK).as_bytes(policy=_SMTP)
        await send(receiver.port, forged, sender="alerts@bank.example")
        tampered = signed.replace(b"Where is my parcel?", b"Send me your password.")
        await send(receiver.port, tampered)
    finally:
        await receiver.stop()
        await channel.stop()
    genuine, bank, changed = received
    assert genuine.unverified is None and genuine.flag is None
    assert genuine.extras["authentication"] == "dkim=pass; dmarc=pass (checked here)"
    assert bank.unverified == "dmarc=fail (checked here)"
    assert bank.flag is not None and "not answered automatically" in bank.flag
    assert changed.unverified is not None, "a signature that no longer matches fails"
    assert "_dmarc.bank.example" in keys.lookups


_SMTP = __import__("email.policy").policy.SMTP
