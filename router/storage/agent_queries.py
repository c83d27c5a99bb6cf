"""Agent accounts and inbox sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from router.storage.mapping import agent_record
from router.storage.models import AgentRow, SessionRow
from router.storage.records import Agent

__all__ = ["AgentQueries"]


class AgentQueries:
    session: AsyncSession

    async def agent(self, agent_id: int) -> Agent | None:
        row = await self.session.get(AgentRow, agent_id)
        return None if row is None else agent_record(row)

    async def password_hash(self, name: str) -> tuple[Agent, str | None] | None:
        row = await self.session.scalar(select(AgentRow).where(AgentRow.name == name))
        return None if row is None else (agent_record(row), row.password_hash)

    async def update_agent(
        self,
        agent_id: int,
        *,
        password_hash: str | None = None,
        active: bool | None = None,
        role: str | None = None,
        language: str | None = None,
    ) -> None:
        values: dict[str, object] = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if active is not None:
            values["active"] = active
        if role is not None:
            values["role"] = role
        if language is not None:
            values["language"] = language
        if values:
            await self.session.execute(
                update(AgentRow)
                .where(AgentRow.id == agent_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    async def create_session(
        self, *, agent_id: int, token_hash: str, csrf: str, now: datetime, expires_at: datetime
    ) -> None:
        self.session.add(
            SessionRow(
                agent_id=agent_id,
                token_hash=token_hash,
                csrf=csrf,
                created_at=now,
                expires_at=expires_at,
            )
        )
        await self.session.flush()

    async def session_agent(self, token_hash: str, now: datetime) -> tuple[Agent, str] | None:
        """The active agent a live session belongs to, and the session's CSRF token."""
        found = (
            await self.session.execute(
                select(AgentRow, SessionRow.csrf)
                .join(SessionRow, SessionRow.agent_id == AgentRow.id)
                .where(
                    SessionRow.token_hash == token_hash,
                    SessionRow.expires_at > now,
                    AgentRow.active.is_(True),
                )
            )
        ).first()
        if found is None:
            return None
        return agent_record(found[0]), str(found[1])

    async def delete_session(self, token_hash: str) -> None:
        await self.session.execute(delete(SessionRow).where(SessionRow.token_hash == token_hash))

    async def delete_expired_sessions(self, now: datetime) -> None:
        await self.session.execute(delete(SessionRow).where(SessionRow.expires_at <= now))

    async def delete_sessions(self, agent_id: int) -> None:
        await self.session.execute(delete(SessionRow).where(SessionRow.agent_id == agent_id))
