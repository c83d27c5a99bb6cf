"""How a matcher fits itself to its knowledge base: whether each branch gets an entry
model, the models, and the score curves calibrated on held-out questions of its own."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from knowledge.calibration import Calibration, EntryModel, fit_calibration
from knowledge.index import MatcherIndex
from knowledge.scoring import (
    BLEND_CALIBRATION,
    CALIBRATION_FOLDS,
    CALIBRATION_SAMPLE,
    CHINESE_ITERATIONS,
    CHINESE_STRENGTH,
    DEFAULT_CALIBRATION,
    Scored,
)

__all__ = ["MatcherFitting"]


class MatcherFitting(MatcherIndex):
    """Between the index (``knowledge.index``) and the scoring (``knowledge.matcher``)."""

    calibration: dict[str, Calibration]
    # Raw scores of every entry for a text (``Matcher._score``): calibration holds its
    # questions out through it.
    _score: Callable[..., Scored | None]

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
