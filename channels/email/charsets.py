"""Bytes to text for mail that lies about its charset.

Chinese mail is routinely labelled GB2312 while carrying GBK or GB18030 bytes
(every common client does it), Big5 text uses HKSCS characters, and some
senders declare no charset or an unknown one. We decode with the superset of
the declared charset, then try UTF-8, then detection, and only then replace
what still does not decode, saying so.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from dataclasses import dataclass

import charset_normalizer

__all__ = ["Decoded", "decode_bytes", "decode_header_value"]

# Declared charset → the codec that decodes everything the label is used for.
_SUPERSETS = {
    "gb2312": "gb18030",
    "gb_2312": "gb18030",
    "gb_2312-80": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "csgb2312": "gb18030",
    "chinese": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "cp950": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "ansi_x3.4-1968": "utf-8",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}


# One bad sequence per this many bytes (at least one) in the declared charset is damage;
# more, and the label is wrong.
_BYTES_PER_BAD_SEQUENCE = 100


def _replacement_chars(data: bytes, codec: str) -> int:
    """U+FFFD characters the sender really wrote (in UTF-8 they are EF BF BD)."""
    return data.count("\ufffd".encode()) if codec == "utf-8" else 0


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    # The codec actually used, and whether it was a guess or lossy.
    codec: str
    problem: str | None = None


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _SUPERSETS.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_bytes(data: bytes, declared: str | None) -> Decoded:
    """Decode ``data`` that claims to be in ``declared`` (which may be wrong or missing)."""
    codec = _codec(declared)
    tried: list[str] = []
    for candidate in (codec, "utf-8"):
        if candidate is None or candidate in tried:
            continue
        tried.append(candidate)
        try:
            text = data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
        problem = None
        if codec is None and declared:
            problem = f"unknown charset {declared!r}, decoded as {candidate}"
        elif candidate != codec and declared:
            problem = f"declared {declared!r} but the bytes are {candidate}"
        return Decoded(text, candidate, problem)
    # A label that decodes all but a few bytes is right, and those bytes are damage
    # (a truncated line, a stray byte): detection would read the whole text in some
    # other charset that happens to accept every byte (GB18030 accepts nearly all).
    for candidate in (codec, "utf-8"):
        if candidate is None or (candidate != codec and codec is not None):
            continue
        text = data.decode(candidate, errors="replace")
        damaged = text.count("\ufffd") - _replacement_chars(data, candidate)
        if damaged <= max(1, len(data) // _BYTES_PER_BAD_SEQUENCE):
            what = f"declared {declared!r}" if declared else "no charset declared"
            return Decoded(
                text,
                candidate,
                f"{what}; {damaged} undecodable byte sequence(s) in {candidate} replaced",
            )
    best = charset_normalizer.from_bytes(data).best()
    if best is not None and best.encoding:
        guessed = _codec(best.encoding) or best.encoding
        try:
            return Decoded(
                data.decode(guessed),
                guessed,
                f"declared {declared or 'nothing'}; detected {guessed}",
            )
        except (UnicodeDecodeError, LookupError):
            pass
    fallback = codec or "utf-8"
    return Decoded(
        data.decode(fallback, errors="replace"),
        fallback,
        f"undecodable bytes replaced ({declared or 'no charset'})",
    )


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)\s+(=\?)")
# A fold inside one encoded word (some mailers break a long word across lines): the
# line break and its indent go, so the word is whole again and decodes.
_FOLDED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?(?:[^?\s]|\r?\n[ \t]+)*\?=")
_FOLD = re.compile(r"\r?\n[ \t]+")


def _decode_word(charset: str, encoding: str, payload: str) -> str:
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
    if encoding in "bB":
        raw = payload.encode("ascii", "replace")
        raw += b"=" * (-len(raw) % 4)
        try:
            data = base64.b64decode(raw)
        except (binascii.Error, ValueError):
            return payload
    else:
        data = quopri.decodestring(
            payload.replace("_", " ").encode("ascii", "replace"), header=True
        )
    return decode_bytes(data, charset).text


def decode_header_value(raw: str, fallback: str | None = None) -> str:
    """A header's text: RFC 2047 words and raw 8-bit bytes decoded, folding undone.

    ``raw`` is the value as the parser kept it: 8-bit bytes survive as surrogate
    escapes, which we turn back into bytes and decode like a body, in
    ``fallback`` (the body's charset: clients that send raw 8-bit headers use it).
    """
    value = _FOLDED_WORD.sub(lambda m: _FOLD.sub("", m.group(0)), raw)
    value = re.sub(r"\r?\n[ \t]", " ", value).strip()
    try:
        as_bytes = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        as_bytes = None  # real non-ASCII text already
    if as_bytes is not None and any(b > 0x7F for b in as_bytes):
        value = decode_bytes(as_bytes, fallback).text
    if "=?" not in value:
        return value
    # Whitespace between adjacent encoded words is not part of the text (RFC 2047 §6.2).
    value = _BETWEEN_WORDS.sub(r"\1\2", value)
    return _ENCODED_WORD.sub(lambda m: _decode_word(m.group(1), m.group(2), m.group(3)), value)
