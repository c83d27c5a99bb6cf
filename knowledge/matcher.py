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

__all__ = ["Candidate", "Matcher"]


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
        sort = process.cdist([query], self._normalised, scorer=fuzz.token_sort_ratio)[0]
        overlap = process.cdist([query], self._normalised, scorer=fuzz.token_set_ratio)[0]
        chars = process.cdist([self.normaliser.fold(text)], self._folded, scorer=fuzz.ratio)[0]
        scores = (
            sort.astype(np.float64) + overlap.astype(np.float64) + 2.0 * chars.astype(np.float64)
        ) / 4.0
        best = np.maximum.reduceat(scores, self._starts)
        ranked = np.argsort(-best, kind="stable")[:limit]
        candidates = []
        for i in ranked:
            end = self._starts[i + 1] if i + 1 < len(self._starts) else len(scores)
            q = int(self._starts[i] + np.argmax(scores[self._starts[i] : end]))
            candidates.append(
                Candidate(
                    entry=self._entries[i],
                    score=round(float(best[i]), 1),
                    question=self._questions[q],
                    components=(
                        ("order", float(sort[q])),
                        ("words", float(overlap[q])),
                        ("characters", float(chars[q])),
                    ),
                )
            )
        return candidates
