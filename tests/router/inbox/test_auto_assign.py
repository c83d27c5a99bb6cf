"""Auto-assignment: online agents take queued conversations in turn, up to capacity."""

from __future__ import annotations

import asyncio
from pathlib import Path

from router.delivery.events import ConversationChanged
from router.inbox.keys import AUTO_ASSIGNER
from tests.support.inbox import InboxSession, add_inbox_agent
from tests.support.service import Service, running_service


async def hand_off(service: Service, customer: str) -> int:
    receipt = await service.memory.inject(
        service.memory.message("talk to a person", external_id=customer, sender=customer)
    )
    return receipt.conversation_id


async def assigned(events: asyncio.Queue[object], conversation_id: int) -> ConversationChanged:
    async with asyncio.timeout(5):
        while True:
            event = await events.get()
            if (
                isinstance(event, ConversationChanged)
                and event.conversation_id == conversation_id
                and event.status == "assigned"
            ):
                return event


async def test_queued_conversations_go_to_online_agents_within_capacity(tmp_path: Path) -> None:
    overrides = {"inbox": {"auto_assign": True, "capacity": 1}}
    async with running_service(tmp_path, overrides=overrides) as service:
        await add_inbox_agent(service, "Ana")
        await add_inbox_agent(service, "Bo")
        ana, bo = InboxSession(service), InboxSession(service)
        await ana.login("Ana")
        await bo.login("Bo")
        async with service.db.read() as repo:
            ana_id = (await repo.agent_by_name("Ana")).id  # type: ignore[union-attr]
            bo_id = (await repo.agent_by_name("Bo")).id  # type: ignore[union-attr]
        assigner = service.app[AUTO_ASSIGNER]
        async with service.events.subscribe() as events:
            # Nobody online: the handoff waits in the queue.
            first = await hand_off(service, "c1")
            async with assigner.done:
                await assigner.done.wait_for(lambda: assigner.rounds >= 1)
            async with ana.http.ws_connect("/inbox/ws") as ana_live:
                assert (await assigned(events, first)).assignee_id == ana_id
                # Ana is at capacity: the next one waits for someone else.
                second = await hand_off(service, "c2")
                rounds = assigner.rounds
                async with assigner.done:
                    await assigner.done.wait_for(lambda: assigner.rounds > rounds)
                async with service.db.read() as repo:
                    waiting = await repo.conversation(second)
                assert waiting is not None and waiting.assignee_id is None
                async with bo.http.ws_connect("/inbox/ws") as bo_live:
                    assert (await assigned(events, second)).assignee_id == bo_id
                    await bo_live.close()
                await ana_live.close()
        await ana.close()
        await bo.close()
