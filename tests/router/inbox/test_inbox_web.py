"""The inbox over HTTP: accounts, sessions, CSRF, roles, the stale-reply guard, escaping."""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text

from router.inbox import DatabaseThrottles, LoginLimiter
from router.inbox.accounts import LoginRefused, TooManyAttempts
from router.inbox.keys import ACCOUNTS
from router.storage import Database
from tests.support.inbox import PASSWORD, InboxSession, add_inbox_agent
from tests.support.service import Service, running_service
from tests.support.webchat import Visitor

XSS = '<img src=x onerror=alert(1)><script>alert(2)</script><a href="javascript:alert(3)">x</a>'


@pytest.fixture
async def agents(service: Service) -> AsyncIterator[tuple[InboxSession, InboxSession]]:
    await add_inbox_agent(service, "Li Wei", admin=True)
    await add_inbox_agent(service, "Ana")
    li, ana = InboxSession(service), InboxSession(service)
    assert await li.login("Li Wei") == 303
    assert await ana.login("Ana") == 303
    yield li, ana
    await li.close()
    await ana.close()


async def handed_off(service: Service, text: str = "talk to a person") -> tuple[Visitor, int]:
    customer = Visitor(service.client)
    await customer.connect()
    ack = await customer.tell(text)
    await customer.reply()  # the handoff notice
    return customer, int(ack["conversation"])


