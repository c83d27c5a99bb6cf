"""The API channel: any messaging app bridged over signed HTTP."""

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
