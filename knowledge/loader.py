"""Load FAQ entries from YAML files.

One file holds a list of entries::

    - id: return-how
      tags: [returns]
      title: {zh: 如何退货, en: How to return an item}
      questions:
        zh: [怎么申请退货？, 我想退货]
        en: [How do I return an item?]
      answer:
        zh: ...
        en: ...

``questions`` may also be a plain list and ``answer`` a plain string (taken as
the answer for every language).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from knowledge.entries import FaqEntry, KnowledgeError
from knowledge.formats import load_csv, load_markdown

__all__ = [
    "LEARNED_SYNONYMS_FILE",
    "SUGGESTIONS_FILE",
    "SYNONYMS_FILE",
    "fingerprint",
    "knowledge_files",
    "load_entries",
    "load_folder",
    "load_synonyms",
]

_DEFAULT_LANGUAGE = "en"
SYNONYMS_FILE = "synonyms.yaml"
SHIPPED_SYNONYMS = "after_sales_synonyms.yaml"
# Synonyms admins accepted from suggestions (knowledge.learned_synonyms), and the
# suggestions themselves: part of the folder, not entries.
LEARNED_SYNONYMS_FILE = "learned_synonyms.yaml"
SUGGESTIONS_FILE = "synonym_suggestions.yaml"
_NOT_ENTRIES = frozenset({SYNONYMS_FILE, LEARNED_SYNONYMS_FILE, SUGGESTIONS_FILE})


def knowledge_files(path: Path) -> list[Path]:
    """The files that make up the knowledge base at ``path`` (a folder, or one file)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(
            p
            for p in path.iterdir()
            if p.suffix in _LOADERS and p.name not in _NOT_ENTRIES and not p.name.startswith(".")
        )
    raise KnowledgeError(f"{path}: no such knowledge-base file or folder")


def load_folder(path: Path) -> list[FaqEntry]:
    """All entries of every YAML, CSV and Markdown file in ``path`` (or of the one file)."""
    files = knowledge_files(path)
    entries: list[FaqEntry] = []
    seen: dict[str, Path] = {}
    extra: list[tuple[Path, str, tuple[str, ...]]] = []
    for file in files:
        if file.suffix in (".yaml", ".yml"):
            extra.extend((file, target, q) for target, q in _extensions(file))
        loader = _LOADERS.get(file.suffix, load_entries)
        for entry in loader(file):
            if entry.id in seen:
                raise KnowledgeError(
                    f"{file}: entry id {entry.id!r} is already used in {seen[entry.id]}"
                )
            seen[entry.id] = file
            entries.append(entry)
    by_id = {entry.id: index for index, entry in enumerate(entries)}
    for file, target, questions in extra:
        if target not in by_id:
            raise KnowledgeError(f"{file}: 'extends: {target}' names no entry")
        entry = entries[by_id[target]]
        entries[by_id[target]] = replace(entry, questions=entry.questions + questions)
    return entries


def _extensions(file: Path) -> list[tuple[str, tuple[str, ...]]]:
    """``extends:`` items of a YAML file: more phrasings for an entry defined elsewhere."""
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return []  # load_entries reports it
    if not isinstance(document, list):
        return []
    return [
        (
            str(raw["extends"]),
            _questions(f"{file}: extends {raw['extends']!r}", raw.get("questions")),
        )
        for raw in document
        if isinstance(raw, Mapping) and "extends" in raw
    ]


def load_entries(file: Path) -> list[FaqEntry]:
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeError(_yaml_error(file, exc)) from exc
    except UnicodeDecodeError as exc:
        raise KnowledgeError(f"{file}: not UTF-8: {exc}") from exc
    if document is None:
        return []
    if not isinstance(document, list):
        raise KnowledgeError(f"{file}: expected a list of entries at the top level")
    return [
        _entry(file, index, raw)
        for index, raw in enumerate(document)
        if not (isinstance(raw, Mapping) and "extends" in raw)
    ]


def _entry(file: Path, index: int, raw: Any) -> FaqEntry:
    where = f"{file}: entry {index + 1}"
    if not isinstance(raw, Mapping):
        raise KnowledgeError(f"{where}: expected a mapping with id, questions and answer")
    entry_id = raw.get("id")
    if not isinstance(entry_id, str | int) or not str(entry_id).strip():
        raise KnowledgeError(f"{where}: 'id' is missing")
    where = f"{file}: entry {entry_id!r}"
    questions = _questions(where, raw.get("questions"))
    answers = _localised(where, "answer", raw.get("answer"))
    titles = _localised(where, "title", raw["title"]) if "title" in raw else ()
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise KnowledgeError(f"{where}: 'tags' must be a list of strings")
    try:
        return FaqEntry(
            id=str(entry_id).strip(),
            questions=questions,
            answers=answers,
            titles=titles,
            tags=tuple(tags),
        )
    except KnowledgeError as exc:
        raise KnowledgeError(f"{where}: {exc}") from exc


