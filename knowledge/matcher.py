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

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz, process
from scipy import sparse

from knowledge.calibration import Calibration, EntryModel, fit_calibration
from knowledge.entries import FaqEntry
from knowledge.meaning import TextEncoder
from knowledge.normalise import Normaliser, detect_language
from knowledge.prefilter import Shortlist
from knowledge.semantic import Encoder
from knowledge.wording import Wording
from knowledge.words import Coverage, add_terms

__all__ = [
    "BLEND_CALIBRATION",
    "DEFAULT_CALIBRATION",
    "SHORTLIST_ABOVE",
    "SHORTLIST_SIZE",
    "Candidate",
    "Matcher",
]

# The settings below were chosen by measurement; how, with the figures, is in
# docs/matcher-settings.md (bench/kb_bench.py's protocol: chosen on validation splits).

# Above this many questions, only a shortlist found through an inverted index is scored.
SHORTLIST_ABOVE = 3000
SHORTLIST_SIZE = 300
# The semantic branch fits its entry model (385 numbers per entry) up to this many entries.
MODEL_MAX_ENTRIES = 3000
# The entry model's wording weights (features x entries) are capped at this many.
WORDING_WEIGHTS = 1_000_000
# How many of the knowledge base's questions calibration holds out and matches.
CALIBRATION_SAMPLE = 400
CALIBRATION_FOLDS = 5
# The lexical share of the semantic branch's blend.
LEXICAL_SHARE = 0.3
# The semantic branch: the blend times the entry model's probability to this power.
MODEL_WEIGHT = 1.0
# The chinese branch: the lexical score times the Chinese entry model's probability to
# this power; the model's L2 penalty 1/CHINESE_STRENGTH; its grams those found in at
# least CHINESE_MIN_QUESTIONS questions.
CHINESE_MODEL_WEIGHT = 0.5
CHINESE_STRENGTH = 10.0
CHINESE_MIN_QUESTIONS = 2
# Too few content characters (a bare 维修) or words ("order") give a model too little
# to go on: such a query is read by characters, and the bot asks which entry was meant.
CHINESE_MIN_LENGTH = 3
SEMANTIC_MIN_WORDS = 2
CHINESE_ITERATIONS = 300
# The chinese branch is also multiplied by the share of the question's content words
# the entry covers (knowledge.words) to this power, never by less than COVERAGE_LEAST:
# a question that shares one word with an entry falls.
COVERAGE_WEIGHT = 0.25
COVERAGE_LEAST = 0.05
# With the meaning model for Chinese, the Chinese entry model reads each question's e5
# embedding beside its grams, scaled by this much (so the penalty leaves it in play).
CHINESE_MEANING_SCALE = 3.0

# Used when a knowledge base has too few questions per entry to fit its own curve.
DEFAULT_CALIBRATION = {
    "lexical": Calibration(slope=0.07, offset=-5.0),
    "chinese": Calibration(slope=0.07, offset=-3.5),
    "semantic": Calibration(slope=0.35, offset=-2.5),
}
# The semantic branch without its entry model scores the blend alone, on another scale.
BLEND_CALIBRATION = Calibration(slope=0.12, offset=-7.5)

