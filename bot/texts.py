"""What the bot says in its own words, in Chinese and English."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from knowledge import in_script

__all__ = ["BotTexts", "preferred_language"]

# "CST" is also America's Central time: China's zone is named the way people say it.
_CHINA = {"Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "Asia/Urumqi", "PRC"}


def _zone_label(at: datetime, zh: bool) -> str | None:
    key = getattr(at.tzinfo, "key", None)
    if key in _CHINA:
        return "北京时间" if zh else "Beijing time"
    return at.tzname()


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
    several: tuple[str, str] = (
        "您问了几个问题，我们一个一个来：先看哪一个？",
        "You asked about several things; let's take them one at a time. Which first?",
    )
    handoff: tuple[str, str] = (
        "已为您转接人工客服，工单号 #{ticket}。客服将在 {due} 前回复您，您可以继续留言补充情况。",
        "A person from our support team will answer by {due}. Your ticket number is "
        "#{ticket}; feel free to add any details here in the meantime.",
    )
    handoff_closed: tuple[str, str] = (
        "已为您转接人工客服，工单号 #{ticket}。现在是非工作时间，我们{opens}上班，客服将在 {due} "
        "前回复您。您可以继续留言补充情况。",
        "We are closed right now and open {opens}; a person from our support team will "
        "answer by {due}. Your ticket number is #{ticket}; feel free to add any details here "
        "in the meantime.",
    )
    handoff_untimed: tuple[str, str] = (
        "已为您转接人工客服，工单号 #{ticket}。客服会尽快回复您，您可以继续留言补充情况。",
        "A person from our support team will answer as soon as possible. Your ticket number "
        "is #{ticket}; feel free to add any details here in the meantime.",
    )
    survey: tuple[str, str] = (
        "本次服务已结束。请为我们的服务打分：1（很不满意）到 5（非常满意），也欢迎留下您的意见。",
        "This conversation is now closed. How did we do? Rate us from 1 (poor) to 5 "
        "(excellent); a comment is welcome too.",
    )
    survey_by_mail: tuple[str, str] = (
        "直接回复本邮件，第一行写一个 1 到 5 的数字即可，后面可以写上您的意见。",
        "Reply to this email with a number from 1 to 5 on the first line; anything after it "
        "is passed on as your comment.",
    )
    survey_link: tuple[str, str] = (
        "或者在这里打分：{url}",
        "Or rate us here: {url}",
    )
    survey_labels: tuple[tuple[str, ...], tuple[str, ...]] = (
        ("1 很不满意", "2 不满意", "3 一般", "4 满意", "5 非常满意"),
        ("1 Poor", "2 Fair", "3 Good", "4 Very good", "5 Excellent"),
    )
    rating_thanks: tuple[str, str] = (
        "感谢您的评价！",
        "Thank you for your rating!",
    )
    follow_up: tuple[str, str] = (
        "您好，这里是客服回访：您之前反映的问题（工单 #{ticket}）现在都解决了吗？如果还有问题，"
        "直接回复这条消息，我们会继续为您处理。",
        "Hello again from the support team: is everything working now after your request "
        "(ticket #{ticket})? If anything is still wrong, just reply to this message and we "
        "will pick it up.",
    )
    resolved: tuple[str, str] = (
        "本次会话已结束，感谢您的耐心。如有新的问题，直接留言即可。",
        "This conversation is now closed. Thank you for your patience; write again any time.",
    )

    @staticmethod
    def pick(phrase: tuple[str, str], language: str) -> str:
        return phrase[0] if language == "zh" else phrase[1]

    @staticmethod
    def when(at: datetime, now: datetime, language: str, *, zone_name: bool = True) -> str:
        """``at`` as a customer reads it: 14:30 today, tomorrow 09:00, else with the date;
        both in the desk's time zone."""
        zh = language == "zh"
        clock = at.strftime("%H:%M")
        if at.date() == now.date():
            text = clock
        elif at.date() == now.date() + timedelta(days=1):
            text = f"明天 {clock}" if zh else f"tomorrow {clock}"
        elif zh:
            text = f"{at.month}月{at.day}日 {clock}"
        else:
            text = at.strftime("%a %d %b %H:%M").replace(" 0", " ")
        label = _zone_label(at, zh) if zone_name else None
        return f"{text} ({label})" if label else text

    @staticmethod
    def opening(at: datetime, now: datetime, language: str) -> str:
        """When the desk opens, to follow "we open": at 09:00 tomorrow / 明天 09:00."""
        clock = at.strftime("%H:%M")
        if language == "zh":
            if at.date() == now.date():
                return f"今天 {clock} "
            if at.date() == now.date() + timedelta(days=1):
                return f"明天 {clock} "
            return f" {at.month}月{at.day}日 {clock} "
        if at.date() == now.date():
            return f"at {clock}"
        if at.date() == now.date() + timedelta(days=1):
            return f"at {clock} tomorrow"
        return f"on {at.strftime('%a %d %b').replace(' 0', ' ')} at {clock}"

    def handoff_notice(
        self,
        language: str,
        *,
        ticket: int,
        due: datetime | None,
        now: datetime,
        opens: datetime | None = None,
        script: str | None = None,
    ) -> str:
        """The promise made on handoff, in the desk's time zone: by when a person answers
        and, outside business hours, when the desk opens (``opens`` later than ``now``)."""
        if due is None:
            text = self.pick(self.handoff_untimed, language).format(ticket=ticket)
        elif opens is not None and opens > now:
            text = self.pick(self.handoff_closed, language).format(
                ticket=ticket,
                due=self.when(due, now, language),
                opens=self.opening(opens, now, language),
            )
        else:
            text = self.pick(self.handoff, language).format(
                ticket=ticket, due=self.when(due, now, language)
            )
        return self.in_script(text, language, script)

    @staticmethod
    def in_script(text: str, language: str, script: str | None) -> str:
        """A Chinese phrase in the customer's script (traditional for Taiwan, Hong Kong)."""
        return in_script(text, script) if language == "zh" else text


# A browser asking for traditional characters (Taiwan, Hong Kong, Macau).
_TRADITIONAL = re.compile(r"^zh-(hant|tw|hk|mo)\b")


def preferred_language(accept_language: str, *, scripts: bool = False) -> str | None:
    """The first of our languages (``zh``, ``en``) a browser's Accept-Language names;
    with ``scripts``, traditional Chinese is ``zh_Hant``."""
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().lower()
        if code.startswith("zh"):
            return "zh_Hant" if scripts and _TRADITIONAL.match(code) else "zh"
        if code.startswith("en"):
            return "en"
    return None
