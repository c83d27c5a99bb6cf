"""The FAQ knowledge base: entries, loading, normalisation and matching. Imports nothing of ours."""

from knowledge.checks import Collision, find_collisions
from knowledge.entries import FaqEntry, KnowledgeError
from knowledge.learned import LEARNED_FILE, learn
from knowledge.learned_synonyms import (
    Suggestion,
    accept_suggestion,
    dismiss_suggestion,
    pending_suggestions,
    suggest_synonyms,
)
from knowledge.loader import fingerprint, load_entries, load_folder, load_synonyms
from knowledge.matcher import Candidate, Matcher
from knowledge.normalise import (
    Normaliser,
    chinese_script,
    detect_language,
    in_script,
    normalise,
    to_script,
)

__all__ = [
    "LEARNED_FILE",
    "Candidate",
    "Collision",
    "FaqEntry",
    "KnowledgeError",
    "Matcher",
    "Normaliser",
    "Suggestion",
    "accept_suggestion",
    "chinese_script",
    "detect_language",
    "dismiss_suggestion",
    "find_collisions",
    "fingerprint",
    "in_script",
    "learn",
    "load_entries",
    "load_folder",
    "load_synonyms",
    "normalise",
    "pending_suggestions",
    "suggest_synonyms",
    "to_script",
]