Floats = NDArray[np.float64]
_NO_VECTOR: NDArray[np.float32] = np.zeros(0, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An entry and how well the query matched it (0–100), with the question that matched best.

    ``score`` is calibrated: roughly the chance, in percent, that this entry is the
    right answer. ``components`` explain it (the raw branch score among them).
    """

    entry: FaqEntry
    score: float
    question: str
    # The parts the score is made of, for explaining a decision.
    components: tuple[tuple[str, float], ...] = ()

    @property
    def entry_id(self) -> str:
        return self.entry.id

    @property
    def raw(self) -> float:
        """The score before calibration (the last component)."""
        return self.components[-1][1] if self.components else self.score


@dataclass(slots=True)
class _Scored:
    branch: str
    raw: Floats  # per entry; -inf where the entry was not scored
    rows: NDArray[np.intp]  # the question rows scored lexically
    lexical: Floats  # per scored row: the blended lexical score
    parts: tuple[Floats, Floats, Floats]  # per scored row: order, words, characters
    meaning: Floats | None = None  # per entry (semantic branch)
    chance: Floats | None = None  # per entry: the entry model's probability (semantic, chinese)
    cosine: NDArray[np.float32] | None = None  # per question (semantic branch)
    plain: Floats | None = None  # per entry: the lexical score (chinese branch)
    covered: Floats | None = None  # per entry: the share of content words (chinese branch)
    closeness: Floats | None = None  # per entry: cosine to its nearest question (chinese)


class Matcher:
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
        self._sorted = [_sorted_tokens(n) for n in self._normalised]
        self._all_rows = np.arange(len(self._questions))
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
        self._encoder = encoder
        self._vectors: NDArray[np.float32] | None = None
        self._model: EntryModel | None = None
        self._wording: Wording | None = None
        self._worded: sparse.csr_matrix | None = None  # each question's wording features
        self._readable = np.zeros(len(self._questions), dtype=bool)
        if encoder is not None and self._questions:
            # The model reads English: questions with Chinese characters take no part.
            self._readable = np.asarray([detect_language(q) != "zh" for q in self._questions])
            self._vectors = np.zeros((len(self._questions), encoder.dimensions), np.float32)
            readable = [q for q, ok in zip(self._questions, self._readable, strict=True) if ok]
            self._vectors[self._readable] = encoder.encode_questions(readable)
        self._uses_model = self._wants_model()
        if self._uses_model:
            readable_folded = [f for f, ok in zip(self._folded, self._readable, strict=True) if ok]
            self._wording = Wording(
                readable_folded, max_features=WORDING_WEIGHTS // len(self._entries)
            )
            self._worded = self._wording.transform(self._folded)
        # The chinese branch's model reads the Chinese questions' character grams.
        self._chinese = np.asarray([detect_language(q) == "zh" for q in self._questions], bool)
        self._chinese_wording: Wording | None = None
        self._chinese_worded: sparse.csr_matrix | None = None
        self._chinese_model: EntryModel | None = None
        self._coverage: Coverage | None = None
        self._chinese_encoder: TextEncoder | None = None
        self._meanings: NDArray[np.float32] | None = None  # per question, Chinese rows
        if self._wants_chinese_model():
            if chinese_encoder is not None:
                self._chinese_encoder = chinese_encoder
                self._meanings = np.zeros(
                    (len(self._questions), chinese_encoder.dimensions), np.float32
                )
                # Read folded (one script, the synonyms' canonical words), as the
                # query will be: 軟體 and 软件 are one word to the model too.
                chinese_rows = [f for f, zh in zip(self._folded, self._chinese, strict=True) if zh]
                self._meanings[self._chinese] = (
                    chinese_encoder.encode_questions(chinese_rows) * CHINESE_MEANING_SCALE
                )
            add_terms(self.normaliser.fold(c) for c in set(self.normaliser.synonyms.values()))
            self._coverage = Coverage(self._folded, self._owner, len(self._entries))
            self._chinese_wording = Wording(
                [f for f, zh in zip(self._folded, self._chinese, strict=True) if zh],
                max_features=WORDING_WEIGHTS // len(self._entries),
                min_questions=CHINESE_MIN_QUESTIONS,
                chinese=True,
            )
            self._chinese_worded = self._chinese_wording.transform(self._folded)
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

    # A fitted matcher is kept on disk without its encoders (knowledge.fitted): they
    # are the process's, attached again when it is read back.
    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_encoder"] = state["_chinese_encoder"] = None
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        if self._coverage is not None:
            # The segmenter learns the synonyms' words per process, as at fitting time.
            add_terms(self.normaliser.fold(c) for c in set(self.normaliser.synonyms.values()))

    def attach(self, *, encoder: Encoder | None, chinese_encoder: TextEncoder | None) -> None:
        """Give a matcher read back from disk the encoders it was fitted with (an encoder
        it had no use for, e.g. Chinese for an English knowledge base, stays unused)."""
        if (encoder is None and self._vectors is not None) or (
            chinese_encoder is None and self._meanings is not None
        ):
            raise ValueError("the matcher was fitted with an encoder that is not given")
        self._encoder = encoder if self._vectors is not None else None
        self._chinese_encoder = chinese_encoder if self._meanings is not None else None

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

    def _candidate(self, scored: _Scored, entry: int, score: float) -> Candidate:
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
    ) -> _Scored | None:
        """Raw scores of every entry for ``text``; the leave-out arguments serve calibration."""
        query, folded = self.normaliser.both(text)
        if not query or not self._normalised:
            return None
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
        sort = process.cdist([_sorted_tokens(query)], ordered, scorer=fuzz.ratio)[0]
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
        scored = _Scored("lexical", per_entry, rows, lexical, (parts[0], parts[1], parts[2]))
        written_in_chinese = detect_language(text) == "zh"
        if (
            chinese is not None
            and self._chinese_wording is not None
            and written_in_chinese
            and len(query.replace(" ", "")) >= CHINESE_MIN_LENGTH
        ):
            if chinese_wording is None:
                chinese_wording = self._chinese_wording.transform([folded])
            if self._chinese_encoder is None:
                zh_vector = _NO_VECTOR
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
            return scored if rows.size else None
        if (
            self._vectors is None
            or self._encoder is None
            or not self._readable.any()
            or written_in_chinese
            or len(query.split()) < SEMANTIC_MIN_WORDS
        ):
            return scored if rows.size else None
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
        return _Scored(
            "semantic",
            raw,
            rows,
            lexical,
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

    def _wants_model(self) -> bool:
        """Whether the semantic branch has an entry model: not for one entry, nor above
        MODEL_MAX_ENTRIES, nor when most entries have a single question to learn from
        (the model then spreads its probability thin, and calibration has nothing to
        hold out: on CLINC150 with one question per entry the branch answered nothing
        at the shipped threshold)."""
        if self._vectors is None or not 1 < len(self._entries) <= MODEL_MAX_ENTRIES:
            return False
        readable = np.bincount(self._owner[self._readable], minlength=len(self._entries))
        return bool(readable.any()) and float(np.median(readable[readable > 0])) >= 2

    def _wants_chinese_model(self) -> bool:
        """Whether Chinese queries are weighed by a model: as for the semantic branch's,
        not for one entry, nor above MODEL_MAX_ENTRIES, nor when the entries with Chinese
        questions mostly have one."""
        if not 1 < len(self._entries) <= MODEL_MAX_ENTRIES or not self._chinese.any():
            return False
        per_entry = np.bincount(self._owner[self._chinese], minlength=len(self._entries))
        return float(np.median(per_entry[per_entry > 0])) >= 2

    def _fit_chinese(self, rows: NDArray[np.bool_], start: EntryModel | None = None) -> EntryModel:
        assert self._chinese_worded is not None
        return EntryModel.fit(
            self._meanings[rows]
            if self._meanings is not None
            else np.zeros((int(rows.sum()), 0), np.float32),
            self._owner[rows],
            len(self._entries),
            wording=self._chinese_worded[rows],
            strength=CHINESE_STRENGTH,
            iterations=CHINESE_ITERATIONS,
            start=start,
        )

    def _default(self, branch: str) -> Calibration:
        if branch == "semantic" and self._vectors is not None and not self._uses_model:
            return BLEND_CALIBRATION
        return DEFAULT_CALIBRATION[branch]

    def _fit_model(self, rows: NDArray[np.bool_], start: EntryModel | None = None) -> EntryModel:
        assert self._vectors is not None
        return EntryModel.fit(
            self._vectors[rows],
            self._owner[rows],
            len(self._entries),
            wording=None if self._worded is None else self._worded[rows],
            start=start,
        )

    def _calibrate(self) -> tuple[EntryModel | None, EntryModel | None]:
        """Fit each branch's curve on held-out questions of this knowledge base; returns
        the last entry models fitted for it, semantic and Chinese (a head start for the
        ones that serve)."""
        sizes = np.diff(np.r_[self._starts, len(self._questions)])
        eligible = [row for row in range(len(self._questions)) if sizes[self._owner[row]] > 1]
        sample = random.Random(0).sample(eligible, min(CALIBRATION_SAMPLE, len(eligible)))
        # The entry model is cross-fitted: each sampled question is scored by a model that
        # has not seen it. When the sample is a large part of the knowledge base it is
        # split into five folds; otherwise one model trained without it will do.
        folds = [sample]
        if len(sample) * 3 > len(self._questions):
            folds = [sample[i::CALIBRATION_FOLDS] for i in range(CALIBRATION_FOLDS)]
        seen: dict[str, tuple[list[float], list[bool], list[float]]] = {}
        model, chinese = None, None
        for fold in folds:
            # From scratch: a head start from another fold would carry what it saw.
            if self._uses_model:
                keep = self._readable.copy()
                keep[fold] = False
                model = self._fit_model(keep)
            if self._chinese_worded is not None:
                keep = self._chinese.copy()
                keep[fold] = False
                chinese = self._fit_chinese(keep)
            for row in fold:
                self._held_out(row, model, chinese, seen)
        for branch, (raws, rights, close) in seen.items():
            self.calibration[branch] = fit_calibration(
                raws,
                rights,
                self._default(branch),
                closeness=close if len(close) == len(raws) and close else None,
            )
        return model, chinese

    def _held_out(
        self,
        row: int,
        model: EntryModel | None,
        chinese: EntryModel | None,
        seen: dict[str, tuple[list[float], list[bool], list[float]]],
    ) -> None:
        """Question ``row`` matched without itself (is its entry still the best?) and
        without its entry (a question the knowledge base almost covers)."""
        entry = int(self._owner[row])
        vector = self._vectors[row] if self._vectors is not None else None
        wording = self._worded[row] if self._worded is not None else None
        grams = self._chinese_worded[row] if self._chinese_worded is not None else None
        zh_vector = self._meanings[row] if self._meanings is not None else None
        for leave_row, leave_entry in ((row, None), (None, entry)):
            scored = self._score(
                self._questions[row],
                model=model,
                chinese=chinese,
                vector=vector,
                wording=wording,
                chinese_wording=grams,
                zh_vector=zh_vector,
                leave_out_row=leave_row,
                leave_out_entry=leave_entry,
            )
            if scored is None or not np.isfinite(scored.raw).any():
                continue
            best = int(np.argmax(scored.raw))
            raws, rights, close = seen.setdefault(scored.branch, ([], [], []))
            raws.append(float(scored.raw[best]))
            rights.append(best == entry)
            if scored.closeness is not None:
                close.append(float(scored.closeness[best]))
            if scored.plain is not None:
                # The lexical curve still learns from every question, as it did before
                # there were other branches: short queries keep the same scale.
                best = int(np.argmax(scored.plain))
                raws, rights, _ = seen.setdefault("lexical", ([], [], []))
                raws.append(float(scored.plain[best]))
                rights.append(best == entry)


def _sorted_tokens(text: str) -> str:
    """What rapidfuzz's token_sort_ratio compares: the whitespace tokens, sorted."""
    return " ".join(sorted(text.split()))
