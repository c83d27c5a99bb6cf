"""Small models fitted on a knowledge base's own questions.

* :class:`EntryModel` — softmax regression from a question's embedding to its
  entry, for the semantic re-ranker: it learns what sets each entry's questions
  apart from the others', which raw nearest-neighbour similarity cannot.
* :class:`Calibration` — a logistic curve from a raw match score to the chance
  that the best entry is the right one. It is fitted per knowledge base on held-out
  questions: each sampled question matched with itself left out (is the best
  entry still its own?) and with its whole entry left out (a question the
  knowledge base almost covers: the best entry is always wrong). So a threshold
  on the calibrated score means the same thing on any knowledge base.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

__all__ = ["Calibration", "EntryModel", "fit_calibration"]

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Calibration:
    """``chance(raw) = 1 / (1 + exp(-(slope * raw + offset)))``, shown as 0–100.

    With ``meaning`` (a weight), the curve also reads how close the query is by
    meaning to the entry's nearest question (a cosine, 0–1): characters and words
    say which entry, meaning says whether any entry is about this at all.
    """

    slope: float
    offset: float
    samples: int = 0  # 0: the default curve, not fitted on this knowledge base
    meaning: float = 0.0

    def __call__(self, raw: Floats, closeness: Floats | None = None) -> Floats:
        z = self.slope * raw + self.offset
        if closeness is not None and self.meaning:
            z = z + self.meaning * closeness
        z = np.clip(z, -40.0, 40.0)
        return 100.0 / (1.0 + np.exp(-z))

    def midpoint(self) -> float:
        """The raw score at which the calibrated score is 50."""
        return -self.offset / self.slope


def fit_calibration(
    raw: Sequence[float],
    right: Sequence[bool],
    default: Calibration,
    *,
    minimum: int = 20,
    closeness: Sequence[float] | None = None,
) -> Calibration:
    """The logistic curve that best explains ``right`` from ``raw`` (0–100 scores) and,
    when given, ``closeness`` (each best entry's cosine by meaning, 0–1).

    With fewer than ``minimum`` examples of either outcome, ``default`` is kept.
    """
    x = np.asarray(raw, dtype=np.float64) / 100.0
    c = np.zeros_like(x) if closeness is None else np.asarray(closeness, dtype=np.float64)
    y = np.asarray(right, dtype=np.float64)
    positives = int(y.sum())
    if positives < minimum or len(y) - positives < minimum:
        return default

    def loss(params: Floats) -> tuple[float, Floats]:
        slope, meaning, offset = params
        z = slope * x + meaning * c + offset
        # log(1 + e^z) - y z, stably; a little ridge keeps separable data finite.
        ridge = 0.01 * (slope * slope + meaning * meaning)
        value = float(np.sum(np.logaddexp(0.0, z) - y * z)) + ridge
        p = 1.0 / (1.0 + np.exp(-z))
        grad = np.array(
            [
                np.sum((p - y) * x) + 0.02 * slope,
                np.sum((p - y) * c) + 0.02 * meaning,
                np.sum(p - y),
            ]
        )
        return value, grad

    start = np.array([default.slope * 100.0, 0.0, default.offset])
    # Closer in meaning can only make an answer likelier: the weight is never negative.
    bounds = [(None, None), (0.0, None) if closeness is not None else (0.0, 0.0), (None, None)]
    from scipy.optimize import minimize  # a second of imports: only when fitting

    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    slope, meaning, offset = (float(v) for v in result.x)
    if not np.isfinite(slope) or slope <= 0 or not np.isfinite(meaning) or meaning < 0:
        return default
    return Calibration(slope=slope / 100.0, offset=offset, samples=len(y), meaning=meaning)


class EntryModel:
    """Softmax regression: a question's unit-length embedding (and, optionally, its
    sparse wording features, :mod:`knowledge.wording`) → the entry it belongs to."""

    def __init__(
        self,
        weights: NDArray[np.float32],
        bias: NDArray[np.float32],
        wording: NDArray[np.float32] | None = None,
    ) -> None:
        self.weights = weights
        self.bias = bias
        self.wording = wording

    @classmethod
    def fit(
        cls,
        vectors: NDArray[np.float32],
        owners: NDArray[np.intp],
        entries: int,
        *,
        wording: sparse.csr_matrix | None = None,
        strength: float = 1.0,
        iterations: int = 300,
        start: EntryModel | None = None,
    ) -> EntryModel:
        """Fit on ``vectors`` (with ``wording``, one row each) labelled ``owners``
        (0 … entries-1); L2 penalty ``1/strength``, the bias unpenalised. ``start``, a
        model fitted on much the same questions, is where the search begins.

        Strong regularisation keeps the probabilities modest for questions near but
        outside every entry: on BANKING77-OOS (130 questions per entry) strength 1
        beats 10 by 7 points of accuracy at 85% out-of-scope recall; on CLINC150 the
        two are within 1.5 points (bench/kb_bench.py).
        """
        x = vectors.astype(np.float64)
        n, d = x.shape
        s = None if wording is None else wording.astype(np.float64).tocsr()
        s_t = None if s is None else s.T.tocsr()  # for the gradient, row-major too
        v = 0 if s is None else s.shape[1]
        dense, words = d * entries, (d + v) * entries
        target = np.zeros((n, entries))
        target[np.arange(n), owners] = 1.0

        def loss(flat: Floats) -> tuple[float, Floats]:
            w = flat[:dense].reshape(d, entries)
            u = flat[dense:words].reshape(v, entries)
            b = flat[words:]
            logits = x @ w + b
            if s is not None:
                logits += s @ u
            logits -= logits.max(axis=1, keepdims=True)
            log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            penalty = float(np.dot(flat[:words], flat[:words])) / (2 * strength)
            value = -float(np.sum(target * log_p)) + penalty
            delta = np.exp(log_p) - target
            grad = [(x.T @ delta + w / strength).ravel()]
            if s_t is not None:
                grad.append(np.asarray(s_t @ delta + u / strength).ravel())
            grad.append(delta.sum(axis=0))
            return value, np.concatenate(grad)

        initial = np.zeros(words + entries)
        if start is not None and start._shape() == (d, v, entries):
            initial[:dense] = start.weights.ravel()
            if start.wording is not None:
                initial[dense:words] = start.wording.ravel()
            initial[words:] = start.bias
        from scipy.optimize import minimize

        result = minimize(
            loss, initial, jac=True, method="L-BFGS-B", options={"maxiter": iterations}
        )
        w = result.x[:dense].reshape(d, entries).astype(np.float32)
        u = result.x[dense:words].reshape(v, entries).astype(np.float32) if s is not None else None
        b = result.x[words:].astype(np.float32)
        return cls(w, b, u)

    def _shape(self) -> tuple[int, int, int]:
        d, entries = self.weights.shape
        return d, 0 if self.wording is None else self.wording.shape[0], entries

    def probabilities(
        self,
        vector: NDArray[np.float32],
        wording: sparse.csr_matrix | None = None,
        without: int | None = None,
    ) -> Floats:
        """Each entry's probability for ``vector`` (and its one-row ``wording``, if the
        model reads wording); ``without`` leaves one entry out."""
        logits = (vector @ self.weights + self.bias).astype(np.float64)
        if self.wording is not None and wording is not None:
            logits += np.asarray(wording @ self.wording, dtype=np.float64).ravel()
        if without is not None:
            logits[without] = -np.inf
        logits -= logits.max()
        p = np.exp(logits)
        return p / p.sum()
