"""The web-chat channel: chat page, embeddable widget, visitor websockets."""

from channels.webchat.channel import MemoryRateLimits, RateLimits, WebChatChannel, WebChatSettings
from channels.webchat.stream import MemoryVisitorStream, VisitorStream
from channels.webchat.tokens import VisitorTokens

__all__ = [
    "MemoryRateLimits",
    "MemoryVisitorStream",
    "RateLimits",
    "VisitorStream",
    "VisitorTokens",
    "WebChatChannel",
    "WebChatSettings",
]
