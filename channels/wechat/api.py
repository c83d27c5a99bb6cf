"""The WeChat HTTP API at one seam: access tokens (stored, shared by every node, refreshed
before they expire and at once when WeChat says they are not valid), JSON calls and
media, with WeChat's error codes turned into our delivery errors.

wechatpy's own client is synchronous (``requests``) and fixes the token URL, so the
adapter uses wechatpy where it is the reference (signatures, AES, the XML of
messages) and speaks these few calls itself, on the service's event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any, Protocol

import aiohttp

from channels.base import PermanentDeliveryError, RecipientUnreachable, TransientDeliveryError

__all__ = [
    "CursorStore",
    "MemoryChannelState",
    "TokenStore",
    "WeChatApi",
    "WeChatApiError",
    "callback_problem",
    "fresh",
]

logger = logging.getLogger(__name__)

# The token says it is not (or no longer) valid: fetch a new one and try once more.
_TOKEN_INVALID = frozenset({40001, 40014, 42001})
# Busy or rate limited: later.
_LATER = frozenset({-1, 45009, 45011, 45033})
# The customer cannot be reached this way any more.
_UNREACHABLE = {
    40003: "not a follower of this account (invalid openid)",
    43004: "the customer has unfollowed the account",
    43019: "the customer has blocked the account",
}
# The reply window rules (customer-service messages: 48 hours after the customer's
# last message, a limited number of replies before they write again).
_WINDOW = {
    45015: "the 48-hour reply window has closed; the customer must write again",
    45047: "too many replies since the customer last wrote; they must write again",
    # WeCom: a servicer took the session in the WeCom app (or it is queued for one);
    # the API may only send while a session is new or with the assistant.
    95018: "the WeCom session is with a person in the WeCom app, not with RelayDesk",
}
_REFRESH_BEFORE = 300.0


def callback_problem(token: str, aes_key: str, path: str, *, aes_required: bool) -> str | None:
    """What is wrong with a callback's settings as the WeChat and WeCom consoles take
    them (the Token, the EncodingAESKey, our path), or None."""
    if not 3 <= len(token) <= 32 or not token.isalnum():
        return "the token is 3-32 letters and digits, as set in the console"
    if (aes_key or aes_required) and len(aes_key) != 43:
        return "the EncodingAESKey has 43 characters"
    if not path.startswith("/"):
        return "callback_path must start with /"
    return None


def fresh(timestamp: str, *, window: float, now: float) -> bool:
    """Whether a callback's ``timestamp`` (seconds since 1970, as WeChat and WeCom sign
    it) is within ``window`` seconds of ``now``, either way. A correctly signed callback
    recorded long ago is a replay: message ids deduplicate replays inside the window,
    the window refuses the rest."""
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    return abs(now - int(timestamp)) <= window


class TokenStore(Protocol):
    """Where access tokens are kept, shared by every node (the router keeps them in the
    database). ``get`` gives ``(token, expires_at)`` in seconds since 1970, or None."""

    async def get(self, key: str) -> tuple[str, float] | None: ...

    async def put(self, key: str, token: str, expires_at: float) -> None: ...


class CursorStore(Protocol):
    """Where a sync cursor is kept (the router keeps it in the database): advanced only
    once everything before it is stored, so a restart neither loses nor repeats."""

    async def cursor(self, key: str) -> str: ...

    async def advance(self, key: str, cursor: str) -> None: ...


class MemoryChannelState:
    """Tokens and cursors in this process only: one node without a database, or tests."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._cursors: dict[str, str] = {}

    async def get(self, key: str) -> tuple[str, float] | None:
        return self._tokens.get(key)

    async def put(self, key: str, token: str, expires_at: float) -> None:
        self._tokens[key] = (token, expires_at)

    async def cursor(self, key: str) -> str:
        return self._cursors.get(key, "")

    async def advance(self, key: str, cursor: str) -> None:
        self._cursors[key] = cursor