async def test_pages_need_a_session_and_a_wrong_password_does_not_give_one(
    service: Service,
) -> None:
    await add_inbox_agent(service, "Ana")
    stranger = InboxSession(service)
    async with stranger.http.get("/inbox", allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"].startswith("/inbox/login")
    assert await stranger.login("Ana", "wrong password!") == 401
    assert await stranger.login("Nobody", PASSWORD) == 401
    assert await stranger.login("Ana") == 303
    cookie = next(iter(stranger.http.cookie_jar))
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert "Ana" in await stranger.get("/inbox")
    await stranger.close()


async def test_login_attempts_are_rate_limited(service: Service) -> None:
    await add_inbox_agent(service, "Ana")
    session = InboxSession(service)
    statuses = [await session.login("Ana", f"guess number {n}") for n in range(6)]
    assert statuses == [401] * 5 + [429]
    # Even the right password waits now: the limit is per name and per address.
    assert await session.login("Ana") == 429
    await session.close()


async def test_state_changes_without_the_csrf_token_are_refused(
    service: Service, agents: tuple[InboxSession, InboxSession]
) -> None:
    li, _ = agents
    _, conversation_id = await handed_off(service)
    status, _ = await li.post(f"/inbox/c/{conversation_id}/claim", csrf=False)
    assert status == 403
    status, _ = await li.post(f"/inbox/c/{conversation_id}/claim", {"csrf": "forged"}, csrf=False)
    assert status == 403
    async with service.db.read() as repo:
        conversation = await repo.conversation(conversation_id)
    assert conversation is not None and conversation.assignee_id is None
    status, _ = await li.post(f"/inbox/c/{conversation_id}/claim")
    assert status == 303


async def test_a_disabled_agents_session_stops_at_once_and_agents_cannot_reach_admin(
    service: Service, agents: tuple[InboxSession, InboxSession]
) -> None:
    li, ana = agents
    async with ana.http.get("/inbox/admin", allow_redirects=False) as response:
        assert response.status == 403
    status, _ = await ana.post("/inbox/admin/agents", {"name": "Eve", "password": PASSWORD})
    assert status == 403
    async with service.db.read() as repo:
        ana_id = (await repo.agent_by_name("Ana")).id  # type: ignore[union-attr]
    status, _ = await li.post(f"/inbox/admin/agents/{ana_id}/disable")
    assert status == 303
    async with ana.http.get("/inbox", allow_redirects=False) as response:
        assert response.status == 302  # back to the login page
    assert await ana.login("Ana") == 401
    status, _ = await li.post(f"/inbox/admin/agents/{ana_id}/enable")
    assert await ana.login("Ana") == 303


async def test_a_reply_is_stopped_when_the_customer_wrote_since_the_agent_looked(
    service: Service, agents: tuple[InboxSession, InboxSession]
) -> None:
    li, ana = agents
    customer, conversation_id = await handed_off(service)
    await li.post(f"/inbox/c/{conversation_id}/claim")
    page = await li.get(f"/inbox/c/{conversation_id}")
    seen = _seen(page)
    await customer.tell("Also, the box was wet.")
    status, body = await li.post(
        f"/inbox/c/{conversation_id}/reply", {"text": "Hello, I can help.", "seen": seen}
    )
    assert status == 409
    assert "Hello, I can help." in body  # the draft is kept
    assert "Also, the box was wet." in body  # what is new is shown
    # Now seen is up to date: the reply goes.
    status, _ = await li.post(
        f"/inbox/c/{conversation_id}/reply", {"text": "Hello, I can help.", "seen": _seen(body)}
    )
    assert status == 303
    reply = await customer.reply()
    assert reply["text"] == "Hello, I can help."
    # Ana does not own it: her reply is stopped too, her draft kept.
    status, body = await ana.post(
        f"/inbox/c/{conversation_id}/reply", {"text": "Me too!", "seen": _seen(body)}
    )
    assert status == 409 and "Me too!" in body


def _seen(page: str) -> str:
    match = re.search(r'name="seen" value="(\d+)"', page)
    assert match
    return match.group(1)


async def test_customer_text_is_always_escaped(
    service: Service, agents: tuple[InboxSession, InboxSession]
) -> None:
    li, _ = agents
    _, conversation_id = await handed_off(service, f"talk to a person {XSS}")
    page = await li.get(f"/inbox/c/{conversation_id}")
    queue = await li.get("/inbox?tab=unassigned")
    for body in (page, queue):
        assert "<img src=x" not in body and "<script>alert" not in body
        assert 'href="javascript:' not in body
    assert html.escape(XSS, quote=True)[:40] in page
    async with li.http.get(f"/inbox/c/{conversation_id}") as response:
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_the_inbox_speaks_chinese_when_the_agent_chooses_it(
    service: Service, agents: tuple[InboxSession, InboxSession]
) -> None:
    li, _ = agents
    assert "Unassigned" in await li.get("/inbox")
    status, _ = await li.post("/inbox/language", {"language": "zh", "next": "/inbox"})
    assert status == 303
    page = await li.get("/inbox")
    assert "未分配" in page and "Unassigned" not in page
    # Remembered for the agent, not the browser: a new session is still in Chinese.
    again = InboxSession(service)
    await again.login("Li Wei")
    assert "未分配" in await again.get("/inbox")
    await again.close()


async def test_agents_in_taiwan_and_hong_kong_get_the_inbox_in_traditional_script(
    service: Service, agents: tuple[InboxSession, InboxSession]
) -> None:
    li, _ = agents
    visitor, _ = await handed_off(service)
    status, _ = await li.post("/inbox/language", {"language": "zh_Hant", "next": "/inbox"})
    assert status == 303
    page = await li.get("/inbox")
    assert '<html lang="zh-TW">' in page
    assert "未分配" in page and "客服工作臺" in page and "客服工作台" not in page
    # Codes and durations in words too: the channel, how long the customer waits.
    assert ">網頁聊天<" in page and "分鐘" in page and ">webchat<" not in page
    # Back to simplified with one click, and to English with the other.
    assert 'name="language" value="zh"' in page and 'name="language" value="en"' in page
    await li.post("/inbox/language", {"language": "zh", "next": "/inbox"})
    page = await li.get("/inbox")
    assert '<html lang="zh-CN">' in page and "客服工作台" in page
    await visitor.close()
    # Before signing in, the browser's language decides: a Taiwanese browser reads 繁體.
    async with service.client.get(
        "/inbox/login", headers={"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"}
    ) as response:
        assert '<html lang="zh-TW">' in await response.text()
    async with service.client.get(
        "/inbox/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}
    ) as response:
        assert '<html lang="zh-CN">' in await response.text()


async def test_search_finds_a_conversation_by_the_customers_words(
    service: Service, agents: tuple[InboxSession, InboxSession]
) -> None:
    li, _ = agents
    _, conversation_id = await handed_off(service, "talk to a person about my zebra-striped kettle")
    found = await li.get("/inbox?tab=open&q=zebra-striped")
    assert f"/inbox/c/{conversation_id}" in found
    nothing = await li.get("/inbox?tab=open&q=no-such-words-anywhere")
    assert f"/inbox/c/{conversation_id}" not in nothing


async def test_accounts_refuse_short_passwords(service: Service) -> None:
    with pytest.raises(ValueError, match="at least 10"):
        await service.app[ACCOUNTS].create("Bo", "short")


async def test_the_openapi_document_describes_every_agent_route_and_nothing_else(
    service: Service,
) -> None:
    async with service.client.get("/api/openapi.json") as response:
        document = await response.json()
    assert document["openapi"].startswith("3.")
    documented = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    routed = set()
    for route in service.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if path.startswith("/api/agent") and route.method != "HEAD":
            routed.add((route.method, re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)))
    assert documented == routed


