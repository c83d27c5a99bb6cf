"""WeChat's settings: ``channels.wechat`` (an Official Account) and
``channels.wecom_kf`` (a WeCom customer-service account) in config.yaml validate
into these (docs/wechat.md)."""

from __future__ import annotations

from pydantic import Field

from channels.settings import ChannelSettings

__all__ = ["OfficialAccountSettings", "WeComKfSettings"]


class _SignedCallbacks(ChannelSettings):
    """What both WeChat channels share: signed (and encrypted) callbacks, an API."""

    enabled: bool = False
    # The callback's Token (3-32 letters and digits) and EncodingAESKey (43 characters).
    token: str = ""
    encoding_aes_key: str = ""
    callback_path: str
    # A signed callback whose timestamp is further than this from now is refused.
    callback_window_seconds: float = Field(default=600, gt=0)
    api_timeout_seconds: float = Field(default=10.0, gt=0)

    def _callback_problem(self, *, aes_required: bool) -> str | None:
        from channels.wechat.api import callback_problem  # wechatpy: only when used

        return callback_problem(
            self.token, self.encoding_aes_key, self.callback_path, aes_required=aes_required
        )


class OfficialAccountSettings(_SignedCallbacks):
    """A WeChat Official Account (公众号); safe mode when it has an EncodingAESKey."""

    app_id: str = ""
    app_secret: str = ""
    callback_path: str = "/wechat/callback"
    api_base_url: str = "https://api.weixin.qq.com"
    # How long a callback waits for its message to be stored before it lets WeChat
    # send it again (WeChat gives up on an answer after five seconds).
    ack_within_seconds: float = Field(default=4.0, gt=0, lt=5)

    def problem(self) -> str | None:
        if not self.app_id or not self.app_secret:
            return "app_id and app_secret are required when the channel is enabled"
        return self._callback_problem(aes_required=False)


class WeComKfSettings(_SignedCallbacks):
    """A WeCom customer-service account (微信客服); its callbacks are always encrypted."""

    corp_id: str = ""
    # The 微信客服 application's Secret (管理工具 → 微信客服 → API), and the account
    # (open_kfid, wk...) this channel answers for.
    secret: str = ""
    open_kfid: str = ""
    callback_path: str = "/wecom/kf/callback"
    api_base_url: str = "https://qyapi.weixin.qq.com"

    def problem(self) -> str | None:
        if not self.corp_id or not self.secret or not self.open_kfid:
            return "corp_id, secret and open_kfid are required when enabled"
        return self._callback_problem(aes_required=True)
