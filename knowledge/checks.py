"""Problems in a knowledge base that make the bot unsure: the same question under two
entries, and entries whose questions match each other closely."""

from __future__ import annotations

from dataclasses import dataclass

from knowledge.matcher import Matcher

__all__ = ["Collision", "find_collisions"]


@dataclass(frozen=True, slots=True)
class Collision:
    """``question`` of entry ``entry`` matches entry ``other`` at ``score`` (calibrated;
    ``raw`` before calibration); ``duplicate`` when the two are the same question once
    normalised."""

    entry: str
    other: str
    question: str
    score: float
    duplicate: bool = False
    raw: float = 0.0


def find_collisions(matcher: Matcher, *, threshold: float) -> list[Collision]:
    """Each question, matched against every other entry: those scoring ``threshold`` or
    more would be answered from the wrong entry, or offered next to it."""
    found: dict[tuple[str, str], Collision] = {}
    for entry in matcher.entries:
        for question in entry.questions:
            for candidate in matcher.match(question, limit=3):
                if candidate.entry_id == entry.id or candidate.score < threshold:
                    continue
                pair = tuple(sorted((entry.id, candidate.entry_id)))
                key = (pair[0], pair[1])
                if key not in found or candidate.score > found[key].score:
                    same = matcher.normaliser(question) == matcher.normaliser(candidate.question)
                    found[key] = Collision(
                        entry.id,
                        candidate.entry_id,
                        question,
                        candidate.score,
                        duplicate=same,
                        raw=candidate.raw,
                    )
    return sorted(found.values(), key=lambda c: (-c.score, c.entry, c.other))
