"""What a customer's words say beyond the question: asks for a person, complains, greets."""

from __future__ import annotations

import re

from knowledge.normalise import detect_language, fold

__all__ = [
    "asks_for_human",
    "complains",
    "is_closing_remark",
    "is_greeting",
    "is_thanks",
    "says_nothing",
]

# Phrases that ask for a person wherever they appear.
_HUMAN_PHRASES = (
    "转人工",
    "要人工",
    "要真人",
    "人工客服",
    "人工服务",
    "找人工",
    "真人",
    "转接客服",
    "找客服",
    "联系客服",
    "talk to a person",
    "talk to a human",
    "speak to a person",
    "speak to a human",
    "speak to someone",
    "talk to someone",
    "real person",
    "human agent",
    "live agent",
    "customer service representative",
    "talk to an agent",
    "speak to an agent",
    "connect me to an agent",
)
# Words that ask for a person only when they are (nearly) the whole message:
# "客服" alone is a request, "客服几点上班" is a question about opening hours.
_HUMAN_WORDS = ("人工", "客服", "agent", "human", "person", "operator", "representative")
_REQUEST_FILLER = frozenset(
    [
        "我",
        "要",
        "找",
        "想",
        "请",
        "转",
        "接",
        "联系",
        "个",
        "给",
        "一",
        "下",
        "吧",
        "呢",
        "啊",
        "please",
        "pls",
        "i",
        "want",
        "need",
        "a",
        "an",
        "the",
        "to",
        "speak",
        "talk",
        "with",
        "can",
        "get",
        "me",
        "give",
        "now",
        "real",
    ]
)

_COMPLAINT_WORDS = (
    "投诉",
    "差评",
    "骗子",
    "垃圾",
    "太差",
    "欺诈",
    "12315",
    "律师",
    "曝光",
    "气死",
    "complaint",
    "complain",
    "lawyer",
    "scam",
    "fraud",
    "unacceptable",
    "ridiculous",
    "worst",
    "terrible",
    "disgusting",
    "furious",
    "sue you",
)
_GREETINGS = frozenset(
    [
        "你好",
        "您好",
        "在吗",
        "在不在",
        "哈喽",
        "嗨",
        "hi",
        "hello",
        "hey",
        "hiya",
        "morning",
        "早上好",
        "晚上好",
        "下午好",
        "good",
        "morning",
        "good",
        "afternoon",
        "good",
        "evening",
        "anyone",
        "there",
    ]
)
_THANKS = frozenset(
    [
        "谢谢",
        "多谢",
        "感谢",
        "谢啦",
        "好的谢谢",
        "thanks",
        "thank",
        "you",
        "thx",
        "ty",
        "cheers",
        "ok",
        "thanks",
    ]
)
_STRIP = re.compile(r"[\W_]+", re.UNICODE)


def _fold(text: str) -> str:
    """Width, case and script folded: 轉人工 is 转人工."""
    return fold(text).strip()


def _bare(text: str) -> str:
    return _STRIP.sub(" ", _fold(text)).strip()


# A question about when people are there ("人工客服几点下班", "what time do your agents
# finish") is answered with the service hours, unless it also asks for one ("转人工").
_ASKS_WHEN = re.compile(
    r"几点|什么时候|啥时候|几时|时间|上班|下班|营业|when\b|what time|hours|open\b|until"
)
_ASKS_FOR = re.compile(
    r"转|找|联系|联络|接通|我要|我想|给我|talk|speak|connect|transfer|put me|get me|give me"
    r"|want|need|please|pls"
)


# "I want a human" inside a longer message ("I've waited for hours, I want a human").
_WANTS_A_PERSON = re.compile(
    r"(?:(?<!do )(?<!will )(?<!should )\bi\s*(?:really\s+|just\s+)?"
    r"(?:want|need|would like|'d like)|\bget me|\bgive me)\s+"
    r"(?:to\s+(?:talk|speak)\s+(?:to|with)\s+)?"
    r"(?:a|an|some)?\s*(?:real\s+|live\s+)?(?:human|person|agent|representative)\b"
)


