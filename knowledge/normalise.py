"""Text normalisation for matching, aware of Chinese and English.

NFKC (full-width to half-width), case folding, punctuation removed, politeness
filler and question words dropped, and Chinese split into characters so that
fuzzy token comparison works without a segmenter.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["detect_language", "normalise", "tokens"]

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


def normalise(text: str) -> str:
    """The matching form of ``text``: tokens joined by single spaces."""
    return " ".join(tokens(text))


def tokens(text: str) -> list[str]:
    """Content tokens: Chinese characters one by one, other words whole and lightly stemmed."""
    text = unicodedata.normalize("NFKC", text).casefold()
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
