"""Who did what is on record; a contact's data can be exported and erased on request."""

from __future__ import annotations

import dataclasses
import json
import secrets
from typing import Any

from sqlalchemy import text

from channels.base import Attachment, SenderIdentity
from router.inbox.accounts import hash_token
from router.keys import CLOCK, FILES
from router.storage.models import Base
from router.storage.report_queries import ReportFilter
from tests.support.service import Service

MARK = "Zebra-7731"  # in everything personal the customer gave us


async def add_admin(service: Service, name: str) -> None:
    token = secrets.token_urlsafe(24)
    async with service.db.write() as repo:
        await repo.add_agent(
            name=name, token_hash=hash_token(token), now=service.app[CLOCK](), role="admin"
        )
    service.tokens[name] = token


async def test_every_agent_action_is_in_the_audit_log(service: Service) -> None:
    await service.add_agent("ana")
    await add_admin(service, "boss")
    receipt = await service.memory.inject(service.memory.message("转人工", external_id="au-1"))
    path = f"/api/agent/conversations/{receipt.conversation_id}"
    await service.api("ana", "POST", path + "/claim")
    await service.api("ana", "PATCH", path, json={"tags": ["vip"], "priority": "high"})
    await service.api("ana", "POST", path + "/resolve")
    await service.api("boss", "POST", path + "/reopen", json={"agent_id": None})

    status, body = await service.api("ana", "GET", "/api/agent/audit")
    assert status == 403  # agents do not read it
    status, body = await service.api("boss", "GET", "/api/agent/audit")
    assert status == 200
    entries = list(reversed(body["entries"]))
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("ana", "claim"),
        ("ana", "update"),
        ("ana", "resolve"),
        ("boss", "reopen"),
    ]
    for entry in entries:
        assert entry["target"] == "conversation"
        assert entry["target_id"] == receipt.conversation_id
        assert entry["origin"].startswith("api 127.0.0.1")
    assert entries[1]["detail"] == {"tags": ["vip"], "priority": "high"}
    assert entries[3]["detail"] == {"to": "queue"}
    status, body = await service.api("boss", "GET", "/api/agent/audit?action=resolve")
    assert [e["action"] for e in body["entries"]] == ["resolve"]


async def test_a_contact_is_exported_then_erased_leaving_only_counts(service: Service) -> None:
    await service.add_agent("ana")
    await add_admin(service, "boss")
    memory = service.memory
    folder = service.app[FILES].root
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    photo = folder / "photos" / "broken.jpg"
    photo.write_bytes(b"\xff\xd8 a photo of " + MARK.encode())
    first = dataclasses.replace(
        memory.message(f"I am {MARK}, my kettle broke", external_id="er-1", sender=MARK.lower()),
        sender=SenderIdentity(channel="memory", external_id=MARK.lower(), display_name=MARK),
        attachments=(Attachment(f"{MARK}.jpg", "image/jpeg", 20, "photos/broken.jpg"),),
    )
    receipt = await memory.inject(first)
    cid = receipt.conversation_id
    path = f"/api/agent/conversations/{cid}"
    await service.api("ana", "POST", path + "/claim")
    await service.api("ana", "POST", path + "/reply", json={"text": f"Sorry {MARK}, on it."})
    await service.api("ana", "POST", path + "/notes", json={"text": f"{MARK} is a VIP"})
    await service.api(
        "ana",
        "POST",
        path + "/scheduled",
        json={"kind": "reminder", "in_minutes": 60, "text": MARK},
    )
    await memory.inject(
        memory.message(f"{MARK} again: thanks", external_id="er-2", sender=MARK.lower())
    )
    status, detail = await service.api("ana", "GET", path)
    contact_id = detail["contact"]["id"]
    # What the shop said of them (routing rules read it) is theirs too.
    status, _ = await service.api(
        "ana", "PUT", f"/api/agent/contacts/{contact_id}/attributes", json={"member": MARK}
    )
    assert status == 200
    counts = await _counts(service)

    status, _ = await service.api("ana", "GET", f"/api/agent/contacts/{contact_id}/export")
    assert status == 403
    status, export = await service.api("boss", "GET", f"/api/agent/contacts/{contact_id}/export")
    assert status == 200
    assert export["identities"][0]["display_name"] == MARK
    assert export["contact"]["attributes"] == {"member": MARK}
    [conversation] = export["conversations"]
    assert MARK in json.dumps(conversation, ensure_ascii=False)

    status, erased = await service.api("ana", "POST", f"/api/agent/contacts/{contact_id}/erase")
    assert status == 403
    status, erased = await service.api("boss", "POST", f"/api/agent/contacts/{contact_id}/erase")
    assert status == 200 and erased["conversations"] == 1 and erased["files"] == 1

    # Nothing of the customer is left: no row of any table holds the mark, no file.
    assert await _rows_holding(service, MARK) == []
    assert not photo.exists()
    # The reports still count the conversation and its messages.
    assert await _counts(service) == counts
    status, detail = await service.api("boss", "GET", path)
    assert detail["status"] == "resolved"
    status, body = await service.api("boss", "GET", "/api/agent/audit?action=erase_contact")
    [entry] = body["entries"]
    assert entry["actor"] == "boss" and entry["target_id"] == contact_id
    # Erased twice is still erased; an unknown contact is a 404.
    status, _ = await service.api("boss", "POST", f"/api/agent/contacts/{contact_id}/erase")
    assert status == 200
    status, _ = await service.api("boss", "POST", "/api/agent/contacts/999999/erase")
    assert status == 404


async def _counts(service: Service) -> tuple[int, int, int]:
    async with service.db.read() as repo:
        conversations, messages = await repo.count_all()
        start = service.app[CLOCK]().replace(year=2000)
        rows = await repo.report_rows(ReportFilter(start=start, end=start.replace(year=2100)))
    return conversations, messages, len(rows)


async def _rows_holding(service: Service, mark: str) -> list[tuple[str, Any]]:
    """Every row of every table whose text (any column) holds ``mark``, case folded."""
    found: list[tuple[str, Any]] = []
    async with service.db.read() as repo:
        for table in Base.metadata.sorted_tables:
            rows = (await repo.session.execute(text(f"SELECT * FROM {table.name}"))).all()
            found.extend(
                (table.name, row)
                for row in rows
                if mark.casefold()
                in json.dumps([str(v) for v in row], ensure_ascii=False).casefold()
            )
    return found
