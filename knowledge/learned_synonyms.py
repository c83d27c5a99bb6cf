"""Words the bot learns from agents, once an admin agrees.

When an agent's "Save as FAQ", or an admin's publishing from the gap report, adds
a customer's phrasing to an existing entry, the phrasing is compared with the
entry's own questions. If the two differ by one Chinese expression (冰箱趴窝了怎么办
against 冰箱坏了怎么办), that pair is a *suggested synonym*: kept in
``synonym_suggestions.yaml`` until an admin accepts it on the gap report page, which
moves it to ``learned_synonyms.yaml`` (read under the folder's own ``synonyms.yaml``,
over the shipped after-sales words), or dismisses it for good. Nothing is applied
unasked: 热水器怎么安装 saved to an entry that says 空调怎么安装 would otherwise teach
the bot that a water heater is an air conditioner.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from knowledge.entries import KnowledgeError
from knowledge.loader import LEARNED_SYNONYMS_FILE, SUGGESTIONS_FILE
from knowledge.normalise import fold
from knowledge.words import substitutions

__all__ = [
    "LEARNED_SYNONYMS_FILE",
    "SUGGESTIONS_FILE",
    "Suggestion",
    "accept_suggestion",
    "dismiss_suggestion",
    "pending_suggestions",
    "suggest_synonyms",
]

_LEARNED_HEADER = (
    "# Synonyms admins accepted from the gap report (each word on the left stands for\n"
    "# the variants customers used). Read under synonyms.yaml, which wins. Edit freely.\n"
)
_SUGGESTIONS_HEADER = (
    "# Synonyms suggested by phrasings agents saved to existing entries; an admin accepts\n"
    "# or dismisses each on the gap report page. Dismissed ones are kept so that they are\n"
    "# not suggested again.\n"
)


# Two agents saving at once must not lose each other's suggestions (read, change, write).
_files = threading.Lock()


@dataclass(frozen=True, slots=True)
class Suggestion:
    variant: str
    canonical: str
    entry: str
    example: str


def _read_list(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        document = yaml.safe_load(path.read_text("utf-8")) or []
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path}: not valid YAML") from exc
    if not isinstance(document, list):
        raise KnowledgeError(f"{path}: expected a list of suggestions")
    return [d for d in document if isinstance(d, dict) and isinstance(d.get("variant"), str)]


def _write(path: Path, header: str, document: Any) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(
        header + yaml.safe_dump(document, allow_unicode=True, sort_keys=False), "utf-8"
    )
    os.replace(temporary, path)


def suggest_synonyms(
    folder: Path,
    phrasings: Sequence[str],
    questions: Sequence[str],
    *,
    entry: str,
    knowledge_base: Iterable[str],
    same: Callable[[str], str],
) -> list[Suggestion]:
    """Record the pairs ``phrasings`` suggest against the entry's ``questions``; returns
    the new ones. A variant the knowledge base already uses in any question (退货
    against 退款) is a word of its own, not a variant; a pair the synonyms in force
    already make the same (``same`` folds as matching does) teaches nothing."""
    if not folder.is_dir():
        return []
    written = fold("\n".join(knowledge_base))
    with _files:
        return _suggest(folder / SUGGESTIONS_FILE, phrasings, questions, entry, written, same)


def _suggest(
    path: Path,
    phrasings: Sequence[str],
    questions: Sequence[str],
    entry: str,
    written: str,
    same: Callable[[str], str],
) -> list[Suggestion]:
    known = _read_list(path)
    seen = {str(item["variant"]) for item in known}
    found: list[Suggestion] = []
    for phrasing in phrasings:
        for variant, canonical in substitutions(fold(phrasing), [fold(q) for q in questions]):
            if variant in seen or variant in written or same(variant) == same(canonical):
                continue
            seen.add(variant)
            found.append(Suggestion(variant, canonical, entry, phrasing.strip()[:300]))
    if found:
        known.extend(
            {
                "variant": s.variant,
                "canonical": s.canonical,
                "entry": s.entry,
                "example": s.example,
                "status": "pending",
            }
            for s in found
        )
        _write(path, _SUGGESTIONS_HEADER, known)
    return found


def pending_suggestions(folder: Path) -> list[Suggestion]:
    """The suggestions no admin has accepted or dismissed yet, oldest first."""
    if not folder.is_dir():
        return []
    return [
        Suggestion(
            str(item["variant"]),
            str(item.get("canonical", "")),
            str(item.get("entry", "")),
            str(item.get("example", "")),
        )
        for item in _read_list(folder / SUGGESTIONS_FILE)
        if item.get("status", "pending") == "pending"
    ]


def _decide(folder: Path, variant: str, status: str) -> Suggestion:
    path = folder / SUGGESTIONS_FILE
    known = _read_list(path)
    for item in known:
        canonical = item.get("canonical")
        if (
            item["variant"] == variant
            and item.get("status", "pending") == "pending"
            and isinstance(canonical, str)
        ):
            item["status"] = status
            _write(path, _SUGGESTIONS_HEADER, known)
            return Suggestion(
                variant, canonical, str(item.get("entry", "")), str(item.get("example", ""))
            )
    raise KnowledgeError(f"no pending suggestion for {variant!r}")


def accept_suggestion(folder: Path, variant: str) -> Suggestion:
    """The suggestion becomes a synonym in ``learned_synonyms.yaml``."""
    path = folder / LEARNED_SYNONYMS_FILE
    with _files:
        learned = _read_learned(path)
        suggestion = _decide(folder, variant, "accepted")
        variants = learned.setdefault(suggestion.canonical, [])
        if suggestion.variant not in variants:
            variants.append(suggestion.variant)
        _write(path, _LEARNED_HEADER, learned)
    return suggestion


def _read_learned(path: Path) -> dict[str, list[str]]:
    if not path.exists():
        return {}
    try:
        document = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path}: not valid YAML") from exc
    if not isinstance(document, dict) or not all(isinstance(v, list) for v in document.values()):
        raise KnowledgeError(f"{path}: expected a mapping of word to a list of its variants")
    return {str(k): [str(v) for v in vs] for k, vs in document.items()}


def dismiss_suggestion(folder: Path, variant: str) -> Suggestion:
    """The suggestion is kept as dismissed, never suggested again."""
    with _files:
        return _decide(folder, variant, "dismissed")
