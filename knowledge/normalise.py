"""Text normalisation for matching, aware of Chinese and English.

NFKC (full-width to half-width), case folding, traditional Chinese to simplified
(OpenCC, with Taiwan phrases: 軟體 → 软件), the knowledge base's synonyms
(保固 → 保修, money back → refund), punctuation removed, politeness filler and
question words dropped, and Chinese split into characters so that fuzzy token
comparison works without a segmenter.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

import opencc

__all__ = [
    "Normaliser",
    "chinese_script",
    "detect_language",
    "fold",
    "in_script",
    "normalise",
    "to_script",
    "tokens",
]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)

# Multi-character Chinese filler, longest first so 请问一下 goes before 请问.
_ZH_FILLER = sorted(
    [
        "请问一下",
        "请问",
        "你好",
        "您好",
        "麻烦",
        "谢谢",
        "一下",
        "怎么办",
        "怎么样",
        "怎么",
        "如何",
        "怎样",
        "可以",
        "能不能",
        "是不是",
        "为什么",
        "什么",
        "我想",
        "我要",
        "我的",
        "我们",
        "你们",
        "客服",
        "亲",
    ],
    key=len,
    reverse=True,
)
_ZH_PARTICLES = set("吗呢啊吧呀哦嘛的了我")

_EN_STOPWORD_TEXT = """
a an the i me my mine we our you your it its is are was were be been am do does did
can could would should will shall may might must to of in on at for from by with
and or but if so that this these those there here what which who whom how why when
where please hi hello hey thanks thank pls plz just about have has had get got
any some im i'm ive i've dont don't cant can't want like need
"""
_EN_STOPWORDS = frozenset(_EN_STOPWORD_TEXT.split())


def detect_language(text: str) -> str:
    """``zh`` if the text has any Chinese character, else ``en``."""
    return "zh" if _CJK.search(text) else "en"


@lru_cache(maxsize=1)
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("tw2sp.json")


@lru_cache(maxsize=4)
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


# Cantonese words a Hong Kong customer writes and a Taiwanese one does not.
_CANTONESE = re.compile(r"[係嘅唔咗冇喺佢啲嚟咁]")


def chinese_script(text: str) -> str | None:
    """``hant-hk`` / ``hant-tw`` when ``text`` is written in traditional characters
    (Hong Kong when it reads as Cantonese), ``hans`` for simplified, None without Chinese."""
    if not _CJK.search(text):
        return None
    if _converter("t2s.json").convert(text) == text:
        return "hans"
    return "hant-hk" if _CANTONESE.search(text) else "hant-tw"


def in_script(text: str, script: str | None) -> str:
    """Simplified ``text`` written in ``script`` (with the region's usual words)."""
    if script == "hant-tw":
        return str(_converter("s2twp.json").convert(text))
    if script == "hant-hk":
        return str(_converter("s2hk.json").convert(text))
    return text


def to_script(text: str, script: str | None) -> str:
    """``text``, written in either script, in ``script`` (None: as it is)."""
    if script is None or not _CJK.search(text):
        return text
    return in_script(str(_converter("t2s.json").convert(text)), script)


class Normaliser:
    """The matching form of a text; ``synonyms`` maps a variant to its canonical form."""

    def __init__(self, synonyms: Mapping[str, str] | None = None) -> None:
        self.synonyms = dict(synonyms or {})
        # Longest variants first, so "money back guarantee" wins over "money back".
        # Chinese variants are replaced as substrings, others as whole words (their
        # patterns compiled once: this runs on every question the bot reads).
        self._replacements: list[tuple[str | re.Pattern[str], str]] = [
            (
                variant
                if _CJK.search(variant)
                else re.compile(rf"(?<![^\W_]){re.escape(variant)}(?![^\W_])"),
                canonical,
            )
            for variant, canonical in sorted(
                (
                    (_fold(variant), _fold(canonical))
                    for variant, canonical in self.synonyms.items()
                ),
                key=lambda pair: len(pair[0]),
                reverse=True,
            )
        ]

    def __call__(self, text: str) -> str:
        return " ".join(self.tokens(text))

    def fold(self, text: str) -> str:
        """Width, case and script folded, synonyms applied; every word and mark kept."""
        return self._substitute(_fold(text))

    def tokens(self, text: str) -> list[str]:
        return _content_tokens(self._substitute(_fold(text)))

    def both(self, text: str) -> tuple[str, str]:
        """``(self(text), self.fold(text))``, folding and substituting once."""
        folded = self.fold(text)
        return " ".join(_content_tokens(folded)), folded

    def _substitute(self, text: str) -> str:
        for variant, canonical in self._replacements:
            if isinstance(variant, str):
                text = text.replace(variant, canonical)
            else:
                text = variant.sub(canonical, text)
        return text


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _to_simplified().convert(text) if _CJK.search(text) else text


def fold(text: str) -> str:
    """``text`` with width, case and script folded (traditional → simplified), nothing else."""
    return _fold(text)


_DEFAULT = Normaliser()


def normalise(text: str) -> str:
    """The matching form of ``text`` without synonyms: tokens joined by single spaces."""
    return _DEFAULT(text)


def tokens(text: str) -> list[str]:
    """Content tokens: Chinese characters one by one, other words whole and lightly stemmed."""
    return _DEFAULT.tokens(text)


def _content_tokens(text: str) -> list[str]:
    for filler in _ZH_FILLER:
        text = text.replace(filler, " ")
    result: list[str] = []
    for match in _WORD.finditer(text):
        token = match.group()
        if len(token) == 1 and _CJK.match(token):
            if token not in _ZH_PARTICLES:
                result.append(token)
            continue
        if token in _EN_STOPWORDS:
            continue
        result.append(_stem(token))
    return result


def _stem(word: str) -> str:
    # Plural and simple verb endings only: enough for "items"/"item", "returning"/"return".
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word
