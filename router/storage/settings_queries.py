"""The sections an admin edits while the service runs (``router.settings``), stored whole."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from router.storage.models import SettingRow

__all__ = ["SettingsQueries"]


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
