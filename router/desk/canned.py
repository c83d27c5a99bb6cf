"""Saved replies and macros: an agent's own, a team's, or everyone's.

An agent finds them from the reply box by a few words of the title or the text
(whatever the case, width or script). Placeholders are filled for the conversation
at hand: ``{customer_name}``, ``{ticket}``, ``{agent_name}``, ``{promised_time}``
(or 客户, 工单号, 客服, 承诺时间 in braces). A macro also tags, sets the priority
or resolves the conversation when its reply is sent (``HumanDesk.reply``).

Who may change one: its owner (their own), a member of its team or an admin (a
team's), an admin (everyone's). Everyone may use their own, everyone's and their
teams' (admins: every team's).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from rapidfuzz import fuzz

from knowledge.normalise import Normaliser
from router import audit
from router.conversations import Priority
from router.desk.routing import Routing
from router.errors import CannedNotFound, NotAllowed, TeamNotFound
from router.storage import Agent, Contact, Conversation, Database, Repositories
from router.storage.canned_queries import CannedReply

__all__ = ["Canned", "CannedDraft", "CannedNotFound", "fill"]

logger = logging.getLogger(__name__)

_fold = Normaliser().fold
# A reply matches a search at or above this partial similarity (0-100) of the folded
# words to its title and text: a word typed with a typo still finds it.
MIN_SEARCH_SCORE = 75.0

_PLACEHOLDER = re.compile(
    r"\{(customer_name|ticket|agent_name|promised_time|客户|工单号|客服|承诺时间)\}"
)
_ALIASES = {
    "客户": "customer_name",
    "工单号": "ticket",
    "客服": "agent_name",
    "承诺时间": "promised_time",
}


@dataclass(frozen=True, slots=True)
class CannedDraft:
    """What an agent wrote for a saved reply. ``scope``: mine, team or everyone."""

    title: str
    text: str
    scope: str = "mine"
    team: str | None = None
    tags: tuple[str, ...] = ()
    priority: Priority | None = None
    resolve: bool = False

    def __post_init__(self) -> None:
        if not self.title.strip() or len(self.title) > 100:
            raise ValueError("a title of 1 to 100 characters is required")
        if not self.text.strip() or len(self.text) > 20_000:
            raise ValueError("a text of 1 to 20000 characters is required")
        if self.scope not in ("mine", "team", "everyone"):
            raise ValueError("scope is mine, team or everyone")
        if (self.scope == "team") != (self.team is not None):
            raise ValueError("a team's reply names its team, and only a team's does")
        if len(self.tags) > 20 or any(not t.strip() or len(t) > 40 for t in self.tags):
            raise ValueError("up to 20 tags of 1 to 40 characters")


def fill(
    text: str,
    *,
    conversation: Conversation,
    contact: Contact | None,
    agent: Agent,
    zone: tzinfo,
) -> str:
    """``text`` with its placeholders filled for ``conversation``; a placeholder with
    nothing to fill (no name known, no promise running) becomes empty."""
    due = conversation.sla_due_at
    values = {
        "customer_name": (contact.display_name or "") if contact else "",
        "ticket": f"#{conversation.id}",
        "agent_name": agent.name,
        "promised_time": due.astimezone(zone).strftime("%Y-%m-%d %H:%M") if due else "",
    }
    return _PLACEHOLDER.sub(lambda m: values[_ALIASES.get(m.group(1), m.group(1))], text)


def search(replies: Sequence[CannedReply], query: str, *, limit: int = 8) -> list[CannedReply]:
    """The replies matching ``query``, best first (title matches before text ones)."""
    words = _fold(query).strip()
    if not words:
        return list(replies)[:limit]
    scored = []
    for reply in replies:
        title = fuzz.partial_ratio(words, _fold(reply.title))
        body = fuzz.partial_ratio(words, _fold(reply.text))
        best = max(title + 1, body)  # a title match wins a tie
        if best >= MIN_SEARCH_SCORE:
            scored.append((-best, reply.title, reply.id, reply))
    return [reply for *_, reply in sorted(scored)[:limit]]


class Canned:
    """Saved replies: who may use and change which, and the changes themselves."""

    def __init__(
        self, *, db: Database, routing: Callable[[], Routing], clock: Callable[[], datetime]
    ) -> None:
        self._db = db
        self._routing = routing
        self._clock = clock

    def _teams(self, agent: Agent) -> list[str] | None:
        return None if agent.is_admin else self._routing().teams_of(agent.name)

    async def usable(self, agent: Agent) -> list[CannedReply]:
        async with self._db.read() as repo:
            return await repo.canned_replies(agent_id=agent.id, teams=self._teams(agent))

    async def found(
        self, agent: Agent, query: str, *, conversation_id: int | None, zone: tzinfo
    ) -> list[tuple[CannedReply, str | None]]:
        """The replies ``agent`` may use that match ``query``, each with its text filled
        for ``conversation_id`` (None when no conversation is given or it is unknown)."""
        replies = search(await self.usable(agent), query)
        conversation: Conversation | None = None
        contact: Contact | None = None
        if conversation_id is not None and replies:
            async with self._db.read() as repo:
                conversation = await repo.conversation(conversation_id)
                if conversation is not None:
                    contact = await repo.contact(conversation.contact_id)
        return [
            (
                reply,
                fill(reply.text, conversation=conversation, contact=contact, agent=agent, zone=zone)
                if conversation is not None
                else None,
            )
            for reply in replies
        ]

    async def get(self, agent: Agent, reply_id: int) -> CannedReply:
        """A reply ``agent`` may use; CannedNotFound otherwise (theirs to know about or not)."""
        async with self._db.read() as repo:
            reply = await repo.canned_reply(reply_id)
        if reply is None or not self._may_use(agent, reply):
            raise CannedNotFound(f"no saved reply {reply_id}")
        return reply

    def may_change(self, agent: Agent, reply: CannedReply) -> bool:
        if reply.owner_id is not None:
            return reply.owner_id == agent.id
        if agent.is_admin:
            return True
        return reply.team is not None and reply.team in self._routing().teams_of(agent.name)

    def _may_use(self, agent: Agent, reply: CannedReply) -> bool:
        if reply.owner_id is not None:
            return reply.owner_id == agent.id
        teams = self._teams(agent)
        return reply.team is None or teams is None or reply.team in teams

    def _check_scope(self, agent: Agent, draft: CannedDraft) -> None:
        if draft.scope == "everyone" and not agent.is_admin:
            raise NotAllowed("only admins save replies for everyone")
        if draft.scope == "team":
            routing = self._routing()
            if draft.team not in routing.teams:
                raise TeamNotFound(f"no team {draft.team!r}")
            if not agent.is_admin and draft.team not in routing.teams_of(agent.name):
                raise NotAllowed(f"only members of {draft.team} and admins save its replies")

    async def create(self, agent: Agent, draft: CannedDraft) -> CannedReply:
        self._check_scope(agent, draft)
        now = self._clock()
        async with self._db.write() as repo:
            reply = await repo.add_canned_reply(
                title=draft.title.strip(),
                text=draft.text,
                owner_id=agent.id if draft.scope == "mine" else None,
                team=draft.team,
                tags=[t.strip() for t in draft.tags],
                priority=draft.priority,
                resolve=draft.resolve,
                now=now,
            )
            if draft.scope != "mine":
                await _audit(repo, now, agent, "add_canned", reply)
        logger.info("saved reply %s (%s) added by %s", reply.id, draft.scope, agent.name)
        return reply

    async def change(self, agent: Agent, reply_id: int, draft: CannedDraft) -> CannedReply:
        """New title, text and actions (the scope stays what it was)."""
        reply = await self.get(agent, reply_id)
        if not self.may_change(agent, reply):
            raise NotAllowed(f"saved reply {reply_id} is not yours to change")
        now = self._clock()
        async with self._db.write() as repo:
            await repo.update_canned_reply(
                reply_id,
                title=draft.title.strip(),
                text=draft.text,
                tags=[t.strip() for t in draft.tags],
                priority=draft.priority,
                resolve=draft.resolve,
                now=now,
            )
            changed = await repo.canned_reply(reply_id)
            assert changed is not None
            if reply.owner_id is None:
                await _audit(repo, now, agent, "change_canned", changed)
        return changed

    async def delete(self, agent: Agent, reply_id: int) -> None:
        reply = await self.get(agent, reply_id)
        if not self.may_change(agent, reply):
            raise NotAllowed(f"saved reply {reply_id} is not yours to delete")
        now = self._clock()
        async with self._db.write() as repo:
            await repo.delete_canned_reply(reply_id)
            if reply.owner_id is None:
                await _audit(repo, now, agent, "delete_canned", reply)


async def _audit(
    repo: Repositories, now: datetime, agent: Agent, action: str, reply: CannedReply
) -> None:
    await audit.record(
        repo,
        now,
        agent,
        action,
        "canned_reply",
        reply.id,
        title=reply.title,
        team=reply.team,
    )
