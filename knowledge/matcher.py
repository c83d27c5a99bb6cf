"""Fuzzy FAQ matching with rapidfuzz.

Every question of every entry is normalised once at build time; a query is
scored against all of them in one ``process.cdist`` call and each entry keeps
the score of its best question.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from knowledge.entries import FaqEntry
from knowledge.normalise import Normaliser
from knowledge.prefilter import Shortlist

__all__ = ["SHORTLIST_ABOVE", "SHORTLIST_SIZE", "Candidate", "Matcher"]

# Above this many questions, only a shortlist found through an inverted index is scored.
SHORTLIST_ABOVE = 3000
SHORTLIST_SIZE = 300


@dataclass(frozen=True, slots=True)
class Candidate:
    """An entry and how well the query matched it (0–100), with the question that matched best."""

    entry: FaqEntry
    score: float
    question: str
    # The parts the score is made of, for explaining a decision.
    components: tuple[tuple[str, float], ...] = ()

    @property
    def entry_id(self) -> str:
        return self.entry.id


class Matcher:
    """Scores a query against every question of a knowledge base."""

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        *,
        normaliser: Normaliser | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Index ``entries``; ``progress(done, total)`` is told every 1,000 entries."""
        self.normaliser = normaliser or Normaliser()
        self._entries = list(entries)
        self._by_id = {entry.id: entry for entry in self._entries}
        self._questions: list[str] = []
        self._normalised: list[str] = []
        self._folded: list[str] = []
        starts: list[int] = []
        for done, entry in enumerate(self._entries, start=1):
            if progress is not None and (done % 1000 == 0 or done == len(self._entries)):
                progress(done, len(self._entries))
            starts.append(len(self._questions))
            for question in entry.questions:
                self._questions.append(question)
                self._normalised.append(self.normaliser(question))
                self._folded.append(self.normaliser.fold(question))
        # Each entry's questions are contiguous: entry i owns [starts[i], starts[i + 1]).
        self._starts = np.asarray(starts, dtype=np.intp)
        self._owner = np.repeat(
            np.arange(len(starts), dtype=np.intp),
            np.diff(np.r_[self._starts, len(self._questions)]),
        )
        self._shortlist = (
            Shortlist(self._folded, self._normalised)
            if len(self._questions) > SHORTLIST_ABOVE
            else None
        )

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> list[FaqEntry]:
        return list(self._entries)

    def entry(self, entry_id: str) -> FaqEntry | None:
        return self._by_id.get(entry_id)

    def match(self, text: str, *, limit: int = 5) -> list[Candidate]:
        """The best ``limit`` entries for ``text``, best first."""
        query = self.normaliser(text)
        if not query or not self._normalised:
            return []
        # Three views of similarity: the same content words in the same order, the same
        # content words in any order, and the same characters as typed (after folding
        # case, width and script), which catches what normalisation throws away. The
        # last counts twice: measured on SMP2017 and the demo dev set, see bench/kb_bench.py.
        folded = self.normaliser.fold(text)
        if self._shortlist is None:
            rows = np.arange(len(self._questions))
            normalised, folded_questions = self._normalised, self._folded
        else:
            rows = np.sort(self._shortlist.top(folded, query, SHORTLIST_SIZE))
            if rows.size == 0:
                return []
            normalised = [self._normalised[r] for r in rows]
            folded_questions = [self._folded[r] for r in rows]
        sort = process.cdist([query], normalised, scorer=fuzz.token_sort_ratio)[0]
        overlap = process.cdist([query], normalised, scorer=fuzz.token_set_ratio)[0]
        chars = process.cdist([folded], folded_questions, scorer=fuzz.ratio)[0]
        scores = (
            sort.astype(np.float64) + overlap.astype(np.float64) + 2.0 * chars.astype(np.float64)
        ) / 4.0
        # The best question of each entry among those scored (rows are sorted, so each
        # entry's rows are contiguous).
        owners = self._owner[rows]
        firsts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
        best = np.maximum.reduceat(scores, firsts)
        ranked = np.argsort(-best, kind="stable")[:limit]
        candidates = []
        for k in ranked:
            end = firsts[k + 1] if k + 1 < len(firsts) else len(scores)
            local = int(firsts[k] + np.argmax(scores[firsts[k] : end]))
            q = int(rows[local])
            candidates.append(
                Candidate(
                    entry=self._entries[int(owners[local])],
                    score=round(float(best[k]), 1),
                    question=self._questions[q],
                    components=(
                        ("order", float(sort[local])),
                        ("words", float(overlap[local])),
                        ("characters", float(chars[local])),
                    ),
                )
            )
        return candidates
