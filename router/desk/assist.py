"""Agent assist: past conversations like the one an agent has open, by meaning.

When a customer reaches a person, the desk has often answered the same thing
before. ``Assist.similar`` finds up to three conversations people resolved (not
rated low, not erased, ones the agent may see) whose question means what this
customer asked, each with the reply that resolved it, ready for the reply box:
the greeting taken off and written in this customer's script.

Questions are compared by multilingual-e5-small (``knowledge.meaning``), their
vectors kept on disk so a question is embedded once; all of it runs in a worker
thread. Where the model cannot load, questions are compared by their words
(rapidfuzz), and the answer says so. Only cases in the customer's language are
offered: the reply is meant to be sent to them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rapidfuzz import fuzz

from bot.signals import says_nothing
from knowledge import Normaliser, chinese_script, detect_language, to_script
from knowledge.meaning import TextEncoder, load_e5
from router.conversations import AuthorKind, Direction
from router.reporting.kb_gaps import without_greeting
from router.storage import Database, Message
from router.storage.case_queries import PastCase
from router.storage.inbox_queries import SeenBy

if TYPE_CHECKING:
    from router.desk.actions import HumanDesk
    from router.storage import Agent

__all__ = ["Assist", "Similar", "the_question"]

logger = logging.getLogger(__name__)

# Cosine of e5 vectors (folded text, ``query:`` prefix) a past case's question must
# reach to be offered, by the customer's language. Chosen on bench/data/demo-dev.csv
# (the questions as each other's past cases; bench/assist_bench.py): in Chinese at
# 0.89 one of the three offered is about the same thing for 76% of the questions
# while 7 of 29 out-of-scope ones get an offer; English reads less sharply with this
# model, so it needs more.
MIN_SIMILARITY = {"zh": 0.89, "en": 0.87}
# Without the model: rapidfuzz token-set ratio of the folded texts (0-100).
MIN_WORD_SIMILARITY = 70.0
LIMIT = 3
# How far back, and how many of the latest resolved cases, are compared.
WINDOW = timedelta(days=365)
POOL = 1000


@dataclass(frozen=True, slots=True)
class Similar:
    """One past case offered to the agent."""

    conversation_id: int
    question: str
    reply: str  # as the agent sent it
    suggestion: str  # for the reply box: no greeting, in this customer's script
    similarity: float  # 0-1
    resolved_at: datetime
    csat_score: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "question": self.question,
            "reply": self.reply,
            "suggestion": self.suggestion,
            "similarity": round(self.similarity, 3),
            "resolved_at": self.resolved_at.isoformat(),
            "csat_score": self.csat_score,
        }


# The customer's last few messages before the handoff are the question.
_QUESTION_MESSAGES = 3
_QUESTION_CHARS = 600


def question_of(texts: Sequence[str]) -> str:
    """What a customer asked, from their messages up to the handoff: the last few that
    say something of the matter (not "hello", "thanks" or a bare "转人工")."""
    meant = [t.strip() for t in texts if not says_nothing(t)] or list(texts[:1])
    return "\n".join(meant[-_QUESTION_MESSAGES:])[-_QUESTION_CHARS:]


def the_question(messages: Sequence[Message], handed_off_at: datetime | None) -> str:
    """What brought the customer to a person: their last few messages up to the handoff
    (all of them when it was not handed off)."""
    texts = [
        m.text
        for m in messages
        if m.direction is Direction.IN
        and m.author_kind is AuthorKind.CUSTOMER
        and m.text.strip()
        and (handed_off_at is None or m.created_at <= handed_off_at)
    ]
    if not texts:
        texts = [
            m.text for m in messages if m.author_kind is AuthorKind.CUSTOMER and m.text.strip()
        ][:1]
    return question_of(texts) if texts else ""


class Assist:
    """Past cases like a conversation, for the agent who has it open."""

    def __init__(
        self,
        db: Database,
        *,
        encoder: Callable[[], TextEncoder | None],
        clock: Callable[[], datetime],
        limit: int = LIMIT,
        pool: int = POOL,
    ) -> None:
        """``encoder`` is called once, in the worker thread, the first time it is needed
        (loading the model takes a moment); None from it: compare by words."""
        self._db = db
        self._load_encoder = encoder
        self._encoder: TextEncoder | None = None
        self._loaded = False
        self._load_lock = threading.Lock()
        self._clock = clock
        self._limit = limit
        self._pool = pool
        self._normaliser = Normaliser()

    @classmethod
    def offline(cls, db: Database, *, cache: Path | None, **kwargs: Any) -> Assist:
        """With multilingual-e5-small, its vectors kept under ``cache``."""
        return cls(db, encoder=lambda: load_e5(cache), **kwargs)

    @property
    def reads_meaning(self) -> bool | None:
        """Whether cases are compared by meaning; None until the model was first asked for."""
        return (self._encoder is not None) if self._loaded else None

    async def for_agent(
        self, desk: HumanDesk, conversation_id: int, agent: Agent
    ) -> dict[str, Any]:
        """What the inbox and the agent API show: the question read from the
        conversation (which ``agent`` must be allowed to see) and the cases like it."""
        conversation, messages = await desk.transcript(conversation_id, agent)
        question = the_question(messages, conversation.handed_off_at)
        found = await self.similar(conversation_id, question, seen_by=desk.seen_by(agent))
        return {
            "question": question,
            "reads_meaning": self.reads_meaning,
            "similar": [s.as_json() for s in found],
        }

    async def similar(
        self, conversation_id: int, question: str, *, seen_by: SeenBy | None
    ) -> list[Similar]:
        """Up to ``limit`` past cases whose question means what ``question`` asks."""
        if not question.strip():
            return []
        async with self._db.read() as repo:
            cases = await repo.past_cases(
                since=self._clock() - WINDOW,
                limit=self._pool,
                exclude=conversation_id,
                seen_by=seen_by,
            )
        language = detect_language(question)
        asked = [(c, question_of(c.asked)) for c in cases]
        asked = [(c, q) for c, q in asked if detect_language(q) == language]
        if not asked:
            return []
        return await asyncio.to_thread(self._rank, question, language, asked)

    def _encoder_now(self) -> TextEncoder | None:
        with self._load_lock:
            if not self._loaded:
                self._encoder = self._load_encoder()
                self._loaded = True
                if self._encoder is None:
                    logger.warning("agent assist compares past cases by their words only")
        return self._encoder

    def _rank(
        self, question: str, language: str, cases: list[tuple[PastCase, str]]
    ) -> list[Similar]:
        """``cases`` with their questions, the closest first, those above the floor."""
        encoder = self._encoder_now()
        if encoder is not None:
            fold = self._normaliser.fold
            vectors = encoder.encode_questions([fold(q) for _, q in cases])
            scores = [float(s) for s in vectors @ encoder.encode([fold(question)])[0]]
            floor = MIN_SIMILARITY.get(language, max(MIN_SIMILARITY.values()))
        else:
            # The normaliser's content tokens (each Chinese character one) as words.
            words = self._normaliser
            scores = [fuzz.token_set_ratio(words(question), words(q)) / 100 for _, q in cases]
            floor = MIN_WORD_SIMILARITY / 100
        script = chinese_script(question)
        offered: list[Similar] = []
        seen: set[str] = set()
        for index in np.argsort(-np.asarray(scores), kind="stable"):
            (case, asked), score = cases[int(index)], scores[int(index)]
            if score < floor or len(offered) == self._limit:
                break
            suggestion = to_script(without_greeting(case.reply), script)
            if not suggestion or suggestion in seen:  # the same answer once
                continue
            seen.add(suggestion)
            offered.append(
                Similar(
                    conversation_id=case.conversation_id,
                    question=asked,
                    reply=case.reply,
                    suggestion=suggestion,
                    similarity=score,
                    resolved_at=case.resolved_at,
                    csat_score=case.csat_score,
                )
            )
        return offered
