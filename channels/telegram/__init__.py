"""The Telegram channel (python-telegram-bot), webhook or polling."""

from channels.telegram.channel import TelegramChannel
from channels.telegram.settings import TelegramSettings
from channels.telegram.split import split_text

__all__ = ["TelegramChannel", "TelegramSettings", "split_text"]
