"""WeChat: an Official Account (公众号) through its callback and the customer-service
message API (客服消息), on wechatpy."""

from channels.wechat.api import MemoryTokenStore, TokenStore, WeChatApi, WeChatApiError
from channels.wechat.official import OfficialAccountChannel, OfficialAccountSettings

__all__ = [
    "MemoryTokenStore",
    "OfficialAccountChannel",
    "OfficialAccountSettings",
    "TokenStore",
    "WeChatApi",
    "WeChatApiError",
]
