"""A local WeChat: the Official Account API that RelayDesk calls (access tokens,
customer-service messages, media) and the customer's side, which signs (and in safe
mode encrypts) the callbacks WeChat would POST — through wechatpy, as WeChat does.

Tokens can be expired at will (``expire_tokens``), and the next customer-service
messages can be made to fail with a WeChat error code (``fail_next(45015)``).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import xmltodict  # type: ignore[import-untyped]
from aiohttp import web
from aiohttp.test_utils import TestServer
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto
from wechatpy.utils import WeChatSigner

APP_ID = "wx49f0ab532d5d035a"
SECRET = "wechat-app-secret-0123456789"
TOKEN = "relaydesk123"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
ACCOUNT = "gh_0123456789ab"


@dataclass
class FakeWeChat:
    # Customer-service messages WeChat accepted, as posted.
    sent: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[tuple[str, bytes]] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    token_fetches: int = 0
    # Every access token handed out (none may reach a log line).
    issued: list[str] = field(default_factory=list)
    server: TestServer | None = None
    _valid: set[str] = field(default_factory=set)
    _failures: deque[int] = field(default_factory=deque)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- the test's side -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def expire_tokens(self) -> None:
        """Every token handed out so far stops working (WeChat: 42001)."""
        self._valid.clear()

    def fail_next(self, errcode: int) -> None:
        self._failures.append(errcode)

    async def wait_for_sent(self, count: int, *, within: float = 10.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.sent) >= count)
            return list(self.sent)

    # -- the API -----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        app.router.add_post("/cgi-bin/media/upload", self._upload)
        app.router.add_get("/cgi-bin/media/get", self._media)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        q = request.query
        if (q.get("grant_type"), q.get("appid"), q.get("secret")) != (
            "client_credential",
            APP_ID,
            SECRET,
        ):
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        self.token_fetches += 1
        token = f"token-{self.token_fetches}-{secrets.token_hex(4)}"
        self._valid.add(token)
        self.issued.append(token)
        return web.json_response({"access_token": token, "expires_in": 7200})

    def _refused(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token", "")
        if token not in self._valid:
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        return None

    async def _custom_send(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        async with self._changed:
            if self._failures:
                code = self._failures.popleft()
                return web.json_response({"errcode": code, "errmsg": f"scripted {code}"})
            self.sent.append(body)
            self._changed.notify_all()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _upload(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        form = await request.post()
        media = form.get("media")
        if not isinstance(media, web.FileField):
            return web.json_response({"errcode": 41005, "errmsg": "media data missing"})
        media_id = f"uploaded-{next(self._ids)}"
        self.uploads.append((media_id, media.file.read()))
        return web.json_response(
            {"type": request.query.get("type"), "media_id": media_id, "created_at": 1}
        )

    async def _media(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        found = self.media.get(request.query.get("media_id", ""))
        if found is None:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        data, content_type = found
        return web.Response(body=data, content_type=content_type)


# -- the customer's side: what WeChat POSTs ----------------------------------------------


def message_xml(
    msg_type: str, *, openid: str = OPENID, msg_id: int | None = None, **fields: str
) -> str:
    """A callback's XML: ``fields`` by their WeChat names (Content, MediaId, Event...)."""
    parts = [
        f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>",
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
        f"<CreateTime>{int(time.time())}</CreateTime>",
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
        *(f"<{name}><![CDATA[{value}]]></{name}>" for name, value in fields.items()),
    ]
    if msg_id is not None:
        parts.append(f"<MsgId>{msg_id}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


def signed(
    xml: str, *, safe: bool = False, token: str = TOKEN, at: float | None = None
) -> tuple[str, bytes]:
    """The query string and body WeChat would POST for ``xml``: signed with the token,
    and in safe mode encrypted with the EncodingAESKey (``msg_signature``); signed at
    ``at`` (seconds since 1970; default now)."""
    timestamp, nonce = str(int(time.time() if at is None else at)), secrets.token_hex(5)
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce)
    query = {
        "signature": signer.signature,
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": OPENID,
    }
    if not safe:
        return urlencode(query), xml.encode()
    crypto = WeChatCrypto(token, AES_KEY, APP_ID)
    encrypted = crypto.encrypt_message(xml, nonce, timestamp)
    envelope = xmltodict.parse(encrypted)["xml"]
    query |= {"encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]}
    body = (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
    )
    return urlencode(query), body.encode()


# -- WeCom customer service (微信客服) --------------------------------------------------

CORP_ID = "ww5a1b2c3d4e5f6a7b"
KF_SECRET = "wecom-kf-secret-0123456789abcdef"
OPEN_KFID = "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw"
EXTERNAL_USERID = "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw"


@dataclass
class FakeWeCom(FakeWeChat):
    """WeCom's side of 微信客服: a message log that ``kf/sync_msg`` pages through by
    cursor (``page`` at a time), ``kf/send_msg`` recording replies."""

    log: list[dict[str, Any]] = field(default_factory=list)
    # The cursors sync_msg was asked for, in order.
    syncs: list[str] = field(default_factory=list)
    page: int = 2

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/kf/sync_msg", self._sync_msg)
        # Replies are recorded (and scripted to fail) as customer-service messages are.
        app.router.add_post("/cgi-bin/kf/send_msg", self._custom_send)
        return app

    def customer_writes(
        self, text: str, *, menu_id: str | None = None, user: str = EXTERNAL_USERID
    ) -> str:
        """The customer sends ``text`` (a tapped menu item with ``menu_id``)."""
        msgid = f"msg{secrets.token_hex(8)}"
        body: dict[str, Any] = {"content": text}
        if menu_id is not None:
            body["menu_id"] = menu_id
        self.log.append(
            {
                "msgid": msgid,
                "open_kfid": OPEN_KFID,
                "external_userid": user,
                "send_time": int(time.time()),
                "origin": 3,
                "msgtype": "text",
                "text": body,
            }
        )
        return msgid

    def customer_enters(self, scene_param: str, *, user: str = EXTERNAL_USERID) -> None:
        self.log.append(
            {
                "msgid": f"evt{secrets.token_hex(8)}",
                "send_time": int(time.time()),
                "origin": 4,
                "msgtype": "event",
                "event": {
                    "event_type": "enter_session",
                    "open_kfid": OPEN_KFID,
                    "external_userid": user,
                    "scene": "qr",
                    "scene_param": scene_param,
                },
            }
        )

    async def _gettoken(self, request: web.Request) -> web.Response:
        if (request.query.get("corpid"), request.query.get("corpsecret")) != (CORP_ID, KF_SECRET):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.token_fetches += 1
        token = f"kf-token-{self.token_fetches}-{secrets.token_hex(4)}"
        self._valid.add(token)
        self.issued.append(token)
        return web.json_response({"errcode": 0, "access_token": token, "expires_in": 7200})

    async def _sync_msg(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        cursor = str(body.get("cursor") or "")
        self.syncs.append(cursor)
        start = int(cursor) if cursor else 0
        batch = self.log[start : start + self.page]
        end = start + len(batch)
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "next_cursor": str(end),
                "has_more": 1 if end < len(self.log) else 0,
                "msg_list": batch,
            }
        )


