"""Does an entry cover what a Chinese question is about? Words decide what matters.

A question that shares a few characters with an entry is not therefore about it:
汽车保险怎么报修 shares 报修 with the repair entry, but 汽车保险, the word that says
what it is about, appears nowhere in that entry. :class:`Coverage`
segments the question into words with jieba (the knowledge base's own terms added
to its dictionary), weighs each word by how informative it is in Chinese at large
(jieba's IDF table: 的 0.9, 怎么 4.4, 退货 10.7; function words weigh nothing below
:data:`FLOOR`), and gives each entry the weighted share of the question's words found
in that entry's questions — in part where only some of a word's characters are
(退回 against an entry that says 退货), whole for words that are not Chinese.

The matcher multiplies a Chinese question's score by this share to a small power
(``knowledge.scoring.COVERAGE_WEIGHT``). Segmenting was tried as features for the
entry model too and measured worse there (:mod:`knowledge.wording`); as a test of
coverage it helps (bench/kb_bench.py).
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

__all__ = ["FLOOR", "Coverage", "add_terms", "content_words", "substitution", "substitutions"]

# A word weighs its IDF minus this, and nothing if that is below zero: 我 (2.7), 了 (1.5)
# and 的 (0.9) say nothing about what the question is about; 可以 (3.5) and 怎么 (4.4)
# say little. Chosen on SMP2017's validation split and the demo dev set (0, 3 and 5
# tried; bench/kb_bench.py's protocol).
FLOOR = 3.0
# A single character jieba's table does not know (rare, or a name) weighs this much.
UNKNOWN_CHARACTER = 6.0

_lock = threading.Lock()
_tokenizer: Any = None
_idf: dict[str, float] = {}
_median = 0.0
_added: set[str] = set()
# Words taught before the tokenizer was first needed: it learns them when it loads.
_pending: list[str] = []


def _segmenter() -> tuple[Any, dict[str, float], float]:
    """jieba's tokenizer and IDF table, loaded once per process (about a second)."""
    global _tokenizer, _idf, _median
    with _lock:
        if _tokenizer is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            # jieba's own IDF table, read as jieba.analyse reads it; importing that
            # module would read it twice and load the part-of-speech tables (a second
            # and a half of every start and every `relaydesk kb ask`).
            _idf, _median = _read_idf(Path(jieba.__file__).parent / "analyse" / "idf.txt")
            for term in _pending:
                tokenizer.add_word(term)
            _pending.clear()
            _tokenizer = tokenizer
        return _tokenizer, _idf, _median


