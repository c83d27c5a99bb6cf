"""What customers ask that the knowledge base cannot answer, offline.

The gap questions of a period: those handed to people because the bot was not sure
(or did not understand), those a customer asked again after a bot answer (it did
not help), those whose conversation was rated low, and those behind a clarification
nobody picked. They are grouped with the knowledge base's own normaliser (width,
case and script folded: simplified = traditional; synonyms applied) into clusters of
the same question (average-linkage clustering of rapidfuzz token-set similarities,
scipy), ranked by volume and trend. Each cluster shows example questions, the entry
the bot came closest to, and what agents actually answered: the makings of a new
entry, or of new phrasings for an existing one.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from knowledge import Matcher, Normaliser
from router.storage import Database, ReportFilter
from router.storage.gap_queries import ScannedGap, Turn

__all__ = [
    "GapCluster",
    "GapQuestion",
    "cluster_questions",
    "find_gaps",
    "keep_gaps_current",
    "scan_gaps",
    "scanned_questions",
    "without_greeting",
]

# Handoffs that say the bot did not know (not: the customer asked for a person).
UNSURE = {
    "low_confidence",
    "below_answer_threshold",
    "no_match",
    "too_many_misses",
    "close_candidates",
    "reply_after_answer",
}
# Questions at least this similar (0-100, average linkage) are one cluster; chosen on
# tests/data/kb_gaps.yaml.
SIMILARITY = 55.0
MAX_FORMS = 3000
# A conversation is scanned once it has been quiet this long (sooner, it would be
# scanned again at every message); until then the report reads it itself.
SETTLE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class GapQuestion:
    text: str
    conversation_id: int
    source: str  # unsure, asked_again, rated_low, clarify_unpicked
    at: datetime
    closest: str | None = None  # the entry the bot came closest to


@dataclass
class GapCluster:
    questions: list[GapQuestion]
    closest: str | None = None
    answers: list[str] = field(default_factory=list)
    trend: int = 0

    @property
    def size(self) -> int:
        return len(self.questions)

    def as_json(self, matcher: Matcher | None = None) -> dict[str, Any]:
        entry = matcher.entry(self.closest) if matcher is not None and self.closest else None
        return {
            "size": self.size,
            "trend": self.trend,
            "examples": [q.text for q in self.questions[:10]],
            "sources": dict(Counter(q.source for q in self.questions)),
            "conversations": sorted({q.conversation_id for q in self.questions}),
            "closest_entry": self.closest,
            "closest_question": entry.questions[0] if entry and entry.questions else None,
            "agent_answers": self.answers[:5],
        }


_GREETING = re.compile(
    r"^\s*(您好|你好|亲|hi|hello|hey|dear|good (morning|afternoon|evening))\b[^\n]{0,40}$",
    re.IGNORECASE,
)


_INTRODUCTION = re.compile(
    r"^(我是[^，,。\n]{1,10}[，,。]|(i'm|i am|this is|my name is) [^,.\n]{1,25}[,.])\s*",
    re.IGNORECASE,
)


def without_greeting(text: str) -> str:
    """An agent's reply without a first line that only greets ("您好，我是李伟")."""
    lines = text.strip().splitlines()
    while len(lines) > 1 and (_GREETING.match(lines[0]) or not lines[0].strip()):
        lines = lines[1:]
    if len(lines) == 1:
        first, _, rest = lines[0].partition("，") if "，" in lines[0] else lines[0].partition(", ")
        if _GREETING.match(first) and len(rest) > 10:
            lines = [rest.strip()]
    text = "\n".join(lines).strip()
    introduced = _INTRODUCTION.match(text)
    return (
        text[introduced.end() :].strip()
        if introduced and len(text) > introduced.end() + 10
        else text
    )