def asks_for_human(text: str) -> bool:
    folded = _fold(text)
    if _WANTS_A_PERSON.search(folded):
        return True
    if _ASKS_WHEN.search(folded) and not _ASKS_FOR.search(folded):
        return False
    if any(phrase in folded for phrase in _HUMAN_PHRASES):
        return True
    bare = _bare(text)
    for word in _HUMAN_WORDS:
        if re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", bare):
            remainder = bare.replace(word, " ")
            for filler in sorted(_REQUEST_FILLER, key=len, reverse=True):
                if filler.isascii():
                    remainder = re.sub(rf"(?<![a-z]){filler}(?![a-z])", " ", remainder)
                else:
                    remainder = remainder.replace(filler, " ")
            if not remainder.strip():
                return True
    return False


def complains(text: str) -> bool:
    folded = _fold(text)
    return any(word in folded for word in _COMPLAINT_WORDS)


def is_greeting(text: str) -> bool:
    return _bare(text) in _GREETINGS


def is_thanks(text: str) -> bool:
    return _bare(text) in _THANKS


# What a customer says to close: thanks, acknowledgement, praise. A closing remark is
# made of these words alone (or of emoji); a negation, a question or anything else
# ("还是不行", "still broken", "what about my invoice") asks for something.
_CLOSING_ZH = sorted(
    [
        "非常感谢",
        "谢谢你们",
        "谢谢您",
        "谢谢你",
        "谢谢",
        "多谢",
        "感谢",
        "谢啦",
        "谢了",
        "辛苦了",
        "辛苦",
        "好的",
        "好滴",
        "好嘞",
        "收到",
        "知道了",
        "明白了",
        "明白",
        "了解了",
        "了解",
        "懂了",
        "可以了",
        "解决了",
        "搞定了",
        "没事了",
        "行",
        "嗯嗯",
        "嗯",
        "哦",
        "噢",
        "好",
        "回复很快",
        "回复好快",
        "速度很快",
        "效率很高",
        "很快",
        "很好",
        "服务很好",
        "服务好",
        "满意",
        "很满意",
        "棒",
        "赞",
        "太棒了",
        "非常",
        "真",
        "很",
        "了",
        "啊",
        "呀",
        "哈",
        "哈哈",
        "啦",
        "哦哦",
        "的",
        "你们",
        "您",
        "你",
        "客服",
    ],
    key=len,
    reverse=True,
)
_CLOSING_EN = frozenset(
    [
        "thanks",
        "thank",
        "you",
        "thx",
        "ty",
        "cheers",
        "ok",
        "okay",
        "k",
        "kk",
        "great",
        "good",
        "perfect",
        "awesome",
        "excellent",
        "nice",
        "cool",
        "fine",
        "got",
        "it",
        "that",
        "works",
        "worked",
        "solved",
        "sorted",
        "all",
        "done",
        "appreciate",
        "appreciated",
        "very",
        "much",
        "so",
        "a",
        "lot",
        "lots",
        "helpful",
        "fast",
        "quick",
        "reply",
        "replies",
        "service",
        "support",
        "sounds",
        "wonderful",
        "brilliant",
        "amazing",
        "lovely",
        "super",
        "have",
        "day",
        "bye",
        "goodbye",
        "see",
        "ya",
        "the",
        "for",
        "your",
        "help",
        "again",
        "really",
        "understood",
        "noted",
        "alright",
        "right",
        "sure",
    ]
)


def is_closing_remark(text: str) -> bool:
    """Whether ``text`` only closes ("回复很快，谢谢", "ok thanks!", "👍"): said after
    a resolution it is a comment on it, not a new request."""
    if "?" in text or "？" in text or asks_for_human(text) or complains(text):
        return False
    bare = _bare(text)
    if not bare:
        return bool(text.strip())  # emoji or punctuation alone
    for word in bare.split():
        if any("\u3400" <= ch <= "\u9fff" for ch in word):
            for phrase in _CLOSING_ZH:
                word = word.replace(phrase, "")
            if word:
                return False
        elif word not in _CLOSING_EN:
            return False
    return True


# A request for a person this short says nothing else ("转人工客服", "I want a human").
_BARE_REQUEST_CHARS = 8
_BARE_REQUEST_WORDS = 8


def says_nothing(text: str) -> bool:
    """A greeting, a thank-you or a bare request for a person: nothing of the matter."""
    text = text.strip()
    if not text or is_greeting(text) or is_thanks(text):
        return True
    short = (
        len(text) <= _BARE_REQUEST_CHARS
        if detect_language(text) == "zh"
        else len(text.split()) <= _BARE_REQUEST_WORDS
    )
    return short and asks_for_human(text)