def _read_idf(path: Path) -> tuple[dict[str, float], float]:
    """``word idf`` per line; the median is what an unknown word of several characters
    weighs."""
    idf: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, _, value = line.strip().partition(" ")
        if word and value:
            idf[word] = float(value)
    return idf, sorted(idf.values())[len(idf) // 2]


def add_terms(terms: Iterable[str]) -> None:
    """Teach the segmenter a knowledge base's own words (its synonyms' canonical forms).

    The tokenizer is shared by every knowledge base in the process: a word added for
    one is known to all, which can only keep a real word whole. Until the tokenizer is
    first needed (a Chinese question to segment) the words wait for it: loading it takes
    about a second a process that answers only English never spends."""
    with _lock:
        for term in terms:
            term = term.strip()
            if len(term) > 1 and term not in _added and " " not in term:
                _added.add(term)
                if _tokenizer is None:
                    _pending.append(term)
                else:
                    _tokenizer.add_word(term)


def _tokens(text: str) -> list[str]:
    tokenizer, _, _ = _segmenter()
    return [w for w in (w.strip() for w in tokenizer.lcut(text, HMM=False)) if w]


def _weight(word: str) -> float:
    """How much ``word`` says about what a question is about (IDF less FLOOR)."""
    _, idf, median = _segmenter()
    known = idf.get(word)
    if known is None:
        known = UNKNOWN_CHARACTER if len(word) == 1 else median
    return known - FLOOR


def _is_chinese(word: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in word)


def content_words(text: str) -> list[tuple[str, float]]:
    """The words of ``text`` (folded) with their weights; weightless words left out."""
    found = []
    for word in _tokens(text):
        if any(ch.isalnum() for ch in word) and (weight := _weight(word)) > 0:
            found.append((word, weight))
    return found


def _units(word: str) -> list[str]:
    """What must be found in an entry for ``word`` to be covered: each of its Chinese
    characters, or the whole word for anything else (English, a model number)."""
    if _is_chinese(word):
        return [ch for ch in word if ch.isalnum()]
    return [word]


def _units_of_text(text: str) -> set[str]:
    units: set[str] = set()
    for word in _tokens(text):
        if any(ch.isalnum() for ch in word):
            units.update(_units(word))
    return units


class Coverage:
    """For each entry, how much of a question's weighted words its questions contain."""

    def __init__(self, questions: Sequence[str], owners: NDArray[np.intp], entries: int) -> None:
        """``questions`` folded, ``owners[i]`` the entry of question ``i``."""
        self._vocabulary: dict[str, int] = {}
        self._rows: list[NDArray[np.intp]] = []  # each question's units
        for question in questions:
            units = _units_of_text(question)
            self._rows.append(
                np.asarray(
                    sorted(self._vocabulary.setdefault(u, len(self._vocabulary)) for u in units),
                    dtype=np.intp,
                )
            )
        self._owners = owners
        self._entries = entries
        # How many of each entry's questions hold each unit (units × entries).
        rows = np.concatenate(self._rows) if self._rows else np.zeros(0, np.intp)
        columns = np.repeat(owners[: len(self._rows)], [len(r) for r in self._rows])
        counts = sparse.coo_matrix(
            (np.ones(len(rows), np.int32), (rows, columns)),
            shape=(max(len(self._vocabulary), 1), max(entries, 1)),
        ).tocsr()
        counts.sum_duplicates()
        self._counts = counts
        self._present = (counts > 0).astype(np.float64).T.tocsr()  # entries × units

    def __call__(self, text: str, *, leave_out_row: int | None = None) -> NDArray[np.float64]:
        """Each entry's share of the question's weighted words (1.0 for every entry
        when the question has none)."""
        weights = np.zeros(self._counts.shape[0])
        total = 0.0
        for word, weight in content_words(text):
            total += weight
            units = _units(word)
            for unit in units:
                column = self._vocabulary.get(unit)
                if column is not None:
                    weights[column] += weight / len(units)
        if total == 0.0:
            return np.ones(self._entries)
        covered = np.asarray(self._present @ weights, dtype=np.float64).ravel()
        if leave_out_row is not None:
            # Calibration holds a question out: what only it brings must not count.
            owner = int(self._owners[leave_out_row])
            own = self._rows[leave_out_row]
            if own.size:
                held = np.asarray(self._counts[own, owner].todense()).ravel()
                covered[owner] -= float(weights[own[held == 1]].sum())
        return np.clip(covered / total, 0.0, 1.0)


def substitution(phrasing: str, question: str) -> tuple[str, str] | None:
    """``(variant, canonical)`` when ``phrasing`` is ``question`` with one Chinese
    expression said another way (冰箱趴窝了怎么办 / 冰箱坏了怎么办 → 趴窝了, 坏了), both
    folded; else None. Safe to apply as a synonym everywhere: each side is two
    characters or more and carries meaning, the rest of the two is the same, says
    something and is longer than either side, and neither side holds the other."""
    a, b = _tokens(phrasing), _tokens(question)
    changes = [
        op
        for op in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
        if op[0] != "equal"
    ]
    if len(changes) != 1 or changes[0][0] != "replace":
        return None
    _, i1, i2, j1, j2 = changes[0]
    if i2 - i1 > 3 or j2 - j1 > 3:
        return None
    if min(len("".join(a[i1:i2])), len("".join(b[j1:j2]))) < 2:
        # 趴窝 against 坏: take the word both go on with (了), as customers say it.
        if i2 < len(a) and j2 < len(b):
            i2, j2 = i2 + 1, j2 + 1
        elif i1 > 0 and j1 > 0:
            i1, j1 = i1 - 1, j1 - 1
    variant, canonical = "".join(a[i1:i2]), "".join(b[j1:j2])
    same = [w for w in a[:i1] + a[i2:] if any(ch.isalnum() for ch in w)]
    if (
        len(variant) < 2
        or len(canonical) < 2
        or not (_is_chinese(variant) and _is_chinese(canonical))
        or not all(ch.isalnum() for ch in variant + canonical)
        or variant in canonical
        or canonical in variant
        or sum(max(_weight(w), 0.0) for w in a[i1:i2]) <= 0.0
        or sum(max(_weight(w), 0.0) for w in same) <= 0.0
        # Most of the two must be the same: 热水器谁来安装 against 怎么预约安装 says nothing.
        or len("".join(same)) < max(len(variant), len(canonical))
    ):
        return None
    return variant, canonical


def substitutions(phrasing: str, questions: Iterable[str]) -> list[tuple[str, str]]:
    """What :func:`substitution` finds between ``phrasing`` and any of ``questions``
    (each pair once, in the questions' order)."""
    found: dict[str, str] = {}
    for question in questions:
        pair = substitution(phrasing, question)
        if pair is not None:
            found.setdefault(*pair)
    return list(found.items())
