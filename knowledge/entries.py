"""FAQ entries: the unit the bot answers with."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FaqEntry", "KnowledgeError"]


class KnowledgeError(ValueError):
    """A knowledge-base file is malformed; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class FaqEntry:
    """One answerable question.

    ``questions`` are phrasings customers use, in any language; ``answers`` maps a
    language code (``zh``, ``en``) to the answer in that language. ``title`` is
    the short label shown when the bot offers this entry as a choice.
    """

    id: str
    questions: tuple[str, ...]
    answers: tuple[tuple[str, str], ...]
    titles: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.id:
            raise KnowledgeError("an entry needs an id")
        if not self.questions:
            raise KnowledgeError(f"entry {self.id!r} needs at least one question")
        if not self.answers:
            raise KnowledgeError(f"entry {self.id!r} needs an answer")

    def answer_for(self, language: str) -> str:
        """The answer in ``language``, else the first one given."""
        return _pick(self.answers, language)

    def title_for(self, language: str) -> str:
        """A short label for a choice button: the title, else the first question."""
        if self.titles:
            return _pick(self.titles, language)
        return self.questions[0]


def _pick(texts: tuple[tuple[str, str], ...], language: str) -> str:
    for lang, text in texts:
        if lang == language:
            return text
    return texts[0][1]
