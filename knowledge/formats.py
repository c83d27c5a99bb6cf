"""Knowledge bases kept as CSV or Markdown, for teams that write FAQs in a spreadsheet or docs.

CSV: a header with ``id`` and ``question`` and any of ``answer``, ``answer_zh``,
``answer_en``, ``title``, ``title_zh``, ``title_en``, ``tags`` (``;``-separated).
One row per phrasing; rows with the same id make one entry, whose answers and
titles come from the first row that has them.

Markdown: each ``## `` heading holds the phrasings of one question, separated
by `` | ``; the text below it, up to the next heading, is the answer (its
language detected). ``<!-- id: return-how -->`` on the line after a heading
names the entry (else the id comes from the first phrasing); two sections with
the same id make one entry, e.g. its Chinese and English answers.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.entries import FaqEntry, KnowledgeError
from knowledge.normalise import detect_language

__all__ = ["load_csv", "load_markdown"]

_ID_COMMENT = re.compile(r"^<!--\s*id:\s*([\w.-]+)\s*-->$")


@dataclass
class _Draft:
    where: str
    questions: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)

    def build(self, entry_id: str) -> FaqEntry:
        if not self.answers:
            raise KnowledgeError(f"{self.where}: entry {entry_id!r} has no answer")
        try:
            return FaqEntry(
                id=entry_id,
                questions=tuple(dict.fromkeys(self.questions)),
                answers=tuple(self.answers.items()),
                titles=tuple(self.titles.items()),
                tags=tuple(dict.fromkeys(self.tags)),
            )
        except KnowledgeError as exc:
            raise KnowledgeError(f"{self.where}: {exc}") from exc


def load_csv(file: Path) -> list[FaqEntry]:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KnowledgeError(f"{file}: not UTF-8: {exc}") from exc
    reader = csv.DictReader(text.splitlines())
    columns = set(reader.fieldnames or [])
    if not {"id", "question"} <= columns:
        raise KnowledgeError(f"{file}:1: the header needs the columns id and question")
    drafts: dict[str, _Draft] = {}
    for line, row in enumerate(reader, start=2):
        entry_id = (row.get("id") or "").strip()
        question = (row.get("question") or "").strip()
        if not entry_id or not question:
            raise KnowledgeError(f"{file}:{line}: id and question must not be empty")
        draft = drafts.setdefault(entry_id, _Draft(where=f"{file}:{line}"))
        draft.questions.append(question)
        for column, target in (("answer", draft.answers), ("title", draft.titles)):
            for suffix in ("", "_zh", "_en"):
                value = (row.get(column + suffix) or "").strip()
                if value:
                    language = suffix[1:] or detect_language(value)
                    target.setdefault(language, value)
        draft.tags.extend(t.strip() for t in (row.get("tags") or "").split(";") if t.strip())
    return [draft.build(entry_id) for entry_id, draft in drafts.items()]


def load_markdown(file: Path) -> list[FaqEntry]:
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise KnowledgeError(f"{file}: not UTF-8: {exc}") from exc
    drafts: dict[str, _Draft] = {}
    sections: list[tuple[int, list[str], list[str]]] = []  # line, phrasings, body
    for number, line in enumerate(lines, start=1):
        if line.startswith("## "):
            phrasings = [p.strip() for p in line[3:].split("|") if p.strip()]
            if not phrasings:
                raise KnowledgeError(f"{file}:{number}: a heading needs at least one question")
            sections.append((number, phrasings, []))
        elif sections:
            sections[-1][2].append(line)
    for number, phrasings, body in sections:
        entry_id = _slug(phrasings[0])
        while body and not body[0].strip():
            body.pop(0)
        if body and (match := _ID_COMMENT.match(body[0].strip())):
            entry_id = match.group(1)
            body.pop(0)
        answer = "\n".join(body).strip()
        if not answer:
            raise KnowledgeError(f"{file}:{number}: {phrasings[0]!r} has no answer below it")
        draft = drafts.setdefault(entry_id, _Draft(where=f"{file}:{number}"))
        draft.questions.extend(phrasings)
        draft.answers.setdefault(detect_language(answer), answer)
        draft.titles.setdefault(detect_language(phrasings[0]), phrasings[0])
    return [draft.build(entry_id) for entry_id, draft in drafts.items()]


def _slug(question: str) -> str:
    ascii_words = re.findall(r"[a-z0-9]+", question.casefold())
    if ascii_words and len("".join(ascii_words)) >= len(question) // 2:
        return "-".join(ascii_words)[:60]
    return "faq-" + hashlib.sha1(question.encode()).hexdigest()[:10]
