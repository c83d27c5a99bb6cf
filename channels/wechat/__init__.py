"""WeChat: an Official Account (公众号) through its callback and the customer-service
message API (客服消息), and WeCom customer service (微信客服) through its callback and
kf/sync_msg, on wechatpy."""

from typing import TYPE_CHECKING

from channels.lazy import lazily

if TYPE_CHECKING:
    from channels.wechat.api import (
        CursorStore,
        MemoryChannelState,
        TokenStore,
        WeChatApi,
        WeChatApiError,
    )
    from channels.wechat.kf import WeComKfChannel
    from channels.wechat.official import OfficialAccountChannel
    from channels.wechat.settings import OfficialAccountSettings, WeComKfSettings

__all__ = [
    "CursorStore",
    "MemoryChannelState",
    "OfficialAccountChannel",
    "OfficialAccountSettings",
    "TokenStore",
    "WeChatApi",
    "WeChatApiError",
    "WeComKfChannel",
    "WeComKfSettings",
]

__getattr__ = lazily(
    __name__,
    {
        "CursorStore": "api",
        "MemoryChannelState": "api",
        "OfficialAccountChannel": "official",
        "OfficialAccountSettings": "settings",
        "TokenStore": "api",
        "WeChatApi": "api",
        "WeChatApiError": "api",
        "WeComKfChannel": "kf",
        "WeComKfSettings": "settings",
    },
)
