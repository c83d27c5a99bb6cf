"""Split long answers to fit Telegram's 4096-character messages, on paragraph boundaries."""

from __future__ import annotations

__all__ = ["TELEGRAM_LIMIT", "split_text"]

TELEGRAM_LIMIT = 4096
_SEPARATORS = ("\n\n", "\n", " ")


def split_text(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Parts of at most ``limit`` characters: whole paragraphs where they fit, else
    whole lines, else words; only a word longer than a message is cut."""
    parts: list[str] = []
    current = ""
    for separator, piece in _pieces(text, limit, _SEPARATORS):
        joined = f"{current}{separator}{piece}" if current else piece
        if len(joined) <= limit:
            current = joined
        else:
            parts.append(current)
            current = piece
    if current or not parts:
        parts.append(current)
    return [p.strip() for p in parts if p.strip()] or [text[:limit]]


def _pieces(
    text: str, limit: int, separators: tuple[str, ...], lead: str = ""
) -> list[tuple[str, str]]:
    """(separator before it, piece) pairs; every piece fits in ``limit``."""
    if len(text) <= limit:
        return [(lead, text)]
    if not separators:
        cuts = [text[i : i + limit] for i in range(0, len(text), limit)]
        return [(lead, cuts[0])] + [("", cut) for cut in cuts[1:]]
    separator, finer = separators[0], separators[1:]
    pieces: list[tuple[str, str]] = []
    for index, chunk in enumerate(text.split(separator)):
        pieces.extend(_pieces(chunk, limit, finer, lead if index == 0 else separator))
    return pieces