def kf_callback(
    *,
    token: str = TOKEN,
    sync_token: str = "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR",
    at: float | None = None,
) -> tuple[str, bytes]:
    """What WeCom POSTs when there is something to fetch: the kf_msg_or_event event,
    encrypted and signed for the callback (``msg_signature``)."""
    xml = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[kf_msg_or_event]]></Event>"
        f"<Token><![CDATA[{sync_token}]]></Token><OpenKfId><![CDATA[{OPEN_KFID}]]></OpenKfId></xml>"
    )
    timestamp, nonce = str(int(time.time() if at is None else at)), secrets.token_hex(5)
    encrypted = WeComCrypto(token, AES_KEY, CORP_ID).encrypt_message(xml, nonce, timestamp)
    envelope = xmltodict.parse(encrypted)["xml"]
    query = urlencode(
        {"msg_signature": envelope["MsgSignature"], "timestamp": timestamp, "nonce": nonce}
    )
    body = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
        f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
    )
    return query, body.encode()


def kf_url_check(echo: str, *, token: str = TOKEN, at: float | None = None) -> str:
    """The query WeCom sends to check the callback URL: ``echo`` encrypted."""
    timestamp, nonce = str(int(time.time() if at is None else at)), secrets.token_hex(5)
    crypto = WeComCrypto(token, AES_KEY, CORP_ID)
    encrypted = xmltodict.parse(crypto.encrypt_message(echo, nonce, timestamp))["xml"]
    return urlencode(
        {
            "msg_signature": encrypted["MsgSignature"],
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": encrypted["Encrypt"],
        }
    )