async def test_agents_assign_tag_prioritise_resolve_and_reopen(
    service: Service, agents: tuple[InboxSession, InboxSession]
) -> None:
    li, ana = agents
    _, conversation_id = await handed_off(service)
    async with service.db.read() as repo:
        ana_id = (await repo.agent_by_name("Ana")).id  # type: ignore[union-attr]
    one = f"/inbox/c/{conversation_id}"
    assert (await li.post(one + "/assign", {"agent_id": str(ana_id)}))[0] == 303
    # Li Wei gave it away; Ana owns it now, and Li Wei (an admin) may still move it.
    assert (await li.post(one + "/update", {"tags": "refund， vip", "priority": "urgent"}))[
        0
    ] == 303
    page = await ana.get(one)
    assert 'id="assignee">Ana<' in page
    assert '<span class="tag">refund</span>' in page and '<span class="tag">vip</span>' in page
    assert 'value="urgent" selected' in page
    assert f"/inbox/c/{conversation_id}" in await ana.get("/inbox?tab=mine&tag=vip")
    assert f"/inbox/c/{conversation_id}" not in await ana.get("/inbox?tab=mine&tag=other")
    assert (await ana.post(one + "/resolve"))[0] == 303
    assert 'data-status="resolved">resolved<' in await ana.get(one)
    assert (await li.post(one + "/reopen"))[0] == 303
    page = await li.get(one)
    assert 'data-status="assigned">assigned<' in page and 'id="assignee">Li Wei<' in page
    await li.post(one + "/note", {"text": "Called the customer; parts ordered."})
    assert "Called the customer; parts ordered." in await ana.get(one)


def test_both_languages_have_every_phrase() -> None:
    from router.inbox.i18n import texts

    assert set(texts("zh")) == set(texts("en")) == set(texts("zh_Hant"))


async def test_behind_a_tls_proxy_the_session_cookie_is_secure(tmp_path: Path) -> None:
    async with running_service(tmp_path, overrides={"inbox": {"secure_cookies": True}}) as svc:
        await add_inbox_agent(svc, "Ana")
        async with svc.client.post(
            "/inbox/login", data={"name": "Ana", "password": PASSWORD}, allow_redirects=False
        ) as response:
            assert response.status == 303
            cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