def cluster_questions(
    texts: Sequence[str], normaliser: Normaliser, *, similarity: float = SIMILARITY
) -> list[int]:
    """A cluster label for each text; equal labels: the same question."""
    if not texts:
        return []
    # A text asked many times is normalised once.
    form_of: dict[str, str] = {}
    for text in texts:
        if text not in form_of:
            form_of[text] = " ".join(_features(normaliser, text))
    forms = [form_of[text] for text in texts]
    # The same matching form is the same question: cluster each form once, the most
    # asked first, at most MAX_FORMS of them (pairwise work grows with the square).
    counts = Counter(forms)
    unique = [form for form, _ in counts.most_common(MAX_FORMS)]
    label_of: dict[str, int] = {}
    if len(unique) == 1:
        label_of[unique[0]] = 0
    else:
        scores = process.cdist(unique, unique, scorer=fuzz.token_set_ratio, workers=1)
        distance = 100.0 - np.asarray(scores, dtype=np.float64)
        np.fill_diagonal(distance, 0.0)
        distance = np.maximum(distance, distance.T)
        tree = linkage(squareform(distance, checks=False), method="average")
        labels = fcluster(tree, t=100.0 - similarity, criterion="distance")
        label_of = {form: int(label) - 1 for form, label in zip(unique, labels, strict=True)}
    rare = len(set(label_of.values()))
    for form in counts:
        if form not in label_of:  # beyond MAX_FORMS: asked once or twice, on its own
            label_of[form] = rare
            rare += 1
    return [label_of[form] for form in forms]


def _features(normaliser: Normaliser, text: str) -> list[str]:
    """Content tokens, and for Chinese the character pairs too (words, roughly)."""
    tokens = normaliser.tokens(text)
    pairs = [
        a + b
        for a, b in pairwise(tokens)
        if len(a) == 1 and len(b) == 1 and not a.isascii() and not b.isascii()
    ]
    return tokens + pairs


async def find_gaps(
    db: Database,
    matcher: Matcher,
    where: ReportFilter,
    *,
    low_rating: int = 2,
    limit: int = 50,
) -> list[GapCluster]:
    """The clusters of gap questions in ``where``, biggest first.

    What the gap scan kept is read as it is; conversations it has not seen since they
    last changed are read message by message here, and so are those rated low (a
    rating does not change the conversation: the scan does not know of it)."""

    read = db.reading
    # Independent reads side by side, each its own read unit (as the reports do).
    (rows, handoffs, kept), (turns, agents, candidates) = await asyncio.gather(
        asyncio.gather(
            read(lambda repo: repo.report_rows(where)),
            read(lambda repo: repo.report_handoffs(where)),
            read(lambda repo: repo.scanned_gaps(where)),
        ),
        asyncio.gather(
            read(lambda repo: repo.unkept_turns(where, low_rating=low_rating)),
            read(lambda repo: repo.first_agent_replies(where)),
            read(lambda repo: repo.handoff_candidates(where)),
        ),
    )
    rated_low = {r.id for r in rows if r.csat_score is not None and r.csat_score <= low_rating}
    unsure = {cid for cid, reason in handoffs if reason in UNSURE}
    questions: list[GapQuestion] = []
    answers: dict[int, str] = {}
    for conversation_id in (r.id for r in rows):
        if conversation_id in turns:
            found = _gap_questions(
                conversation_id,
                turns[conversation_id],
                unsure=conversation_id in unsure,
                rated_low=conversation_id in rated_low,
                closest=candidates.get(conversation_id),
            )
        else:
            found = _questions(conversation_id, kept.get(conversation_id, ()), candidates)
        if found and conversation_id in agents:
            answers[conversation_id] = without_greeting(agents[conversation_id])
        questions.extend(found)
    if not questions:
        return []
    labels = cluster_questions([q.text for q in questions], matcher.normaliser)
    grouped: dict[int, list[GapQuestion]] = defaultdict(list)
    for label, question in zip(labels, questions, strict=True):
        grouped[label].append(question)
    middle = where.start + (where.end - where.start) / 2
    clusters = []
    for members in grouped.values():
        members.sort(key=lambda q: q.at, reverse=True)
        closest = Counter(q.closest for q in members if q.closest).most_common(1)
        said = Counter(answers[q.conversation_id] for q in members if q.conversation_id in answers)
        clusters.append(
            GapCluster(
                questions=members,
                closest=closest[0][0] if closest else _closest(matcher, members[0].text),
                answers=[a for a, _ in said.most_common()],
                trend=sum(1 if q.at >= middle else -1 for q in members),
            )
        )
    clusters.sort(key=lambda c: (c.size, c.trend), reverse=True)
    return clusters[:limit]


