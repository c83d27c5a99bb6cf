"""Fuzzy FAQ matching with rapidfuzz, and an optional semantic re-ranker.

Every question of every entry is normalised once at build time; a query is
scored against all of them in one ``process.cdist`` call per scorer and each
entry keeps the score of its best question (the *lexical* branch). With an
:class:`~knowledge.semantic.Encoder`, a query written without Chinese characters
is also compared by meaning (the *semantic* branch): the cosine similarity of
its embedding to the entry's two closest questions, blended with the lexical
score and weighed by a small model trained on the knowledge base's own questions.
A query written in Chinese is weighed the same way by a model of its own that reads
character 1–3 grams (the *chinese* branch): characters alone do not tell 退货 from
退款 as well as a model that has seen which grams each entry's questions share.

Each branch's raw score is then calibrated on the knowledge base itself
(:mod:`knowledge.calibration`), so a candidate's score is the chance, in
percent, that it is the right answer — one threshold fits any knowledge base.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz, process
from scipy import sparse

from knowledge.calibration import EntryModel
from knowledge.entries import FaqEntry
from knowledge.fitting import MatcherFitting
from knowledge.meaning import TextEncoder
from knowledge.normalise import Normaliser, detect_language
from knowledge.scoring import (
    BLEND_CALIBRATION,
    CHINESE_MEANING_SCALE,
    CHINESE_MIN_LENGTH,
    CHINESE_MODEL_WEIGHT,
    COVERAGE_LEAST,
    COVERAGE_WEIGHT,
    DEFAULT_CALIBRATION,
    LEXICAL_SHARE,
    MODEL_WEIGHT,
    NO_VECTOR,
    SEMANTIC_MIN_WORDS,
    SHORTLIST_ABOVE,
    SHORTLIST_SIZE,
    Candidate,
    Floats,
    Scored,
    sorted_tokens,
)
from knowledge.semantic import Encoder

__all__ = [
    "BLEND_CALIBRATION",
    "DEFAULT_CALIBRATION",
    "SHORTLIST_ABOVE",
    "SHORTLIST_SIZE",
    "Candidate",
    "Matcher",
]


class Matcher(MatcherFitting):
    """Scores a query against every question of a knowledge base."""

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        *,
        normaliser: Normaliser | None = None,
        progress: Callable[[int, int], None] | None = None,
        encoder: Encoder | None = None,
        chinese_encoder: TextEncoder | None = None,
        calibrate: bool = True,
    ) -> None:
        """Index ``entries``; ``progress(done, total)`` is told every 1,000 entries.

        ``encoder`` switches the semantic branch on (English); ``chinese_encoder`` lets
        the Chinese branch read meaning too; ``calibrate`` fits the score curves on the
        knowledge base's own questions (else the defaults are used).
        """
        self.normaliser = normaliser or Normaliser()
        self._index(entries, progress)
        self._read_english(encoder)
        self._read_chinese(chinese_encoder)
        self.calibration = {branch: self._default(branch) for branch in DEFAULT_CALIBRATION}
        fitted, fitted_chinese = None, None
        if calibrate and self._questions:
            fitted, fitted_chinese = self._calibrate()
        if self._uses_model:
            self._model = self._fit_model(self._readable, start=fitted)
        if self._chinese_worded is not None:
            self._chinese_model = self._fit_chinese(self._chinese, start=fitted_chinese)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> list[FaqEntry]:
        return list(self._entries)

    @property
    def semantic(self) -> bool:
        return self._vectors is not None

    @property
    def reads_meaning(self) -> dict[str, bool]:
        """Which scripts are read by meaning as well as by characters and words."""
        return {"en": self._vectors is not None, "zh": self._meanings is not None}

    def entry(self, entry_id: str) -> FaqEntry | None:
        return self._by_id.get(entry_id)

    def match(self, text: str, *, limit: int = 5) -> list[Candidate]:
        """The best ``limit`` entries for ``text``, best first."""
        return self._match(text, limit, None)

    def match_many(self, texts: Sequence[str], *, limit: int = 5) -> list[list[Candidate]]:
        """:meth:`match` for each of ``texts``; each encoder reads them in one go."""
        vectors: list[NDArray[np.float32] | None] = [None] * len(texts)
        meanings: list[NDArray[np.float32] | None] = [None] * len(texts)
        if self._encoder is not None and self._vectors is not None:
            vectors = list(self._encoder.encode(texts))
        if self._chinese_encoder is not None:
            zh = [i for i, text in enumerate(texts) if detect_language(text) == "zh"]
            read = self._chinese_encoder.encode([self.normaliser.fold(texts[i]) for i in zh])
            for i, meaning in zip(zh, read, strict=True):
                meanings[i] = meaning * CHINESE_MEANING_SCALE
        return [
            self._match(text, limit, vector, meaning)
            for text, vector, meaning in zip(texts, vectors, meanings, strict=True)
        ]

    def _match(
        self,
        text: str,
        limit: int,
        vector: NDArray[np.float32] | None,
        meaning: NDArray[np.float32] | None = None,
    ) -> list[Candidate]:
        scored = self._score(
            text, model=self._model, chinese=self._chinese_model, vector=vector, zh_vector=meaning
        )
        if scored is None:
            return []
        raw = scored.raw
        finite = np.flatnonzero(np.isfinite(raw))
        if scored.closeness is not None:
            # Meaning weighs in the confidence, so it orders the candidates too.
            every = self.calibration[scored.branch](raw[finite], scored.closeness[finite])
            order = np.argsort(-every, kind="stable")[:limit]
            ranked, calibrated = finite[order], every[order]
        else:
            ranked = finite[np.argsort(-raw[finite], kind="stable")[:limit]]
            calibrated = self.calibration[scored.branch](raw[ranked])
        return [
            self._candidate(scored, int(entry), float(score))
            for entry, score in zip(ranked, calibrated, strict=True)
        ]

    def _candidate(self, scored: Scored, entry: int, score: float) -> Candidate:
        owners = self._owner[scored.rows]
        mine = np.flatnonzero(owners == entry)
        lexical_row = int(mine[np.argmax(scored.lexical[mine])]) if mine.size else -1
        parts: list[tuple[str, float]] = [
            (name, float(values[lexical_row]) if lexical_row >= 0 else 0.0)
            for name, values in zip(("order", "words", "characters"), scored.parts, strict=True)
        ]
        if scored.cosine is not None and scored.meaning is not None:
            start = int(self._starts[entry])
            end = (
                int(self._starts[entry + 1])
                if entry + 1 < len(self._starts)
                else len(self._questions)
            )
            question = start + int(np.argmax(scored.cosine[start:end]))
            parts.append(("meaning", round(100.0 * float(scored.meaning[entry]), 1)))
            if scored.chance is not None:
                parts.append(("model", round(100.0 * float(scored.chance[entry]), 1)))
        else:
            question = int(scored.rows[lexical_row])
            if scored.chance is not None:
                parts.append(("model", round(100.0 * float(scored.chance[entry]), 1)))
            if scored.covered is not None:
                parts.append(("coverage", round(100.0 * float(scored.covered[entry]), 1)))
            if scored.closeness is not None:
                parts.append(("meaning", round(100.0 * float(scored.closeness[entry]), 1)))
        parts.append((scored.branch, round(float(scored.raw[entry]), 1)))
        return Candidate(
            entry=self._entries[entry],
            score=round(score, 1),
            question=self._questions[question],
            components=tuple(parts),
        )

    def _score(
        self,
        text: str,
        *,
        model: EntryModel | None,
        chinese: EntryModel | None = None,
        vector: NDArray[np.float32] | None = None,
        wording: sparse.csr_matrix | None = None,
        chinese_wording: sparse.csr_matrix | None = None,
        zh_vector: NDArray[np.float32] | None = None,
        leave_out_row: int | None = None,
        leave_out_entry: int | None = None,
    ) -> Scored | None:
        """Raw scores of every entry for ``text``; the leave-out arguments serve calibration."""
        query, folded = self.normaliser.both(text)
        if not query or not self._normalised:
            return None
        scored = self._lexical(query, folded, leave_out_row, leave_out_entry)
        written_in_chinese = detect_language(text) == "zh"
        if (
            chinese is not None
            and self._chinese_wording is not None
            and written_in_chinese
            and len(query.replace(" ", "")) >= CHINESE_MIN_LENGTH
        ):
            self._by_chinese(
                scored, folded, chinese, chinese_wording, zh_vector, leave_out_row, leave_out_entry
            )
            return scored if scored.rows.size else None
        if (
            self._vectors is None
            or self._encoder is None
            or not self._readable.any()
            or written_in_chinese
            or len(query.split()) < SEMANTIC_MIN_WORDS
        ):
            return scored if scored.rows.size else None
        return self._by_meaning(
            scored, text, folded, model, vector, wording, leave_out_row, leave_out_entry
        )

    def _lexical(
        self, query: str, folded: str, leave_out_row: int | None, leave_out_entry: int | None
    ) -> Scored:
        """Every entry's best question by characters and words (the lexical branch)."""
        # Three views of similarity: the same content words in the same order, the same
        # content words in any order, and the same characters as typed (after folding
        # case, width and script), which catches what normalisation throws away. The
        # last counts twice: measured on SMP2017 and the demo dev set, see bench/kb_bench.py.
        if self._shortlist is None:
            rows = self._all_rows
            normalised, ordered, folded_questions = self._normalised, self._sorted, self._folded
        else:
            rows = np.sort(self._shortlist.top(folded, query, SHORTLIST_SIZE))
            normalised = [self._normalised[r] for r in rows]
            ordered = [self._sorted[r] for r in rows]
            folded_questions = [self._folded[r] for r in rows]
        # token_sort_ratio is the ratio of the sorted tokens: the questions' are sorted
        # once at build time instead of on every call (the same scores, less work).
        sort = process.cdist([sorted_tokens(query)], ordered, scorer=fuzz.ratio)[0]
        overlap = process.cdist([query], normalised, scorer=fuzz.token_set_ratio)[0]
        chars = process.cdist([folded], folded_questions, scorer=fuzz.ratio)[0]
        parts = tuple(np.asarray(p, dtype=np.float64) for p in (sort, overlap, chars))
        lexical = (parts[0] + parts[1] + 2.0 * parts[2]) / 4.0
        if leave_out_row is not None:
            lexical[rows == leave_out_row] = -np.inf
        if leave_out_entry is not None:
            lexical[self._owner[rows] == leave_out_entry] = -np.inf
        per_entry = np.full(len(self._entries), -np.inf)
        np.maximum.at(per_entry, self._owner[rows], lexical)
        return Scored("lexical", per_entry, rows, lexical, (parts[0], parts[1], parts[2]))

    def _by_chinese(
        self,
        scored: Scored,
        folded: str,
        chinese: EntryModel,
        chinese_wording: sparse.csr_matrix | None,
        zh_vector: NDArray[np.float32] | None,
        leave_out_row: int | None,
        leave_out_entry: int | None,
    ) -> None:
        """A Chinese query: the lexical score weighed by the Chinese entry model and the
        share of its content words each entry covers (the chinese branch)."""
        assert self._chinese_wording is not None
        per_entry = scored.raw
        if chinese_wording is None:
            chinese_wording = self._chinese_wording.transform([folded])
        if self._chinese_encoder is None:
            zh_vector = NO_VECTOR
        elif zh_vector is None:
            zh_vector = self._chinese_encoder.encode([folded])[0] * CHINESE_MEANING_SCALE
        likely = chinese.probabilities(zh_vector, chinese_wording, without=leave_out_entry)
        assert self._coverage is not None  # built with the Chinese wording
        covered = self._coverage(folded, leave_out_row=leave_out_row)
        scored.raw = np.full(len(self._entries), -np.inf)
        seen = np.isfinite(per_entry)
        scored.raw[seen] = (
            per_entry[seen]
            * likely[seen] ** CHINESE_MODEL_WEIGHT
            * np.maximum(covered[seen], COVERAGE_LEAST) ** COVERAGE_WEIGHT
        )
        scored.branch, scored.chance, scored.plain = "chinese", likely, per_entry
        scored.covered = covered
        if self._meanings is not None and zh_vector.size:
            scored.closeness = self._closeness(zh_vector, leave_out_row, leave_out_entry)

    def _by_meaning(
        self,
        scored: Scored,
        text: str,
        folded: str,
        model: EntryModel | None,
        vector: NDArray[np.float32] | None,
        wording: sparse.csr_matrix | None,
        leave_out_row: int | None,
        leave_out_entry: int | None,
    ) -> Scored:
        """An English query of a few words: blended with its cosine by meaning to each
        entry's two closest questions, weighed by the entry model (the semantic branch)."""
        assert self._encoder is not None and self._vectors is not None
        per_entry = scored.raw
        if vector is None:
            vector = self._encoder.encode([text])[0]
        cosine = np.where(self._readable, self._vectors @ vector, -np.inf)
        if leave_out_row is not None:
            cosine[leave_out_row] = -np.inf
        if leave_out_entry is not None:
            cosine[self._owner == leave_out_entry] = -np.inf
        # The mean of each entry's two closest questions: one stray phrasing counts less.
        first = np.maximum.reduceat(cosine, self._starts)
        rest = np.where(cosine >= first[self._owner], -np.inf, cosine)
        second = np.maximum.reduceat(rest, self._starts)
        second = np.where(np.isfinite(second), second, first)
        meaning = (first.astype(np.float64) + second) / 2.0
        known = np.isfinite(meaning)
        lexical_part = np.where(np.isfinite(per_entry), per_entry, 0.0) / 100.0
        blend = np.zeros(len(self._entries))
        blend[known] = np.clip(
            LEXICAL_SHARE * lexical_part[known] + (1.0 - LEXICAL_SHARE) * meaning[known], 0.0, None
        )
        chance = None
        if model is not None:
            if wording is None and self._wording is not None:
                wording = self._wording.transform([folded])
            chance = model.probabilities(vector, wording, without=leave_out_entry)
            blend *= chance**MODEL_WEIGHT
        raw = np.where(known, 100.0 * blend, -np.inf)
        return Scored(
            "semantic",
            raw,
            scored.rows,
            scored.lexical,
            scored.parts,
            meaning=meaning,
            chance=chance,
            cosine=cosine,
            plain=per_entry,
        )

    def _closeness(
        self,
        zh_vector: NDArray[np.float32],
        leave_out_row: int | None,
        leave_out_entry: int | None,
    ) -> Floats:
        """Each entry's cosine by meaning to the query, from its nearest Chinese question
        (0 for an entry with none)."""
        assert self._meanings is not None
        cosine = (self._meanings @ zh_vector).astype(np.float64) / CHINESE_MEANING_SCALE**2
        cosine[~self._chinese] = -np.inf
        if leave_out_row is not None:
            cosine[leave_out_row] = -np.inf
        if leave_out_entry is not None:
            cosine[self._owner == leave_out_entry] = -np.inf
        nearest = np.maximum.reduceat(cosine, self._starts)
        return np.where(np.isfinite(nearest), nearest, 0.0)
