"""Suggested synonyms over HTTP: publishing phrasings to an entry suggests a word, an
admin accepts it on the gap page and the bot reads it at once; agents cannot."""

from __future__ import annotations

import html
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.policy import Decision, DecisionKind
from router.keys import BOT
from router.storage.audit_queries import AuditEntry
from tests.support.inbox import InboxSession, add_inbox_agent
from tests.support.service import DEMO_KB, Service, running_service

QUESTION = "收到的时候东西就趴窝了"  # another entry's question, with the new word


def _confidence(decision: Decision, entry: str) -> float:
    return next(c.score for c in decision.candidates if c.id == entry)


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[tuple[Service, Path]]:
    kb = tmp_path / "kb"
    shutil.copytree(DEMO_KB, kb)
    overrides = {"knowledge": {"path": str(kb), "reload_seconds": 0}}
    async with running_service(tmp_path / "svc", overrides=overrides) as service:
        await add_inbox_agent(service, "Lead", admin=True)
        await add_inbox_agent(service, "Ana")
        yield service, kb


async def signed_in(service: Service, name: str) -> InboxSession:
    session = InboxSession(service)
    assert await session.login(name) == 303
    return session


async def submit(session: InboxSession, path: str, form: dict[str, str]) -> str:
    """Post like the page's form does and read the page it leads to."""
    async with session.http.post(path, data={**form, "csrf": session.csrf}) as response:
        assert response.status == 200, await response.text()
        return html.unescape(await response.text())


async def logged(service: Service, action: str) -> list[AuditEntry]:
    async with service.db.read() as repo:
        return await repo.audit_entries(action=action)


async def publish_phrasing(lead: InboxSession) -> str:
    """An admin adds 我的洗衣机趴窝了要修 to repair-booking from the gap report."""
    return await submit(
        lead,
        "/inbox/reports/gaps/publish",
        {"questions": "我的洗衣机趴窝了要修", "answer": "", "extends": "repair-booking"},
    )


async def test_an_admin_accepts_a_suggested_word_and_the_bot_reads_it(
    desk: tuple[Service, Path],
) -> None:
    service, kb = desk
    lead = await signed_in(service, "Lead")
    try:
        async with service.relearned():
            page = await publish_phrasing(lead)
        assert "趴窝了 = 坏了" in page  # said in the notice and listed for a decision
        assert 'data-variant="趴窝了"' in page
        # Who taught the bot what is in the audit log.
        [published] = await logged(service, "publish_faq")
        assert (published.actor, published.target, published.origin[:6]) == (
            "Lead",
            "knowledge",
            "inbox ",
        )
        assert published.detail == {
            "entry": "repair-booking",
            "questions": ["我的洗衣机趴窝了要修"],
            "new_entry": False,
        }
        # Read by meaning, 趴窝了 already leans to the right entry; the word makes it sure.
        before = _confidence(service.app[BOT].decide(QUESTION), "damaged-parcel")

        async with service.relearned():
            page = await submit(
                lead, "/inbox/reports/gaps/synonyms", {"variant": "趴窝了", "action": "accept"}
            )
        assert "趴窝了 now reads as 坏了" in page and 'data-variant="趴窝了"' not in page
        assert "趴窝了" in (kb / "learned_synonyms.yaml").read_text("utf-8")
        after = service.app[BOT].decide(QUESTION)
        assert (after.kind, after.entry_id) == (DecisionKind.ANSWER, "damaged-parcel")
        assert _confidence(after, "damaged-parcel") > before
    finally:
        await lead.close()


async def test_only_admins_decide_and_bad_requests_are_told_so(
    desk: tuple[Service, Path],
) -> None:
    service, kb = desk
    lead, ana = await signed_in(service, "Lead"), await signed_in(service, "Ana")
    try:
        async with service.relearned():
            await publish_phrasing(lead)
        status, _ = await ana.post(
            "/inbox/reports/gaps/synonyms", {"variant": "趴窝了", "action": "accept"}
        )
        assert status == 403
        assert "趴窝了" not in await ana.get("/inbox/reports/gaps")  # not shown to agents
        status, _ = await lead.post("/inbox/reports/gaps/synonyms", {"variant": "趴窝了"})
        assert status == 400
        page = await submit(
            lead, "/inbox/reports/gaps/synonyms", {"variant": "没有的词", "action": "dismiss"}
        )
        assert "no pending suggestion" in page
        page = await submit(
            lead, "/inbox/reports/gaps/synonyms", {"variant": "趴窝了", "action": "dismiss"}
        )
        assert "Dismissed: 趴窝了" in page
        assert not (kb / "learned_synonyms.yaml").exists()
    finally:
        await lead.close()
        await ana.close()


