"""IMAP intake against a real Dovecot: poll, IDLE, several mailboxes, a processed
folder, oversized mail, and a restart in the middle of a batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from channels.base import InboundMessage, InboundReceipt
from channels.email import EmailChannel, EmailSettings, ImapPoller, ImapSettings
from router.keys import IMAP_POLLERS
from router.storage import Database
from tests.support import dovecot
from tests.support.mail import Relay, body_text, customer_mail
from tests.support.service import STRICT, running_service

pytestmark = pytest.mark.slow


@pytest.fixture
async def imap() -> AsyncIterator[dovecot.Dovecot]:
    if not dovecot.available():
        if STRICT:
            pytest.fail("Dovecot is not installed; .ci/run installs dovecot-imapd")
        pytest.skip("Dovecot (Debian dovecot-imapd) is not installed")
    async with dovecot.running_dovecot() as server:
        yield server


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    server = Relay()
    await server.start()
    yield server
    await server.stop()


def imap_overrides(imap: dovecot.Dovecot, relay: Relay, **account: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": imap.port,
        "security": "none",
        "username": dovecot.USER,
        "password": dovecot.PASSWORD,
        "idle": False,
        "poll_seconds": 300,
    }
    settings.update(account)
    return {
        "channels": {
            "email": {
                "enabled": True,
                "addresses": [dovecot.USER],
                "relay": {"host": "127.0.0.1", "port": relay.port, "security": "none"},
                "imap": [settings],
            }
        }
    }


def numbered(count: int, *, start: int = 0, size: int = 0) -> list[bytes]:
    mails = []
    for n in range(start, start + count):
        mail = customer_mail(
            f"Message number {n}: my parcel number {n} is late.",
            subject=f"Parcel {n}",
            sender=f"customer{n}@example.net",
            to=dovecot.USER,
            message_id=f"<parcel-{n}@example.net>",
        )
        if size:
            mail.add_attachment(b"\x89" * size, maintype="application", subtype="zip")
        mails.append(mail.as_bytes())
    return mails


async def test_polling_takes_in_unread_mail_marks_it_seen_and_answers(
    imap: dovecot.Dovecot, relay: Relay, tmp_path: Path
) -> None:
    question = customer_mail("How long does a refund take?", to=dovecot.USER)
    await imap.deliver(question.as_bytes(), *numbered(2))
    async with running_service(tmp_path, overrides=imap_overrides(imap, relay)) as service:
        (poller,) = service.app[IMAP_POLLERS]
        await poller.wait_rounds(1)
        (answer,) = await relay.wait_for(1)
        async with service.db.read() as repo:
            counts = await repo.count_by_status()
        async with service.client.get("/healthz") as response:
            health = await response.json()
    assert health["imap"][0]["ok"] and health["imap"][0]["detail"] == "3 mails taken in"
    assert sum(counts.values()) == 3
    assert answer["In-Reply-To"] == question["Message-ID"]
    assert "original payment method" in body_text(answer)
    assert all("\\Seen" in flags for flags in (await imap.flags()).values())


async def test_idle_brings_new_mail_in_without_waiting_for_the_poll(
    imap: dovecot.Dovecot, relay: Relay, tmp_path: Path
) -> None:
    overrides = imap_overrides(imap, relay, idle=True, poll_seconds=600)
    async with running_service(tmp_path, overrides=overrides) as service:
        (poller,) = service.app[IMAP_POLLERS]
        await poller.wait_rounds(1)  # the empty inbox read; now idling
        question = customer_mail("退款多久到账？", to=dovecot.USER)
        await imap.deliver(question.as_bytes())
        async with asyncio.timeout(20):  # far below the 600 s poll: only IDLE can do it
            await poller.wait_rounds(2)
        (answer,) = await relay.wait_for(1)
    assert "原路退回" in body_text(answer)


async def test_several_mailboxes_and_a_processed_folder(
    imap: dovecot.Dovecot, relay: Relay, tmp_path: Path
) -> None:
    await imap.create("Sales")
    await imap.create("Processed")
    await imap.deliver(*numbered(2))
    await imap.deliver(*numbered(2, start=10), mailbox="Sales")
    overrides = imap_overrides(
        imap, relay, mailboxes=["INBOX", "Sales"], processed_folder="Processed"
    )
    async with running_service(tmp_path, overrides=overrides) as service:
        (poller,) = service.app[IMAP_POLLERS]
        await poller.wait_rounds(2)
        async with service.db.read() as repo:
            counts = await repo.count_by_status()
    assert sum(counts.values()) == 4
    assert await imap.flags("INBOX") == {}
    assert await imap.flags("Sales") == {}
    assert len(await imap.flags("Processed")) == 4


async def test_oversized_mail_is_flagged_for_a_person_with_its_attachment_refused(
    imap: dovecot.Dovecot, relay: Relay, tmp_path: Path
) -> None:
    (big,) = numbered(1, size=30 * 1024 * 1024)
    await imap.deliver(big)
    async with running_service(tmp_path, overrides=imap_overrides(imap, relay)) as service:
        (poller,) = service.app[IMAP_POLLERS]
        await poller.wait_rounds(1)
        (ack,) = await relay.wait_for(1)
        await service.add_agent("ana")
        _, queue = await service.api("ana", "GET", "/api/agent/conversations?status=queued")
        (summary,) = queue["conversations"]
        _, detail = await service.api("ana", "GET", f"/api/agent/conversations/{summary['id']}")
    assert detail["handoffs"][0]["reason"] == "flagged"
    (message,) = [m for m in detail["messages"] if m["direction"] == "in"]
    assert "over the size limit" in message["extras"]["flag"]
    assert message["attachments"] == []
    assert message["extras"]["subject"] == "Parcel 0"
    assert f"#{summary['id']}" in body_text(ack)


class _Intake:
    """An inbound handler that records, and can hang on one message like a killed process."""

    def __init__(self, *, hang_on: int | None = None) -> None:
        self.taken: list[InboundMessage] = []
        self.hang_on = hang_on
        self.hanging = asyncio.Event()

    async def __call__(self, inbound: InboundMessage) -> InboundReceipt:
        if self.hang_on is not None and len(self.taken) == self.hang_on:
            self.hanging.set()
            await asyncio.Event().wait()  # never commits
        self.taken.append(inbound)
        return InboundReceipt(conversation_id=1, message_id=len(self.taken))


async def test_a_restart_in_the_middle_of_a_batch_loses_nothing_and_takes_nothing_twice(
    imap: dovecot.Dovecot, tmp_path: Path
) -> None:
    await imap.deliver(*numbered(5))
    settings = ImapSettings(
        host="127.0.0.1",
        port=imap.port,
        security="none",
        username=dovecot.USER,
        password=dovecot.PASSWORD,
        idle=False,
        poll_seconds=300,
    )
    channel = EmailChannel(
        settings=EmailSettings(addresses=[dovecot.USER]),
        attachments_dir=tmp_path / "files",
        secret=b"s" * 32,
    )
    first = _Intake(hang_on=2)
    await channel.start(first)
    poller = ImapPoller(channel=channel, settings=settings, state_path=tmp_path / "imap-state.json")
    poller.start()
    await first.hanging.wait()
    await poller.stop()  # killed while the third mail was being stored
    flags = await imap.flags()
    assert [("\\Seen" in f) for _, f in sorted(flags.items())] == [True, True, False, False, False]

    second = _Intake()
    await channel.start(second)
    restarted = ImapPoller(
        channel=channel, settings=settings, state_path=tmp_path / "imap-state.json"
    )
    restarted.start()
    await restarted.wait_rounds(1)
    await restarted.stop()
    taken = [m.external_id for m in first.taken + second.taken]
    assert taken == [f"parcel-{n}@example.net" for n in range(5)]
    assert all("\\Seen" in f for f in (await imap.flags()).values())


async def test_a_wrong_imap_password_shows_in_health_and_takes_nothing(
    imap: dovecot.Dovecot, relay: Relay, tmp_path: Path
) -> None:
    await imap.deliver(*numbered(1))
    overrides = imap_overrides(imap, relay, password="wrong")
    async with running_service(tmp_path, overrides=overrides) as service:
        (poller,) = service.app[IMAP_POLLERS]
        async with asyncio.timeout(20):
            await poller.failed.wait()
        async with service.client.get("/healthz") as response:
            assert response.status == 503
            health = await response.json()
    assert "LOGIN" in health["imap"][0]["detail"]
    assert ["\\Seen" in f for f in (await imap.flags()).values()] == [False]


async def test_with_several_nodes_on_postgresql_one_polls_and_another_takes_over(
    postgres: Database, imap: dovecot.Dovecot, relay: Relay, tmp_path: Path
) -> None:
    database = postgres  # one node per SQLite file: leadership is a PostgreSQL matter
    overrides = imap_overrides(imap, relay)
    overrides["channels"]["email"]["leader_retry_seconds"] = 0.05
    await imap.deliver(*numbered(2))
    node_a = running_service(tmp_path / "a", database=database, overrides=overrides)
    a = await node_a.__aenter__()
    try:
        (first,) = a.app[IMAP_POLLERS]
        await first.wait_rounds(1)
        async with running_service(tmp_path / "b", database=database, overrides=overrides) as b:
            (second,) = b.app[IMAP_POLLERS]
            assert first.running and not second.running
            async with b.client.get("/healthz") as response:
                assert (await response.json())["imap"][0]["detail"].startswith("standby")
            await imap.deliver(*numbered(1, start=2))
            # Node A goes away: B takes the lock over and reads what A left.
            await node_a.__aexit__(None, None, None)
            node_a = None
            async with asyncio.timeout(20):
                await second.wait_rounds(1)
            assert second.running
            async with b.db.read() as repo:
                counts = await repo.count_by_status()
    finally:
        if node_a is not None:
            await node_a.__aexit__(None, None, None)
    assert sum(counts.values()) == 3
