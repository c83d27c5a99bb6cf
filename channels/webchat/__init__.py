"""The web-chat channel: chat page, embeddable widget, visitor websockets."""

from channels.webchat.channel import WebChatChannel, WebChatSettings
from channels.webchat.stream import MemoryVisitorStream, VisitorStream
from channels.webchat.tokens import VisitorTokens

__all__ = [
    "MemoryVisitorStream",
    "VisitorStream",
    "VisitorTokens",
    "WebChatChannel",
    "WebChatSettings",
]