async def test_unassigned_holds_handoffs_and_bot_conversations_have_their_own_tab(
    service: Service, agents: tuple[InboxSession, InboxSession]
) -> None:
    li, _ = agents
    answered = await service.memory.inject(
        service.memory.message("How do I return an item?", external_id="q1", sender="c1")
    )
    _, handed = await handed_off(service)
    unassigned, with_bot = await li.get("/inbox?tab=unassigned"), await li.get("/inbox?tab=bot")
    assert f"/inbox/c/{handed}" in unassigned
    assert f"/inbox/c/{answered.conversation_id}" not in unassigned
    assert f"/inbox/c/{answered.conversation_id}" in with_bot


async def test_parallel_guesses_are_counted_before_any_password_is_checked(
    service: Service,
) -> None:
    await add_inbox_agent(service, "Ana")
    sessions = [InboxSession(service) for _ in range(30)]
    statuses = await asyncio.gather(*(s.login("Ana", f"guess {n}") for n, s in enumerate(sessions)))
    # The free attempts are tried; every other guess is refused before argon2 runs.
    assert statuses.count(401) == 5 and statuses.count(429) == 25
    for session in sessions:
        await session.close()


async def test_a_stranger_cannot_lock_an_agent_out(service: Service) -> None:
    await add_inbox_agent(service, "Ana")
    accounts = service.app[ACCOUNTS]
    await accounts.login("Ana", PASSWORD, address="10.0.0.5")  # Ana's own desk
    # Someone guesses Ana's password from many addresses, far past any lock threshold.
    for n in range(40):
        with contextlib.suppress(LoginRefused, TooManyAttempts):
            await accounts.login("Ana", f"guess {n}", address=f"203.0.113.{n % 4}")
    # Ana still signs in at once from where she works...
    agent, _, _ = await accounts.login("Ana", PASSWORD, address="10.0.0.5")
    assert agent.name == "Ana"
    # ...and from a new place the wait, if any, is short: never a lock.
    try:
        await accounts.login("Ana", PASSWORD, address="198.51.100.7")
    except TooManyAttempts as waiting:
        assert waiting.retry_after <= 30


@pytest.mark.parametrize("kept", ["memory", "database"])
async def test_delays_grow_with_each_failure_and_expire(kept: str, database: Database) -> None:
    now = [1000.0]
    store = DatabaseThrottles(database) if kept == "database" else None
    limiter = LoginLimiter(attempts=2, window=900, clock=lambda: now[0], store=store)
    waits = []
    for _ in range(6):
        try:
            await limiter.attempt("ana", "1.2.3.4")
            waits.append(0.0)
        except TooManyAttempts as exc:
            waits.append(round(exc.retry_after))
            now[0] += exc.retry_after
            await limiter.attempt("ana", "1.2.3.4")
    assert waits == [0, 0, 1, 2, 4, 8]
    now[0] += 901
    await limiter.attempt("ana", "1.2.3.4")  # forgotten after the window


async def test_the_login_limits_count_every_node_s_attempts(database: Database) -> None:
    """Two nodes (two limiters on one database): a guesser alternating between them is
    slowed down as if there were one; a success on either clears the name's counts."""
    now = [1000.0]
    nodes = [
        LoginLimiter(attempts=3, clock=lambda: now[0], store=DatabaseThrottles(database))
        for _ in range(2)
    ]
    for n in range(3):
        await nodes[n % 2].attempt("Ana", "203.0.113.9")
    with pytest.raises(TooManyAttempts):
        await nodes[1].attempt("ana", "203.0.113.9")
    with pytest.raises(TooManyAttempts):
        await nodes[0].attempt("ANA", "203.0.113.9")
    now[0] += 2
    await nodes[0].attempt("ana", "203.0.113.9")
    await nodes[0].succeeded("ana", "203.0.113.9")
    await nodes[1].attempt("ana", "203.0.113.9")  # counts cleared
    # Nothing of the name or the address is stored as it is.
    async with database.read() as repo:
        keys = (await repo.session.execute(text("SELECT key FROM login_throttles"))).all()
    assert keys and all("ana" not in k and "203.0" not in k for (k,) in keys)


