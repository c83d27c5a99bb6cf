"""Fuzzy FAQ matching with rapidfuzz.

Every question of every entry is normalised once at build time; a query is
scored against all of them in one ``process.cdist`` call and each entry keeps
the score of its best question.
"""

from __future__ import annotations

from collections.abc import Sequence
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

    @property
    def entry_id(self) -> str:
        return self.entry.id


class Matcher:
    """Scores a query against every question of a knowledge base."""

    def __init__(
        self, entries: Sequence[FaqEntry], *, normaliser: Normaliser | None = None
    ) -> None:
        self.normaliser = normaliser or Normaliser()
        self._entries = list(entries)
        self._by_id = {entry.id: entry for entry in self._entries}
        self._questions: list[str] = []
        self._normalised: list[str] = []
        self._owner: list[int] = []
        for index, entry in enumerate(self._entries):
            for question in entry.questions:
                self._questions.append(question)
                self._normalised.append(self.normaliser(question))
                self._owner.append(index)
        self._owner_array = np.asarray(self._owner, dtype=np.intp)

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
        # Order-aware and order-free similarity, averaged: the first rewards the same
        # phrasing, the second the same content words in another order.
        sort = process.cdist([query], self._normalised, scorer=fuzz.token_sort_ratio)[0]
        overlap = process.cdist([query], self._normalised, scorer=fuzz.token_set_ratio)[0]
        scores = (sort.astype(np.float64) + overlap.astype(np.float64)) / 2.0
        best = np.full(len(self._entries), -1.0)
        best_question = np.zeros(len(self._entries), dtype=np.intp)
        order = np.argsort(-scores, kind="stable")
        for q in order:
            owner = self._owner_array[q]
            if best[owner] < 0:
                best[owner] = scores[q]
                best_question[owner] = q
        ranked = np.argsort(-best, kind="stable")[:limit]
        return [
            Candidate(
                entry=self._entries[i],
                score=round(float(best[i]), 1),
                question=self._questions[best_question[i]],
            )
            for i in ranked
            if best[i] >= 0
        ]
