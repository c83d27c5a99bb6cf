"""The Telegram channel (python-telegram-bot), webhook or polling."""

from typing import TYPE_CHECKING

from channels.lazy import lazily

if TYPE_CHECKING:
    from channels.telegram.channel import TelegramChannel
    from channels.telegram.settings import TelegramSettings
    from channels.telegram.split import split_text

__all__ = ["TelegramChannel", "TelegramSettings", "split_text"]

__getattr__ = lazily(
    __name__,
    {
        "TelegramChannel": "channel",
        "TelegramSettings": "settings",
        "split_text": "split",
    },
)