async def test_a_cross_site_login_form_and_a_foreign_websocket_are_refused(
    service: Service,
) -> None:
    await add_inbox_agent(service, "Ana")
    async with service.client.post(
        "/inbox/login",
        data={"name": "Ana", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    ) as response:
        assert response.status == 403
        assert "Set-Cookie" not in response.headers
    ana = InboxSession(service)
    assert await ana.login("Ana") == 303
    host = service.client.make_url("/").host
    port = service.client.make_url("/").port
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await ana.http.ws_connect("/inbox/ws", headers={"Origin": f"http://sub.{host}:{port}"})
    assert refused.value.status == 403
    same = await ana.http.ws_connect("/inbox/ws", headers={"Origin": f"http://{host}:{port}"})
    await same.close()
    await ana.close()


async def test_an_undelivered_reply_is_badged_in_the_queue_and_sent_again_from_its_page(
    service: Service, agents: tuple[InboxSession, InboxSession]
) -> None:
    from channels.base import PermanentDeliveryError
    from router.delivery.events import DeliveryFailed

    li, _ = agents
    memory = service.memory
    memory.fail_next(PermanentDeliveryError("relay refused: mailbox full"))
    async with service.events.subscribe() as events:
        receipt = await memory.inject(memory.message("talk to a person", external_id="dead-web"))
        while not (isinstance(event := await events.get(), DeliveryFailed) and event.dead):
            pass
    conversation = receipt.conversation_id
    async with service.db.read() as repo:
        dead = await repo.outbox_by_status("dead")
    assert 'class="badge undelivered"' in await li.get("/inbox?tab=unassigned")
    page = await li.get(f"/inbox/c/{conversation}")
    assert "resend-form" in page
    async with service.delivered(1):
        status, _ = await li.post(
            f"/inbox/c/{conversation}/resend", {"delivery_id": str(dead[0].id)}
        )
    assert status == 303
    assert [m.kind for m in memory.sent] == ["ack"]
    assert 'class="badge undelivered"' not in await li.get("/inbox?tab=unassigned")


async def test_save_as_faq_offers_the_question_not_the_request_for_a_person(
    service: Service, agents: tuple[InboxSession, InboxSession]
) -> None:
    """Asked, then "转人工" (the handoff's own message), then answered: the question to
    teach the bot is the one asked, not the request for a person."""
    li, _ = agents
    memory = service.memory
    receipt = await memory.inject(
        memory.message("怎么申请退货？", external_id="faq-1", sender="faq")
    )
    await memory.inject(memory.message("转人工", external_id="faq-2", sender="faq"))
    cid = receipt.conversation_id
    await service.add_agent("api-li")
    status, _ = await service.api("api-li", "POST", f"/api/agent/conversations/{cid}/claim")
    assert status == 200
    status, _ = await service.api(
        "api-li",
        "POST",
        f"/api/agent/conversations/{cid}/reply",
        json={"text": "您好，进水管可以单独购买，型号 W-20。"},
    )
    assert status == 202
    page = await li.get(f"/inbox/c/{cid}")
    assert re.findall(r'<input name="question" value="([^"]*)"', page) == [
        html.escape("怎么申请退货？")
    ]


async def test_the_transcript_shows_the_choices_the_bot_offered(
    service: Service, agents: tuple[InboxSession, InboxSession]
) -> None:
    li, _ = agents
    memory = service.memory
    receipt = await memory.inject(memory.message("return", external_id="ch-1", sender="ch"))
    [question] = await memory.wait_for_sent(1)
    assert question.kind == "clarify" and len(question.choices) >= 2
    page = await li.get(f"/inbox/c/{receipt.conversation_id}")
    offered = re.findall(r'<li data-choice="([^"]+)">([^<]+)</li>', page)
    assert offered == [(c.id, html.escape(c.label)) for c in question.choices]
