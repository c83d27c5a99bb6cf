"""A contact's data on request (PIPL / GDPR): attributes, export, erasure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from router.conversations import ConversationStatus
from router.desk import transitions
from router.desk.reading import DeskReading, require_admin
from router.errors import (
    ContactNotFound,
)
from router.storage import (
    Agent,
)
from router.storage.privacy_queries import Erased

__all__ = ["ContactActions"]

logger = logging.getLogger(__name__)


class ContactActions(DeskReading):
    async def set_contact_attributes(
        self, contact_id: int, agent: Agent, attributes: Mapping[str, object]
    ) -> None:
        """What the shop says of a contact (a VIP flag, a tier), for routing rules."""
        async with self._units.write() as w:
            if not await w.repo.set_attributes(contact_id, attributes):
                raise ContactNotFound(f"no contact {contact_id}")
            await w.audit(agent, "set_attributes", "contact", contact_id, keys=sorted(attributes))

    async def contact_conversations(self, contact_id: int, agent: Agent) -> list[int]:
        """The ids of a contact's conversations, for an export; admins only."""
        require_admin(agent, "export a contact's data")
        async with self._units.write() as w:
            if await w.repo.contact(contact_id) is None:
                raise ContactNotFound(f"no contact {contact_id}")
            ids = [c.id for c in await w.repo.contact_conversations(contact_id)]
            await w.audit(agent, "export_contact", "contact", contact_id, conversations=len(ids))
        return sorted(ids)

    async def erase_contact(self, contact_id: int, agent: Agent, attachments: Path) -> Erased:
        """Erase a contact's data on request: what they wrote and were sent, their files
        (under ``attachments``), names and addresses. The conversation and message rows
        stay, blank, so the reports keep their counts; open conversations are closed
        (their promises end). Admins only; the erasure is in the audit log."""
        require_admin(agent, "erase a contact's data")
        async with self._units.write() as w:
            if await w.repo.contact(contact_id) is None:
                raise ContactNotFound(f"no contact {contact_id}")
            for conversation in await w.repo.contact_conversations(contact_id):
                if conversation.status is not ConversationStatus.RESOLVED:
                    # One way to close: the resolve transition, without a word to a
                    # customer whose data is going.
                    await transitions.resolve(
                        w, conversation, self._aftercare, owner=None, quietly=True
                    )
            erased = await w.repo.erase_contact(contact_id, w.now)
            await w.audit(
                agent,
                "erase_contact",
                "contact",
                contact_id,
                conversations=erased.conversations,
                messages=erased.messages,
                files=len(erased.attachment_refs),
            )
        # The files go once the rows that named them are committed.
        await asyncio.to_thread(_delete_files, attachments, erased.attachment_refs)
        logger.info(
            "contact %s erased by %s: %d conversations, %d messages, %d files",
            contact_id,
            agent.name,
            erased.conversations,
            erased.messages,
            len(erased.attachment_refs),
        )
        return erased


def _delete_files(folder: Path, refs: list[str]) -> None:
    root = folder.resolve()
    for ref in refs:
        path = (root / ref).resolve()
        if path.is_relative_to(root) and path.is_file():
            path.unlink()
