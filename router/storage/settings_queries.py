"""The sections an admin edits while the service runs (``router.settings``), stored whole."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from router.conversations import (
    ConversationStatus,
)
from router.storage.models import (
    ConversationRow,
    SettingRow,
)

__all__ = ["SettingsQueries"]

# The statements every message runs, built once: their values are parameters.
_OPEN_CONVERSATION = (
    select(ConversationRow)
    .where(
        ConversationRow.channel == bindparam("channel"),
        ConversationRow.thread_key == bindparam("thread_key"),
        ConversationRow.status != ConversationStatus.RESOLVED.value,
    )
    .order_by(ConversationRow.id.desc())
    .limit(1)
)
_TOUCH = (
    update(ConversationRow)
    .where(ConversationRow.id == bindparam("conversation_id"))
    .values(
        reply_channel=bindparam("reply_channel"),
        reply_recipient=bindparam("reply_recipient"),
        reply_thread=bindparam("reply_thread"),
        updated_at=bindparam("updated_at", type_=ConversationRow.updated_at.type),
        # Kept when the message brought none.
        language=func.coalesce(bindparam("new_language", type_=String), ConversationRow.language),
        bot_misses=func.coalesce(
            bindparam("new_misses", type_=Integer), ConversationRow.bot_misses
        ),
    )
)


class SettingsQueries:
    session: AsyncSession

    async def setting(self, key: str) -> tuple[dict[str, Any], datetime] | None:
        row = await self.session.get(SettingRow, key)
        return None if row is None else (dict(row.value), row.updated_at)

    async def setting_changed_at(self, key: str) -> datetime | None:
        return await self.session.scalar(select(SettingRow.updated_at).where(SettingRow.key == key))

    async def put_setting(
        self, key: str, value: dict[str, Any], *, now: datetime, agent_id: int | None
    ) -> None:
        row = await self.session.get(SettingRow, key)
        if row is None:
            self.session.add(SettingRow(key=key, value=value, updated_at=now, updated_by=agent_id))
        else:
            row.value, row.updated_at, row.updated_by = value, now, agent_id
        await self.session.flush()
