"""What the bot says in its own words, in Chinese and English."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["BotTexts"]


@dataclass(frozen=True, slots=True)
class BotTexts:
    """The bot's fixed phrases; one attribute per phrase, ``(zh, en)``."""

    greeting: tuple[str, str] = (
        "您好！我是智能客服，可以回答退换货、退款、保修、物流等问题。请直接输入您的问题；需要人工时输入“转人工”。",
        "Hello! I can help with returns, refunds, warranty, delivery and more. Type your "
        'question, or "talk to a person" at any time.',
    )
    thanks: tuple[str, str] = (
        "不客气！还有其他问题随时问我。",
        "You're welcome! Ask me anything else at any time.",
    )
    clarify: tuple[str, str] = (
        "您想问的是下面哪一个？",
        "Which of these do you mean?",
    )
    handoff: tuple[str, str] = (
        "已为您转接人工客服，工单号 #{ticket}。客服将在 {due} 前回复您，您可以继续留言补充情况。",
        "A person from our support team will answer by {due}. Your ticket number is "
        "#{ticket}; feel free to add any details here in the meantime.",
    )
    resolved: tuple[str, str] = (
        "本次会话已结束，感谢您的耐心。如有新的问题，直接留言即可。",
        "This conversation is now closed. Thank you for your patience; write again any time.",
    )

    @staticmethod
    def pick(phrase: tuple[str, str], language: str) -> str:
        return phrase[0] if language == "zh" else phrase[1]

    def handoff_notice(self, language: str, *, ticket: int, due: datetime, now: datetime) -> str:
        """The promise made on handoff; ``due`` and ``now`` in the desk's time zone."""
        due_text = due.strftime("%H:%M" if due.date() == now.date() else "%Y-%m-%d %H:%M")
        if due.tzname():
            due_text += f" ({due.tzname()})"
        return self.pick(self.handoff, language).format(ticket=ticket, due=due_text)
