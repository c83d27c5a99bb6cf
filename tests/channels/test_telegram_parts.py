"""Telegram's sending rules on their own: flood slots and message splitting."""

from __future__ import annotations

import pytest

from channels.telegram.flood import FloodControl
from channels.telegram.split import split_text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_message_per_chat_per_second_and_thirty_overall() -> None:
    clock = Clock()
    flood = FloodControl(per_chat_interval=1.0, per_second=30.0, clock=clock)
    # Three replies to one chat: a second apart.
    assert [round(flood.reserve(1), 3) for _ in range(3)] == [0.0, 1.0, 2.0]
    # Sixty chats at once: spread over two seconds, 30 per second.
    other = FloodControl(per_chat_interval=1.0, per_second=30.0, clock=clock)
    delays = [other.reserve(chat) for chat in range(100, 160)]
    assert delays[0] == 0.0
    assert delays[29] == pytest.approx(29 / 30) and delays[30] == pytest.approx(1.0)
    assert delays[59] == pytest.approx(59 / 30)


def test_a_chat_told_to_wait_waits() -> None:
    clock = Clock()
    flood = FloodControl(per_chat_interval=1.0, per_second=30.0, clock=clock)
    flood.hold(7, 5.0)
    assert flood.reserve(7) == pytest.approx(5.0)
    assert flood.reserve(8) == pytest.approx(1 / 30)
    clock.now += 10
    assert flood.reserve(7) == 0.0


def test_limits_off_means_no_waiting() -> None:
    flood = FloodControl(per_chat_interval=0, per_second=0, clock=Clock())
    assert {flood.reserve(1) for _ in range(100)} == {0.0}


@pytest.mark.parametrize("length", [1, 4096, 4097, 5000, 12_000])
def test_split_keeps_every_word_and_the_limit(length: int) -> None:
    words = ("word " * (length // 5 + 1))[:length].strip()
    parts = split_text(words)
    assert all(len(p) <= 4096 for p in parts)
    assert " ".join(parts).split() == words.split()


def test_split_prefers_paragraphs_then_lines() -> None:
    paragraph = "x" * 3000
    assert split_text(f"{paragraph}\n\n{paragraph}") == [paragraph, paragraph]
    lines = "\n".join(["y" * 1000] * 5)
    parts = split_text(lines)
    assert len(parts) == 2 and parts[0] == "\n".join(["y" * 1000] * 4)
