"""The web-chat channel: chat page, embeddable widget, visitor websockets."""

from channels.webchat.channel import WebChatChannel
from channels.webchat.limits import MemoryRateLimits, RateLimits
from channels.webchat.settings import RateLimit, WebChatSettings
from channels.webchat.stream import MemoryVisitorStream, VisitorStream
from channels.webchat.tokens import VisitorTokens

__all__ = [
    "MemoryRateLimits",
    "MemoryVisitorStream",
    "RateLimit",
    "RateLimits",
    "VisitorStream",
    "VisitorTokens",
    "WebChatChannel",
    "WebChatSettings",
]
