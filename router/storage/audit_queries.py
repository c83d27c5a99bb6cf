"""The audit log: written in the same transaction as the change it records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from router.storage.models import AuditRow

__all__ = ["AuditEntry", "AuditQueries"]


class AuditEntry(NamedTuple):
    id: int
    at: datetime
    agent_id: int | None
    actor: str
    action: str
    target: str
    target_id: int | None
    detail: Mapping[str, Any]
    origin: str | None


class AuditQueries:
    session: AsyncSession

    async def add_audit(
        self,
        *,
        at: datetime,
        agent_id: int | None,
        actor: str,
        action: str,
        target: str,
        target_id: int | None,
        detail: Mapping[str, Any] | None,
        origin: str | None,
    ) -> None:
        self.session.add(
            AuditRow(
                at=at,
                agent_id=agent_id,
                actor=actor[:200],
                action=action[:64],
                target=target[:32],
                target_id=target_id,
                detail=dict(detail) if detail else None,
                origin=origin[:200] if origin else None,
            )
        )
        await self.session.flush()

    async def audit_entries(
        self,
        *,
        limit: int = 100,
        before_id: int | None = None,
        action: str | None = None,
        agent_id: int | None = None,
        target: tuple[str, int] | None = None,
    ) -> list[AuditEntry]:
        """The newest entries first (``before_id`` pages back), optionally of one action,
        one agent or one target."""
        a = AuditRow
        query = select(a).order_by(a.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(a.id < before_id)
        if action:
            query = query.where(a.action == action)
        if agent_id is not None:
            query = query.where(a.agent_id == agent_id)
        if target is not None:
            query = query.where(a.target == target[0], a.target_id == target[1])
        return [
            AuditEntry(
                r.id,
                r.at,
                r.agent_id,
                r.actor,
                r.action,
                r.target,
                r.target_id,
                r.detail or {},
                r.origin,
            )
            for r in await self.session.scalars(query)
        ]