async def scan_gaps(
    db: Database, *, now: datetime, settle: timedelta = SETTLE, limit: int = 100
) -> int:
    """Find and keep the gap questions of up to ``limit`` conversations that changed
    since their last scan and have been quiet for ``settle``; how many were scanned.

    Run by the scheduler on every node: a conversation's scan is kept by a conditional
    UPDATE, so two nodes scanning it keep one, and one that changed meanwhile is
    scanned again at the next sweep."""
    async with db.read() as repo:
        due = await repo.gap_scan_due(now - settle, limit)
        ids = [d.conversation_id for d in due]
        turns = await repo.turns_of(ids) if due else {}
        unsure = await repo.handed_off_for(ids, sorted(UNSURE)) if due else set()
    if not due:
        return 0
    async with db.write() as repo:
        for item in due:
            found = scanned_questions(
                turns.get(item.conversation_id, ()), unsure=item.conversation_id in unsure
            )
            await repo.store_gap_scan(item, found)
    return len(due)


async def keep_gaps_current(
    db: Database, clock: Callable[[], datetime], *, seconds: float = 2.0, batch: int = 100
) -> int:
    """Gap scans in small batches (short write units) for up to ``seconds``: after an
    upgrade or a busy day the backlog goes down by thousands of conversations a sweep
    without holding the database's writer for long. How many were scanned."""
    deadline = time.monotonic() + seconds
    scanned = 0
    while True:
        found = await scan_gaps(db, now=clock(), limit=batch)
        scanned += found
        if found < batch or time.monotonic() >= deadline:
            return scanned


def _closest(matcher: Matcher, text: str) -> str | None:
    found = matcher.match(text, limit=1)
    return found[0].entry_id if found else None


def scanned_questions(turns: Sequence[Turn], *, unsure: bool = False) -> list[ScannedGap]:
    """What a conversation says the bot did not answer: the question it handed to
    people unsure (if ``unsure``), a question asked again right after the bot's answer,
    one left at a clarification nobody picked. Each text once."""
    found: list[ScannedGap] = []
    customer = [t for t in turns if not t.choice]
    if unsure and customer:
        # The message the handoff notice answered; else the customer's last.
        _keep(found, "unsure", next((t for t in turns if t.acknowledged), customer[-1]))
    for turn, after in zip(turns, [*turns[1:], None], strict=False):
        if turn.choice:
            continue
        if turn.clarified and (after is None or not after.choice):
            _keep(found, "clarify_unpicked", turn)
        if (
            turn.answered
            and after is not None
            and not after.choice
            and _same_question(turn.text, after.text)
        ):
            _keep(found, "asked_again", after)
    return found


def _keep(found: list[ScannedGap], source: str, turn: Turn) -> None:
    text = turn.text.strip()[:300]
    if text and all(q.text != text for q in found):
        found.append(ScannedGap(source, text, datetime.fromtimestamp(turn.at, UTC)))


def _gap_questions(
    conversation_id: int,
    turns: Sequence[Turn],
    *,
    unsure: bool,
    rated_low: bool,
    closest: str | None,
) -> list[GapQuestion]:
    found = scanned_questions(turns, unsure=unsure)
    customer = [t for t in turns if not t.choice]
    if rated_low and customer:
        _keep(found, "rated_low", customer[0])
    return _questions(conversation_id, found, {conversation_id: closest} if closest else {})


def _questions(
    conversation_id: int, found: Sequence[ScannedGap], closest: dict[int, str]
) -> list[GapQuestion]:
    return [
        GapQuestion(
            text=q.text,
            conversation_id=conversation_id,
            source=q.source,
            at=q.at,
            closest=closest.get(conversation_id),
        )
        for q in found
    ]


def _same_question(first: str, second: str) -> bool:
    return fuzz.token_set_ratio(first.casefold(), second.casefold(), score_cutoff=60) >= 60
