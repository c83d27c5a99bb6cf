"""The API channel: any messaging app bridged over signed HTTP."""

from typing import TYPE_CHECKING

from channels.lazy import lazily

if TYPE_CHECKING:
    from channels.api.channel import ApiChannel
    from channels.api.settings import ApiChannelSettings
    from channels.api.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ApiChannel",
    "ApiChannelSettings",
    "sign",
    "verify",
]

__getattr__ = lazily(
    __name__,
    {
        "ApiChannel": "channel",
        "ApiChannelSettings": "settings",
        "SIGNATURE_HEADER": "signing",
        "TIMESTAMP_HEADER": "signing",
        "sign": "signing",
        "verify": "signing",
    },
)