class WeChatApiError(Exception):
    """WeChat answered with an error code (``errcode``) we do not map."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatApi:
    """Calls to ``base_url`` with a shared access token: an Official Account's
    (``https://api.weixin.qq.com``, ``official``) or a WeCom application's
    (``https://qyapi.weixin.qq.com``, ``wecom``)."""

    def __init__(
        self,
        *,
        base_url: str,
        app_id: str,
        secret: str,
        tokens: TokenStore,
        timeout: float = 10.0,
        kind: str = "official",
    ) -> None:
        self._base = base_url.rstrip("/")
        self._app_id = app_id
        self._tokens = tokens
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._refreshing = asyncio.Lock()
        if kind == "official":
            self._key = f"wechat:{app_id}"
            self._token_path = "/cgi-bin/token"
            self._token_params = {
                "grant_type": "client_credential",
                "appid": app_id,
                "secret": secret,
            }
        elif kind == "wecom":
            self._key = f"wecom:{app_id}:{hashlib.sha256(secret.encode()).hexdigest()[:12]}"
            self._token_path = "/cgi-bin/gettoken"
            self._token_params = {"corpid": app_id, "corpsecret": secret}
        else:
            raise ValueError(f"unknown WeChat API kind {kind!r}")

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- tokens ----------------------------------------------------------------------

    async def token(self, *, refresh: bool = False) -> str:
        """The current access token; a new one when it is missing, about to expire, or
        ``refresh`` (WeChat said the one we sent is not valid)."""
        stored = await self._tokens.get(self._key)
        if not refresh and stored is not None and stored[1] - time.time() > _REFRESH_BEFORE:
            return stored[0]
        async with self._refreshing:
            again = await self._tokens.get(self._key)
            if again is not None and again != stored and again[1] - time.time() > _REFRESH_BEFORE:
                return again[0]  # refreshed meanwhile (by this node or another)
            result = await self._call(
                "GET", self._token_path, params=self._token_params, authorised=False
            )
            token = str(result["access_token"])
            expires_at = time.time() + float(result.get("expires_in", 7200))
            await self._tokens.put(self._key, token, expires_at)
            logger.info("wechat: access token refreshed for %s", self._app_id)
            return token

    # -- calls -----------------------------------------------------------------------

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON to ``path`` (``/cgi-bin/message/custom/send``) with the token."""
        return await self._call("POST", path, json=body)

    async def upload(self, path: str, name: str, data: bytes, content_type: str) -> dict[str, Any]:
        """A multipart upload (``/cgi-bin/media/upload?type=image``) as ``media``."""
        form = aiohttp.FormData()
        form.add_field("media", data, filename=name, content_type=content_type)
        return await self._call("POST", path, data=form)

    async def media(self, media_id: str) -> tuple[bytes, str]:
        """A customer's image or voice by its ``media_id``: bytes and content type."""
        for attempt in (1, 2):
            token = await self.token(refresh=attempt == 2)
            async with self._request(
                "GET", "/cgi-bin/media/get", {"access_token": token, "media_id": media_id}
            ) as response:
                data = await response.read()
                kind = response.content_type
            if kind not in ("application/json", "text/plain"):
                return data, kind
            problem = _decoded(data)
            if attempt == 1 and problem.get("errcode") in _TOKEN_INVALID:
                continue
            _raise_for(problem)
        raise AssertionError("unreachable")

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        authorised: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        for attempt in (1, 2):
            query = dict(params or {})
            if authorised:
                query["access_token"] = await self.token(refresh=attempt == 2)
            async with self._request(method, path, query, **kwargs) as response:
                result = _decoded(await response.read())
            code = int(result.get("errcode", 0) or 0)
            if code == 0:
                return result
            if authorised and attempt == 1 and code in _TOKEN_INVALID:
                logger.info("wechat: token refused (%s), refreshing", code)
                continue
            _raise_for(result)
        raise AssertionError("unreachable")

    def _request(self, method: str, path: str, params: dict[str, str], **kwargs: Any) -> _Response:
        if self._session is None:
            raise TransientDeliveryError("the WeChat channel is not started")
        return _Response(self._session.request(method, self._base + path, params=params, **kwargs))


class _Response:
    """``async with`` around a request: transport failures become transient errors."""

    def __init__(self, request: Any) -> None:
        self._request = request
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        try:
            self._response = await self._request.__aenter__()
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The class only: a URL in the message would carry the access token.
            raise TransientDeliveryError(f"WeChat unreachable: {type(exc).__name__}") from exc
        assert self._response is not None
        if self._response.status >= 500 or self._response.status == 429:
            await self._request.__aexit__(None, None, None)
            raise TransientDeliveryError(f"WeChat answered HTTP {self._response.status}")
        return self._response

    async def __aexit__(self, *exc: object) -> None:
        await self._request.__aexit__(*exc)


def _decoded(data: bytes) -> dict[str, Any]:
    try:
        result = json.loads(data.decode("utf-8", "replace"))
    except ValueError as exc:
        raise TransientDeliveryError("WeChat answered with something that is not JSON") from exc
    if not isinstance(result, dict):
        raise TransientDeliveryError("WeChat answered with something that is not an object")
    return result


def _raise_for(result: dict[str, Any]) -> None:
    """WeChat's error code as what the outbox should do about it."""
    code = int(result.get("errcode", 0) or 0)
    message = str(result.get("errmsg", ""))[:200]
    if code in _LATER:
        raise TransientDeliveryError(f"WeChat is busy or limiting us ({code} {message})")
    if code in _TOKEN_INVALID:
        raise TransientDeliveryError(f"WeChat refused a fresh access token ({code} {message})")
    if code in _UNREACHABLE:
        raise RecipientUnreachable(f"WeChat: {_UNREACHABLE[code]} ({code})")
    if code in _WINDOW:
        raise PermanentDeliveryError(f"WeChat: {_WINDOW[code]} ({code})")
    raise PermanentDeliveryError(f"WeChat refused the call ({code} {message})")