async def test_save_as_faq_into_an_entry_suggests_the_word_and_says_so(
    desk: tuple[Service, Path],
) -> None:
    service, kb = desk
    await service.add_agent("api-agent")
    entry = service.app[BOT].matcher.entry("repair-booking")
    assert entry is not None
    memory = service.memory
    receipt = await memory.inject(memory.message("我要人工，洗衣机趴窝了", external_id="f1"))
    one = f"/api/agent/conversations/{receipt.conversation_id}"
    await service.api("api-agent", "POST", one + "/claim")
    # The agent answers with the entry's own answer: the question becomes its phrasing.
    status, _ = await service.api(
        "api-agent", "POST", one + "/reply", json={"text": entry.answer_for("zh")}
    )
    assert status == 202
    _, detail = await service.api("api-agent", "GET", one)
    reply = next(m for m in detail["messages"] if m["author"] == "agent")
    lead = await signed_in(service, "Lead")
    try:
        async with service.relearned():
            page = await submit(
                lead,
                f"/inbox/c/{receipt.conversation_id}/faq",
                {"question": "我的洗衣机趴窝了要修", "message_id": str(reply["id"])},
            )
        assert "Saved to the knowledge base" in page and "趴窝了 = 坏了" in page
        [saved] = await logged(service, "save_faq")
        assert (saved.actor, saved.target, saved.target_id) == (
            "Lead",
            "conversation",
            receipt.conversation_id,
        )
        assert saved.detail == {
            "entry": "repair-booking",
            "question": "我的洗衣机趴窝了要修",
            "new_entry": False,
        }
        assert "我的洗衣机趴窝了要修" in (kb / "learned.yaml").read_text("utf-8")
        assert "趴窝了" in (kb / "synonym_suggestions.yaml").read_text("utf-8")
    finally:
        await lead.close()


async def test_an_integration_decides_on_suggested_words_through_the_api(
    desk: tuple[Service, Path],
) -> None:
    service, _ = desk
    await service.add_agent("boss", role="admin")
    await service.add_agent("api-agent")
    lead = await signed_in(service, "Lead")
    try:
        async with service.relearned():
            await publish_phrasing(lead)
    finally:
        await lead.close()
    path = "/api/agent/knowledge/synonyms"
    assert (await service.api("api-agent", "GET", path))[0] == 403
    status, body = await service.api("boss", "GET", path)
    assert status == 200
    assert body["suggestions"] == [
        {
            "variant": "趴窝了",
            "canonical": "坏了",
            "entry": "repair-booking",
            "example": "我的洗衣机趴窝了要修",
        }
    ]
    decision = {"variant": "趴窝了", "action": "accept"}
    assert (await service.api("api-agent", "POST", path, json=decision))[0] == 403
    assert (await service.api("boss", "POST", path, json={"variant": "趴窝了"}))[0] == 400
    async with service.relearned():
        status, body = await service.api("boss", "POST", path, json=decision)
    assert (status, body["status"], body["canonical"]) == (200, "accepted", "坏了")
    assert service.app[BOT].decide(QUESTION).entry_id == "damaged-parcel"
    # Decided once: nothing pending any more.
    assert (await service.api("boss", "POST", path, json=decision))[0] == 404
    assert (await service.api("boss", "GET", path))[1]["suggestions"] == []
    # Who taught the bot what, and from where, is in the audit log.
    _, log = await service.api("boss", "GET", "/api/agent/audit?action=accept_synonym")
    [entry] = log["entries"]
    assert entry["actor"] == "boss" and entry["origin"].startswith("api ")
    assert entry["detail"] == {"variant": "趴窝了", "canonical": "坏了", "entry": "repair-booking"}
