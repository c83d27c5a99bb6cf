"""Contacts, their identities on each channel, and agents."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import SenderIdentity
from router.storage.mapping import (
    agent_record,
    contact_record,
)
from router.storage.models import (
    AgentRow,
    ContactRow,
    IdentityRow,
)
from router.storage.records import (
    Agent,
    Contact,
    Identity,
)

__all__ = ["ContactQueries"]


class ContactQueries:
    session: AsyncSession

    # -- contacts and identities -------------------------------------------------

    async def contact_for_identity(self, channel: str, external_id: str) -> int | None:
        return await self.session.scalar(
            select(IdentityRow.contact_id).where(
                IdentityRow.channel == channel, IdentityRow.external_id == external_id
            )
        )

    async def contact_for(self, sender: SenderIdentity, now: datetime) -> int:
        """The contact of this identity, made (with its identity) if it is new."""
        known = await self.contact_for_identity(sender.channel, sender.external_id)
        return known or await self.create_contact(
            channel=sender.channel,
            external_id=sender.external_id,
            display_name=sender.display_name,
            email=sender.email,
            now=now,
        )

    async def create_contact(
        self,
        *,
        channel: str,
        external_id: str,
        display_name: str | None,
        email: str | None,
        now: datetime,
    ) -> int:
        """The contact for a new identity: the one with the same email address if the
        channel knows it (a customer who emailed last week and writes through a bridge
        today is one contact), else a new one."""
        email = email.strip().lower() if email else None
        contact_id = None
        if email:
            contact_id = await self.session.scalar(
                select(ContactRow.id)
                .where(ContactRow.email == email)
                .order_by(ContactRow.id)
                .limit(1)
            )
        if contact_id is None:
            contact = ContactRow(display_name=display_name, email=email, created_at=now)
            self.session.add(contact)
            await self.session.flush()
            contact_id = contact.id
        self.session.add(
            IdentityRow(
                contact_id=contact_id,
                channel=channel,
                external_id=external_id,
                display_name=display_name,
                created_at=now,
            )
        )
        await self.session.flush()
        return contact_id

    async def contact(self, contact_id: int) -> Contact | None:
        row = await self.session.get(ContactRow, contact_id)
        return None if row is None else contact_record(row)

    async def set_attributes(self, contact_id: int, attributes: Mapping[str, Any]) -> bool:
        """Replace what the shop says of the contact; False if there is no such contact."""
        result = await self.session.execute(
            update(ContactRow)
            .where(ContactRow.id == contact_id)
            .values(attributes=dict(attributes) or None)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def merge_attributes(self, contact_id: int, attributes: Mapping[str, Any]) -> None:
        """Add to (or change) what the shop says of the contact."""
        row = await self.session.get(ContactRow, contact_id)
        if row is not None:
            merged = {**(row.attributes or {}), **attributes}
            if merged != row.attributes:
                row.attributes = merged

    async def identities(self, contact_id: int) -> list[Identity]:
        rows = await self.session.scalars(
            select(IdentityRow).where(IdentityRow.contact_id == contact_id).order_by(IdentityRow.id)
        )
        return [
            Identity(
                channel=r.channel,
                external_id=r.external_id,
                display_name=r.display_name,
                unreachable_at=r.unreachable_at,
            )
            for r in rows
        ]

    async def mark_unreachable(self, channel: str, external_id: str, now: datetime) -> None:
        await self.session.execute(
            update(IdentityRow)
            .where(IdentityRow.channel == channel, IdentityRow.external_id == external_id)
            .values(unreachable_at=now)
            .execution_options(synchronize_session=False)
        )

    # -- agents ------------------------------------------------------------------

    async def add_agent(
        self,
        *,
        name: str,
        token_hash: str,
        now: datetime,
        password_hash: str | None = None,
        role: str = "agent",
    ) -> Agent:
        row = AgentRow(
            name=name,
            token_hash=token_hash,
            active=True,
            created_at=now,
            password_hash=password_hash,
            role=role,
        )
        self.session.add(row)
        await self.session.flush()
        return agent_record(row)

    async def set_agent_email(self, agent_id: int, email: str | None) -> None:
        await self.session.execute(
            update(AgentRow)
            .where(AgentRow.id == agent_id)
            .values(email=email)
            .execution_options(synchronize_session=False)
        )

    async def agent_by_token_hash(self, token_hash: str) -> Agent | None:
        row = await self.session.scalar(select(AgentRow).where(AgentRow.token_hash == token_hash))
        return None if row is None else agent_record(row)

    async def agent_by_name(self, name: str) -> Agent | None:
        row = await self.session.scalar(select(AgentRow).where(AgentRow.name == name))
        return None if row is None else agent_record(row)

    async def agents(self) -> list[Agent]:
        rows = await self.session.scalars(select(AgentRow).order_by(AgentRow.id))
        return [agent_record(r) for r in rows]

    async def agent_names(self, ids: Iterable[int]) -> dict[int, str]:
        wanted = set(ids)
        if not wanted:
            return {}
        rows = await self.session.execute(
            select(AgentRow.id, AgentRow.name).where(AgentRow.id.in_(wanted))
        )
        return {int(i): str(n) for i, n in rows.all()}
