"""The questions in a customer's message: one message (an email especially) often
asks two things, or wraps one question in its story ("I returned my shoes on
Monday. How long does a refund take?"). The bot matches each question on its own,
so the story does not drown the question and one question of two is never
answered as if it were the whole."""

from __future__ import annotations

import re

from knowledge.normalise import tokens

__all__ = ["asking_clause", "asks_the_customer", "is_question", "questions_in", "sentences"]

# A sentence ends after a terminal mark (either width), a full stop before a space
# (not the one in "3.5 kg") or at a line break; "？！" ends one sentence, not two.
_SENTENCE_END = re.compile(r"(?<=[!?。！？;；…])(?![!?。！？;；…])|(?<=\.)(?=\s)|\n+")
_WORDS = re.compile(r"[^\W_]")
_ASKS_EN = re.compile(
    r"^\s*(?:and\s+|also\s+|so\s+|but\s+)?(?:how|what|when|where|why|which|who|whom|whose|"
    r"can|could|do|does|did|is|are|was|were|will|would|should|shall|may|have|has|am)\b",
    re.IGNORECASE,
)
# Chinese asks with a final particle or a question word anywhere in the sentence.
_ASKS_ZH = re.compile(
    r"[吗嗎呢么麼]\s*$|怎么|怎麼|如何|为什么|為什麼|什么|什麼|多久|多少|几天|幾天|哪里|哪裡|哪儿|"
    r"哪個|哪个|能不能|可不可以|可唔可以|是不是|有没有|有沒有|是否|咋|点样|點樣|几时|幾時"
)
# A question made only of these (as the matcher's tokens: simplified, stemmed) asks
# for help in general, not about anything.
_GENERIC = frozenset(
    {"help", "assist", "question", "know", "tell", "anyone", "someone", "something"}
    | set("帮忙问题能下事个人有在")
)


_CLAUSE_END = re.compile(r"[，,、]")


def sentences(text: str) -> list[str]:
    """The message's sentences, in order, stripped; those without a word dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and _WORDS.search(s)]


def is_question(sentence: str) -> bool:
    """Whether ``sentence`` asks something: a question mark, a question word or
    (Chinese) a question particle."""
    stripped = sentence.strip()
    if not stripped:
        return False
    if stripped.endswith(("?", "？")):
        return True
    return bool(_ASKS_ZH.search(stripped) or _ASKS_EN.match(stripped))


def questions_in(text: str) -> list[str]:
    """The sentences of ``text`` that ask about something, in order, each once (a
    bare "can you help?" asks about nothing and is left out)."""
    found: dict[tuple[str, ...], str] = {}
    for sentence in sentences(text):
        if not is_question(sentence):
            continue
        content = tuple(t for t in tokens(sentence) if t not in _GENERIC)
        if content:
            found.setdefault(content, sentence)  # the same question twice is one
    return list(found.values())


def asking_clause(sentence: str) -> str | None:
    """The last clause of ``sentence`` that asks something, when the sentence has more
    than one clause (搬家了，刚下的订单地址还是旧的，能帮我改一下吗 → 能帮我改一下吗)."""
    clauses = [c.strip() for c in _CLAUSE_END.split(sentence) if _WORDS.search(c)]
    if len(clauses) < 2:
        return None
    asking = [c for c in clauses if is_question(c)]
    return asking[-1] if asking else None


_QUESTION = re.compile(r"[?？]\W{0,3}\s*$")


def asks_the_customer(text: str) -> bool:
    """Does a reply end by asking the customer something (the desk then waits on them)?"""
    return bool(_QUESTION.search(text.strip()))