def _questions(where: str, raw: Any) -> tuple[str, ...]:
    if isinstance(raw, Mapping):
        groups: Iterable[Any] = raw.values()
    elif isinstance(raw, list):
        groups = [raw]
    else:
        raise KnowledgeError(
            f"{where}: 'questions' must be a list or a mapping of language to list"
        )
    questions: list[str] = []
    for group in groups:
        if not isinstance(group, list) or not all(isinstance(q, str) for q in group):
            raise KnowledgeError(f"{where}: every question must be a string")
        questions.extend(q.strip() for q in group if q.strip())
    if not questions:
        raise KnowledgeError(f"{where}: 'questions' is empty")
    return tuple(questions)


def _localised(where: str, key: str, raw: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(raw, str) and raw.strip():
        return ((_DEFAULT_LANGUAGE, raw.strip()),)
    if isinstance(raw, Mapping) and raw:
        pairs = []
        for lang, text in raw.items():
            if not isinstance(text, str) or not text.strip():
                raise KnowledgeError(f"{where}: '{key}.{lang}' must be non-empty text")
            pairs.append((str(lang), text.strip()))
        return tuple(pairs)
    raise KnowledgeError(f"{where}: '{key}' must be text or a mapping of language to text")


def load_synonyms(path: Path, *, shipped: bool = True) -> dict[str, str]:
    """The synonym table of a knowledge-base folder (``synonyms.yaml``), variant → canonical,
    over those admins accepted from suggestions (``learned_synonyms.yaml``) and the
    after-sales words RelayDesk ships (``shipped``); the folder's own win.

    The file maps each canonical word to the variants customers use::

        退款: [退钱, 返款]
        refund: [money back, reimbursement]
    """
    table = dict(shipped_synonyms()) if shipped else {}
    folder = path if path.is_dir() else path.parent
    for name in (LEARNED_SYNONYMS_FILE, SYNONYMS_FILE):
        if (folder / name).exists():
            table.update(_synonyms_file(folder / name))
    return table


@lru_cache(maxsize=1)
def shipped_synonyms() -> Mapping[str, str]:
    """Regional and colloquial after-sales words (mainland, Taiwan, Hong Kong) that
    every knowledge base understands: ``knowledge/after_sales_synonyms.yaml``."""
    return MappingProxyType(_synonyms_file(Path(__file__).with_name(SHIPPED_SYNONYMS)))


class _UniqueKeys(yaml.SafeLoader):
    """YAML that refuses a key given twice: the second list of variants would
    silently replace the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _synonyms_file(file: Path) -> dict[str, str]:
    try:
        document = yaml.load(file.read_text(encoding="utf-8"), Loader=_UniqueKeys) or {}
    except yaml.YAMLError as exc:
        raise KnowledgeError(_yaml_error(file, exc)) from exc
    if not isinstance(document, Mapping):
        raise KnowledgeError(f"{file}: expected a mapping of word to its variants")
    table: dict[str, str] = {}
    for canonical, variants in document.items():
        if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
            raise KnowledgeError(f"{file}: {canonical!r} needs a list of variants")
        for variant in variants:
            if variant.strip():
                table[variant.strip()] = str(canonical)
    return table


def fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the knowledge base's files: changes when
    any file is added, removed or edited."""
    try:
        files = knowledge_files(path)
    except KnowledgeError:
        return ()
    folder = path if path.is_dir() else path.parent
    stats = []
    for file in [*files, folder / SYNONYMS_FILE, folder / LEARNED_SYNONYMS_FILE]:
        try:
            stat = file.stat()
        except FileNotFoundError:
            continue
        stats.append((file.name, stat.st_size, stat.st_mtime_ns))
    return tuple(stats)


def _yaml_error(file: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"{file}:{mark.line + 1}: not valid YAML: {problem}"
    return f"{file}: not valid YAML: {problem}"


_LOADERS = {".yaml": load_entries, ".yml": load_entries, ".csv": load_csv, ".md": load_markdown}
