"""A shortlist for large knowledge bases: the questions sharing the most (IDF-weighted)
character pairs and words with the query, found through an inverted index.

Scoring every question with rapidfuzz costs time in proportion to the knowledge
base; above a few thousand questions the matcher scores only this shortlist.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import sparse

__all__ = ["Shortlist"]


def _features(folded: str, normalised: str) -> list[str]:
    text = "".join(folded.split())
    pairs = [text[i : i + 2] for i in range(len(text) - 1)] or ([text] if text else [])
    return pairs + ["w:" + word for word in normalised.split()]


class Shortlist:
    """Cosine similarity over IDF-weighted character pairs and content words."""

    def __init__(self, folded: Sequence[str], normalised: Sequence[str]) -> None:
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        columns: list[int] = []
        for row, (f, n) in enumerate(zip(folded, normalised, strict=True)):
            for feature in set(_features(f, n)):
                rows.append(row)
                columns.append(vocabulary.setdefault(feature, len(vocabulary)))
        self._vocabulary = vocabulary
        shape = (len(folded), max(len(vocabulary), 1))
        index = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)), shape=shape
        )
        document_frequency = np.bincount(columns, minlength=shape[1]).astype(np.float32)
        self._idf = np.log((len(folded) + 1) / (document_frequency + 1)).astype(np.float32) + 1
        weighted = index.multiply(self._idf).tocsr()
        norms = np.sqrt(weighted.multiply(weighted).sum(axis=1)).A1
        norms[norms == 0] = 1.0
        # Column-major: a query touches only the postings of its own features.
        self._index = sparse.diags(1.0 / norms).dot(weighted).tocsc().astype(np.float32)

    def top(self, folded: str, normalised: str, size: int) -> np.ndarray:
        """Indices of up to ``size`` questions most similar to the query (unordered)."""
        columns = sorted(
            {self._vocabulary[f] for f in _features(folded, normalised) if f in self._vocabulary}
        )
        if not columns:
            return np.arange(0)
        weights = self._idf[columns]
        weights /= math.sqrt(float(np.dot(weights, weights)))
        similarity = self._index[:, columns].dot(weights)
        if len(similarity) <= size:
            return np.flatnonzero(similarity > 0)
        best = np.argpartition(-similarity, size)[:size]
        return best[similarity[best] > 0]
