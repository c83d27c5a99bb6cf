"""What a matcher knows of its knowledge base before any query: every question
normalised and folded, which entry owns each, the English vectors and wording
features, the Chinese grams, coverage and meanings; kept on disk without the
encoders (``knowledge.fitted``), which are attached again when read back."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from knowledge.calibration import EntryModel
from knowledge.entries import FaqEntry
from knowledge.meaning import TextEncoder
from knowledge.normalise import Normaliser, detect_language
from knowledge.prefilter import Shortlist
from knowledge.scoring import (
    CHINESE_MEANING_SCALE,
    CHINESE_MIN_QUESTIONS,
    MODEL_MAX_ENTRIES,
    SHORTLIST_ABOVE,
    WORDING_WEIGHTS,
    sorted_tokens,
)
from knowledge.semantic import Encoder
from knowledge.wording import Wording
from knowledge.words import Coverage, add_terms

__all__ = ["MatcherIndex"]


class MatcherIndex:
    normaliser: Normaliser
    _model: EntryModel | None  # the semantic branch's entry model
    _chinese_model: EntryModel | None  # the chinese branch's

    def _index(
        self, entries: Sequence[FaqEntry], progress: Callable[[int, int], None] | None
    ) -> None:
        """Every question of every entry, normalised and folded once; which entry owns
        each row; the shortlist's inverted index for a large knowledge base."""
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
        self._sorted = [sorted_tokens(n) for n in self._normalised]
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

    def _read_english(self, encoder: Encoder | None) -> None:
        """The semantic branch (English, all-MiniLM): each readable question's vector, and
        the wording features its entry model reads."""
        self._encoder = encoder
        self._vectors: NDArray[np.float32] | None = None
        self._model = None
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

    def _read_chinese(self, chinese_encoder: TextEncoder | None) -> None:
        """The chinese branch: its entry model's grams, the coverage of content words and,
        with the meaning model, each Chinese question's e5 vector."""
        # The chinese branch's model reads the Chinese questions' character grams.
        self._chinese = np.asarray([detect_language(q) == "zh" for q in self._questions], bool)
        self._chinese_wording: Wording | None = None
        self._chinese_worded: sparse.csr_matrix | None = None
        self._chinese_model = None
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
