"""A contact's data erased on request (PIPL / GDPR): what they wrote and what was
written to them goes, the rows stay, so that the reports' counts do not change."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, case, cast, delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from router.storage.models import (
    ContactRow,
    ConversationRow,
    GapQuestionRow,
    HandoffRow,
    IdentityRow,
    MessageRow,
    OutboxRow,
    ScheduledRow,
    WebChatFrameRow,
)

__all__ = ["Erased", "PrivacyQueries"]

# What a message keeps of its extras: the bot's reason and the choice a customer
# pressed (entry ids), which the reports count; nothing the customer wrote or is.
_KEPT_EXTRAS = ("reason", "choice")


class Erased(NamedTuple):
    conversations: int
    messages: int
    attachment_refs: list[str]  # the files to delete once the erasure has committed


class PrivacyQueries:
    session: AsyncSession

    async def erase_contact(self, contact_id: int, now: datetime) -> Erased:
        """Erase everything personal of ``contact_id`` in its conversations; the
        conversation and message rows stay (blank), open conversations are closed."""
        c = ConversationRow
        conversations = (
            await self.session.execute(
                select(c.id, c.channel, c.thread_key).where(c.contact_id == contact_id)
            )
        ).all()
        ids = [row.id for row in conversations]
        # Web chat replays what a visitor was shown from their frames, by visitor id
        # (the conversation's thread).
        visitors = [row.thread_key for row in conversations if row.channel == "webchat"]
        if visitors:
            await self.session.execute(
                delete(WebChatFrameRow).where(WebChatFrameRow.visitor_id.in_(visitors))
            )
        messages = 0
        refs: list[str] = []
        if ids:
            messages, refs = await self._erase_messages(ids, now)
            await self._erase_around(ids, now)
            await self._erase_conversations(ids, now)
        await self.session.execute(delete(IdentityRow).where(IdentityRow.contact_id == contact_id))
        await self.session.execute(
            update(ContactRow)
            .where(ContactRow.id == contact_id)
            .values(display_name=None, email=None, attributes=None)
            .execution_options(synchronize_session=False)
        )
        return Erased(len(ids), messages, refs)

    async def _erase_messages(self, ids: list[int], now: datetime) -> tuple[int, list[str]]:
        """Blank the messages of conversations ``ids``; how many, and their files' refs."""
        m = MessageRow
        rows = (
            await self.session.execute(
                select(m.id, m.extras, m.attachments).where(m.conversation_id.in_(ids))
            )
        ).all()
        refs: list[str] = []
        for row in rows:
            for attachment in row.attachments or ():
                ref = attachment.get("ref") if isinstance(attachment, dict) else None
                if isinstance(ref, str) and ref and not ref.startswith("refused:"):
                    refs.append(ref)
        await self.session.execute(
            update(m)
            .where(m.conversation_id.in_(ids))
            .values(
                text="", html=None, external_id=None, attachments=None, extras=None, edited_at=now
            )
            .execution_options(synchronize_session=False)
        )
        # Only the few messages with something the reports count keep that much.
        for row in rows:
            kept: dict[str, Any] = {
                key: row.extras[key]
                for key in _KEPT_EXTRAS
                if isinstance(row.extras, dict) and key in row.extras
            }
            if kept:
                await self.session.execute(
                    update(m)
                    .where(m.id == row.id)
                    .values(extras=kept)
                    .execution_options(synchronize_session=False)
                )
        return len(rows), refs

    async def _erase_around(self, ids: list[int], now: datetime) -> None:
        """What else of conversations ``ids`` holds their words: handoffs' context, the
        outbox, unanswered questions, scheduled follow-ups."""
        await self.session.execute(
            update(HandoffRow)
            .where(HandoffRow.conversation_id.in_(ids))
            .values(context={})
            .execution_options(synchronize_session=False)
        )
        # A sent reply stays sent; what had not gone out will not.
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.conversation_id.in_(ids))
            .values(
                text="",
                recipient="erased",
                thread=None,
                subject=None,
                attachments=None,
                last_error=None,
                status=case((OutboxRow.sent_at.is_not(None), "sent"), else_="dead"),
            )
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            delete(GapQuestionRow).where(GapQuestionRow.conversation_id.in_(ids))
        )
        await self.session.execute(
            update(ScheduledRow)
            .where(ScheduledRow.conversation_id.in_(ids))
            .values(text=None)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            update(ScheduledRow)
            .where(ScheduledRow.conversation_id.in_(ids), ScheduledRow.status == "pending")
            .values(status="cancelled", done_at=now)
            .execution_options(synchronize_session=False)
        )

    async def _erase_conversations(self, ids: list[int], now: datetime) -> None:
        c = ConversationRow
        await self.session.execute(
            update(c)
            .where(c.id.in_(ids))
            .values(
                thread_key=literal("erased:") + cast(c.id, String),
                reply_recipient="erased",
                reply_thread=None,
                subject=None,
                topic=None,
                csat_comment=None,
                status="resolved",
                resolved_at=func.coalesce(c.resolved_at, now),
                sla_due_at=None,
                waiting_since=None,
            )
            .execution_options(synchronize_session=False)
        )
