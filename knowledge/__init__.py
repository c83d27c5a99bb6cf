"""The FAQ knowledge base: entries, loading, normalisation and matching. Imports nothing of ours."""

from knowledge.entries import FaqEntry, KnowledgeError
from knowledge.loader import load_entries, load_folder
from knowledge.matcher import Candidate, Matcher
from knowledge.normalise import detect_language, normalise

__all__ = [
    "Candidate",
    "FaqEntry",
    "KnowledgeError",
    "Matcher",
    "detect_language",
    "load_entries",
    "load_folder",
    "normalise",
]
