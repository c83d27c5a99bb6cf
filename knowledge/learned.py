"""What agents teach the bot: "Save as FAQ" writes here.

One YAML file in the knowledge folder, ``learned.yaml``, holds new entries
(``id: learned-…``) and extra phrasings for existing entries
(``extends: <entry id>``). It is an ordinary part of the knowledge base:
reviewed, edited or deleted like any other file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from knowledge.entries import KnowledgeError
from knowledge.normalise import detect_language

__all__ = ["LEARNED_FILE", "learn"]

LEARNED_FILE = "learned.yaml"
_HEADER = (
    '# Written by the inbox\'s "Save as FAQ". Entries with `id` are new; entries with\n'
    "# `extends` add phrasings to an entry defined elsewhere. Edit freely.\n"
)


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    document = yaml.safe_load(path.read_text("utf-8")) or []
    if not isinstance(document, list):
        raise KnowledgeError(f"{path}: expected a list of entries")
    return [d for d in document if isinstance(d, dict)]


def learn(
    folder: Path,
    *,
    question: str,
    answer: str,
    extends: str | None = None,
    more: list[str] | None = None,
) -> str:
    """Record ``question`` and the phrasings in ``more`` (with ``answer`` for a new
    entry); returns the entry id."""
    question = question.strip()
    if not question:
        raise KnowledgeError("the question is empty")
    phrasings = [question] + [q.strip() for q in more or () if q.strip() and q.strip() != question]
    if not folder.is_dir():
        raise KnowledgeError(f"{folder}: the knowledge base is not a folder; cannot learn")
    path = folder / LEARNED_FILE
    entries = _read(path)
    if extends is not None:
        for item in entries:
            if item.get("extends") == extends:
                known = item.setdefault("questions", [])
                known.extend(q for q in phrasings if q not in known)
                break
        else:
            entries.append({"extends": extends, "questions": phrasings})
        entry_id = extends
    else:
        if not answer.strip():
            raise KnowledgeError("the answer is empty")
        digest = hashlib.sha1(question.encode()).hexdigest()[:8]
        entry_id = f"learned-{digest}"
        entries.append(
            {
                "id": entry_id,
                "tags": ["learned"],
                "questions": _by_language(phrasings),
                "answer": {detect_language(answer): answer.strip()},
            }
        )
    temporary = path.with_suffix(".tmp")
    temporary.write_text(
        _HEADER + yaml.safe_dump(entries, allow_unicode=True, sort_keys=False), "utf-8"
    )
    os.replace(temporary, path)
    return entry_id


def _by_language(questions: list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for question in questions:
        grouped.setdefault(detect_language(question), []).append(question)
    return grouped
