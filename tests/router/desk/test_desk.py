"""The desk: who may do what, checked before every transition."""

from __future__ import annotations

import pytest

from router.errors import AlreadyResolved, NotAllowed, NotYours
from router.storage import Agent, Database
from tests.router.desk.test_transitions import agents, desk_on, queued


async def test_only_the_owner_replies_and_resolves_and_only_admins_take_over(
    database: Database,
) -> None:
    desk = desk_on(database)
    conversation_id = await queued(database)
    ana, bo = await agents(database, "ana", "bo")
    async with database.write() as repo:
        await repo.update_agent(bo.id, role="admin")
        admin = await repo.agent(bo.id)
    assert isinstance(admin, Agent)
    stranger, *_ = await agents(database, "cy")

    await desk.claim(conversation_id, ana)
    with pytest.raises(NotYours):
        await desk.reply(conversation_id, stranger, "I'll take this")
    with pytest.raises(NotYours):
        await desk.assign(conversation_id, stranger, stranger)
    with pytest.raises(NotYours):
        await desk.resolve(conversation_id, stranger)
    # An admin may hand it to someone else, or back to the queue.
    moved = await desk.assign(conversation_id, admin, stranger)
    assert moved.assignee_id == stranger.id
    await desk.reply(conversation_id, stranger, "Hello, I'm Cy.")
    resolved = await desk.resolve(conversation_id, stranger)
    assert resolved.status.value == "resolved"
    with pytest.raises(AlreadyResolved):
        await desk.reply(conversation_id, stranger, "one more thing")
    reopened = await desk.reopen(conversation_id, ana, assignee=ana)
    assert reopened.status.value == "assigned" and reopened.assignee_id == ana.id


async def test_a_disabled_agent_cannot_be_given_work(database: Database) -> None:
    desk = desk_on(database)
    conversation_id = await queued(database)
    ana, bo = await agents(database, "ana", "bo")
    async with database.write() as repo:
        await repo.update_agent(bo.id, active=False)
        disabled = await repo.agent(bo.id)
    assert disabled is not None
    with pytest.raises(NotAllowed):
        await desk.assign(conversation_id, ana, disabled)
