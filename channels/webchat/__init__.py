"""The web-chat channel: chat page, embeddable widget, visitor websockets."""

from typing import TYPE_CHECKING

from channels.lazy import lazily

if TYPE_CHECKING:
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

__getattr__ = lazily(
    __name__,
    {
        "MemoryRateLimits": "limits",
        "MemoryVisitorStream": "stream",
        "RateLimit": "settings",
        "RateLimits": "limits",
        "VisitorStream": "stream",
        "VisitorTokens": "tokens",
        "WebChatChannel": "channel",
        "WebChatSettings": "settings",
    },
)
