"""After the service: the satisfaction survey and follow-ups (回访), as transitions.

When a conversation a person answered is resolved, the customer is asked for a
rating in their own channel (choices 1–5: stars in web chat, buttons in Telegram,
a digit or a signed link by email, choices in a bridge's payload), once, never by
auto-generated mail. Their answer is recorded on the conversation, which stays
resolved; a low one tells the supervisor. A follow-up is scheduled work
(``scheduled`` rows, claimed once even with several nodes), sent only in the
policy's business hours; a reply to it reopens the conversation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot import BotTexts
from channels.base import Choice
from knowledge import chinese_script
from router.conversations import AuthorKind, ConversationStatus, Direction
from router.delivery.events import AgentAlert, MessageAdded
from router.desk import transitions
from router.desk.handoff import Handoffs
from router.desk.sla import SlaPolicies
from router.desk.work import Work
from router.metrics import SURVEYS
from router.storage import Conversation, Message, Scheduled

__all__ = ["Aftercare", "Rating", "parse_rating"]

logger = logging.getLogger(__name__)

RATING_CHOICE = "csat:"
_DIGITS = {"１": 1, "２": 2, "３": 3, "４": 4, "５": 5, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
_RATING = re.compile(
    r"^\s*(?P<n>[1-5１-５]|[一二三四五](?=\s*[分星颗顆]))"
    r"(?:\s*(?:/|／|out of|分之)?\s*[5５五](?![0-9]))?"
    r"\s*(?:分|星|颗星|顆星|stars?|points?)?(?![0-9.,])(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_STARS = re.compile(r"^\s*(?P<stars>[★⭐]{1,5})(?![★⭐])(?P<rest>.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Rating:
    score: int
    comment: str | None


def parse_rating(text: str, choice: str | None = None) -> Rating | None:
    """A 1–5 rating from a survey answer: a choice ``csat:N``, or a text starting with
    the number (``4``, ``4/5``, ``５分``, ``四星``, ``★★★★``) and maybe a comment."""
    if choice and choice.startswith(RATING_CHOICE):
        value = choice.removeprefix(RATING_CHOICE)
        if value in {"1", "2", "3", "4", "5"}:
            return Rating(int(value), None)
        return None
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(">")]
    body = "\n".join(lines).strip()
    match = _RATING.match(body)
    if match is not None:
        n = match.group("n")
        score = int(n) if n.isascii() else _DIGITS[n]
        rest = match.group("rest")
    else:
        stars = _STARS.match(body)
        if stars is None:
            return None
        score, rest = len(stars.group("stars")), stars.group("rest")
    comment = rest.strip(" \t\r\n-–—:：,，.。!！") or None
    return Rating(score, comment[:2000] if comment else None)


class Aftercare:
    """Surveys and follow-ups on resolved conversations; reminders for agents."""

    def __init__(
        self,
        *,
        handoffs: Handoffs,
        texts: BotTexts,
        secret: bytes,
        public_url: str = "",
    ) -> None:
        self.handoffs = handoffs
        self.promises = handoffs.promises
        self._texts = texts
        self._secret = secret
        self._public_url = public_url.rstrip("/")

    @property
    def policies(self) -> SlaPolicies:
        """The promises in force (an admin may change them while the service runs)."""
        return self.promises.policies

    # -- the signed survey link --------------------------------------------------------

    def survey_token(self, conversation_id: int) -> str:
        mac = hmac.new(self._secret, f"survey:{conversation_id}".encode(), hashlib.sha256)
        digest = base64.urlsafe_b64encode(mac.digest()[:18]).decode().rstrip("=")
        return f"{conversation_id}.{digest}"

    def survey_conversation(self, token: str) -> int | None:
        """The conversation a survey link is for; None for a forged or broken link."""
        head, _, _ = token.partition(".")
        if not head.isascii() or not head.isdigit() or len(head) > 12:
            return None
        expected = self.survey_token(int(head))
        return int(head) if hmac.compare_digest(expected, token) else None

    def survey_url(self, conversation_id: int) -> str | None:
        if not self._public_url:
            return None
        return f"{self._public_url}/survey/{self.survey_token(conversation_id)}"

    # -- on resolve ------------------------------------------------------------------

    async def resolved(self, w: Work, conversation: Conversation) -> None:
        """What the customer hears when their conversation is resolved (the survey, or a
        plain goodbye), and the follow-up it schedules."""
        await self.promises.resolved(w, conversation)
        messages = await w.repo.messages(conversation.id)
        last_in = next((m for m in reversed(messages) if m.direction is Direction.IN), None)
        language = conversation.language or "en"
        script = chinese_script(last_in.text) if last_in else None
        automated = last_in is not None and bool(last_in.extras.get("automated"))
        if self._wants_survey(conversation, messages, automated):
            await self._ask(w, conversation, language, script)
        elif not automated:
            await w.say(
                conversation,
                BotTexts.in_script(BotTexts.pick(self._texts.resolved, language), language, script),
                author=AuthorKind.SYSTEM,
                kind="system",
            )
        policy = self.promises.policy_of(conversation)
        if policy.follow_up is not None and not automated:
            await w.repo.cancel_pending(conversation.id, "follow_up", w.now)
            due = w.now + policy.follow_up
            await w.repo.schedule(
                conversation_id=conversation.id,
                kind="follow_up",
                due_at=due,
                text=None,
                agent_id=conversation.assignee_id,
                created_by=None,
                now=w.now,
            )

    def _wants_survey(
        self, conversation: Conversation, messages: list[Message], automated: bool
    ) -> bool:
        if not self.policies.survey or automated:
            return False
        if conversation.survey_asked_at is not None:
            return False  # once per conversation, even if it was reopened
        first = next((m for m in messages if m.direction is not Direction.NOTE), None)
        if first is None or first.direction is not Direction.IN:
            return False  # an agent started it
        return any(
            m.author_kind is AuthorKind.AGENT and m.direction is Direction.OUT for m in messages
        )

    async def _ask(
        self, w: Work, conversation: Conversation, language: str, script: str | None
    ) -> None:
        texts = self._texts
        zh = language == "zh"
        parts = [BotTexts.pick(texts.survey, language)]
        if conversation.reply_to.channel == "email":
            parts.append(BotTexts.pick(texts.survey_by_mail, language))
            url = self.survey_url(conversation.id)
            if url:
                parts.append(BotTexts.pick(texts.survey_link, language).format(url=url))
        labels = texts.survey_labels[0 if zh else 1]
        choices = [
            Choice(
                f"{RATING_CHOICE}{n}", BotTexts.in_script(f"{'★' * n} {label}", language, script)
            )
            for n, label in enumerate(labels, 1)
        ]
        await w.say(
            conversation,
            BotTexts.in_script("\n\n".join(parts), language, script),
            author=AuthorKind.SYSTEM,
            kind="survey",
            choices=choices,
        )
        await w.repo.set_promise_fields(conversation.id, survey_asked_at=w.now)
        SURVEYS.labels("sent", "").inc()

    # -- answers ---------------------------------------------------------------------

    def answers(
        self,
        resolved: Conversation,
        text: str,
        *,
        choice: str | None,
        comment: bool,
        now: datetime,
    ) -> str | None:
        """Is a customer's message to ``resolved`` (which asked them something) an answer:
        ``rating``, ``comment`` (on a rating just given, from the chat's survey form) or
        ``follow_up``? None: it starts something new."""
        since = now - self.policies.answer_window
        asked = resolved.survey_asked_at
        if asked is not None and asked >= since:
            if resolved.csat_score is None and parse_rating(text, choice) is not None:
                return "rating"
            if comment and resolved.csat_score is not None and resolved.csat_comment is None:
                return "comment"
        if resolved.follow_up_at is not None and resolved.follow_up_at >= since:
            return "follow_up"
        return None

    async def take_answer(
        self, w: Work, resolved: Conversation, message: Message, kind: str, choice: str | None
    ) -> None:
        """Act on an answer (``answers``) stored in ``resolved``: a rating is recorded and
        the conversation stays resolved; an answer to a follow-up reopens it for people."""
        script = chinese_script(message.text)
        language = resolved.language or "en"
        if kind == "comment":
            await w.repo.add_rating_comment(resolved.id, message.text.strip()[:2000])
            return
        if kind == "rating":
            rating = parse_rating(message.text, choice)
            assert rating is not None
            await self.rate(w, resolved, rating, via=resolved.reply_to.channel)
            await w.say(
                resolved,
                BotTexts.in_script(
                    BotTexts.pick(self._texts.rating_thanks, language), language, script
                ),
                author=AuthorKind.SYSTEM,
                kind="system",
            )
            return
        if kind == "follow_up":
            reopened = await self.handoffs.hand_off(
                w,
                resolved,
                reason="follow_up_reply",
                language=resolved.language,
                trigger=message,
                notify=True,
                from_status=ConversationStatus.RESOLVED,
            )
            if reopened:
                await w.repo.set_promise_fields(resolved.id, follow_up_at=None)
                logger.info("conversation %s reopened by an answer to its follow-up", resolved.id)

    async def rate(self, w: Work, conversation: Conversation, rating: Rating, *, via: str) -> bool:
        """Record a rating once; a low one tells the supervisor."""
        if not await transitions.rate(w, conversation, score=rating.score, comment=rating.comment):
            return False
        logger.info("conversation %s rated %s via %s", conversation.id, rating.score, via)
        SURVEYS.labels("answered", str(rating.score)).inc()
        if rating.score <= self.policies.low_rating:
            w.publish(
                AgentAlert(
                    agent_id=None,
                    conversation_id=conversation.id,
                    kind="low_rating",
                    text=f"Conversation #{conversation.id} was rated {rating.score}/5"
                    + (f": {rating.comment}" if rating.comment else ""),
                )
            )
        return True

    # -- scheduled work --------------------------------------------------------------

    async def run(self, w: Work, items: Sequence[Scheduled]) -> list[str]:
        """Do due items in this unit of work, each ``done``, ``postponed`` (a follow-up
        outside business hours) or ``skipped`` (reopened meanwhile, gone, or done by
        another node: the conditional UPDATE that claims them says which)."""
        conversations = await w.repo.conversations_by_id([i.conversation_id for i in items])
        outcome: dict[int, str] = {}
        claim: list[Scheduled] = []
        for item in items:
            conversation = conversations.get(item.conversation_id)
            if conversation is None:
                await w.repo.finish_scheduled(item.id, now=w.now, status="cancelled")
                outcome[item.id] = "skipped"
            elif (
                item.kind == "follow_up" and conversation.status is not ConversationStatus.RESOLVED
            ):
                # Reopened meanwhile: people are on it, nothing to ask.
                await w.repo.finish_scheduled(item.id, now=w.now, status="cancelled")
                outcome[item.id] = "skipped"
            elif item.kind == "follow_up" and not self._open_now(conversation, w.now):
                opens = self.promises.policy_of(conversation).calendar.next_open(w.now)
                if opens is not None:
                    await w.repo.postpone_scheduled(item.id, opens)
                outcome[item.id] = "postponed"
            else:
                claim.append(item)
        claimed = await w.repo.finish_many([i.id for i in claim], now=w.now)
        mine = [i for i in claim if i.id in claimed]
        follow_ups = [i for i in mine if i.kind == "follow_up"]
        last_in = await w.repo.last_messages(
            [i.conversation_id for i in follow_ups], direction=Direction.IN
        )
        await w.say_many(
            [
                (
                    conversations[i.conversation_id],
                    self._follow_up_text(conversations[i.conversation_id], i, last_in),
                )
                for i in follow_ups
            ],
            author=AuthorKind.SYSTEM,
            kind="follow_up",
        )
        for item in mine:
            if item.kind != "follow_up":
                await self._remind(w, conversations[item.conversation_id], item)
        await w.repo.mark_followed_up([i.conversation_id for i in follow_ups], w.now)
        return [outcome.get(i.id, "done" if i.id in claimed else "skipped") for i in items]

    def _open_now(self, conversation: Conversation, now: datetime) -> bool:
        return self.promises.policy_of(conversation).calendar.is_open(now)

    async def _remind(self, w: Work, conversation: Conversation, item: Scheduled) -> None:
        w.publish(
            AgentAlert(
                agent_id=item.agent_id,
                conversation_id=conversation.id,
                kind="reminder",
                text=item.text or f"Reminder: conversation #{conversation.id}",
            )
        )
        note = await w.repo.add_message(
            conversation_id=conversation.id,
            direction=Direction.NOTE,
            author_kind=AuthorKind.SYSTEM,
            author_agent_id=None,
            kind="note",
            text=f"Reminder due: {item.text or 'follow up on this conversation'}",
            channel=conversation.reply_to.channel,
            now=w.now,
        )
        w.publish(MessageAdded(conversation.id, note.id, "system", "note"))

    def _follow_up_text(
        self, conversation: Conversation, item: Scheduled, last_in: Mapping[int, Message]
    ) -> str:
        """The follow-up in the customer's language and script (an agent's own text as
        they wrote it)."""
        language = conversation.language or "en"
        customer = last_in.get(conversation.id)
        script = chinese_script(customer.text) if customer else None
        text = item.text or BotTexts.pick(self._texts.follow_up, language).format(
            ticket=conversation.id
        )
        return BotTexts.in_script(text, language, script)
