"""The matcher's settings (chosen by measurement: docs/matcher-settings.md), the
default score curves, and what a match hands back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from knowledge.calibration import Calibration
from knowledge.entries import FaqEntry

__all__ = [
    "BLEND_CALIBRATION",
    "CALIBRATION_FOLDS",
    "CALIBRATION_SAMPLE",
    "CHINESE_ITERATIONS",
    "CHINESE_MEANING_SCALE",
    "CHINESE_MIN_LENGTH",
    "CHINESE_MIN_QUESTIONS",
    "CHINESE_MODEL_WEIGHT",
    "CHINESE_STRENGTH",
    "COVERAGE_LEAST",
    "COVERAGE_WEIGHT",
    "DEFAULT_CALIBRATION",
    "LEXICAL_SHARE",
    "MODEL_MAX_ENTRIES",
    "MODEL_WEIGHT",
    "NO_VECTOR",
    "SEMANTIC_MIN_WORDS",
    "SHORTLIST_ABOVE",
    "SHORTLIST_SIZE",
    "WORDING_WEIGHTS",
    "Candidate",
    "Floats",
    "Scored",
    "sorted_tokens",
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
NO_VECTOR: NDArray[np.float32] = np.zeros(0, dtype=np.float32)


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
class Scored:
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


def sorted_tokens(text: str) -> str:
    """What rapidfuzz's token_sort_ratio compares: the whitespace tokens, sorted."""
    return " ".join(sorted(text.split()))
