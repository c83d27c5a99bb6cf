"""`relaydesk serve`, and the channel set-up commands (Telegram's webhook, WeChat's check)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import sys
from typing import TYPE_CHECKING

from router.config import Config

if TYPE_CHECKING:
    from channels.wechat import WeChatApi


logger = logging.getLogger("relaydesk")


def serve(config: Config, host: str | None, port: int | None) -> int:
    host = host or config.server.host
    port = port if port is not None else config.server.port
    # Said at once, before the knowledge base and the database are loaded for nothing.
    taken = _cannot_listen(host, port)
    if taken is not None:
        print(f"relaydesk: cannot listen on {host}:{port}: {taken}", file=sys.stderr)
        return 2
    asyncio.run(_run_server(config, host=host, port=port))
    return 0


def _cannot_listen(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (another process has it), or None."""
    if port == 0:
        return None
    try:
        with socket.create_server((host, port)):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


async def _run_server(config: Config, *, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully: stop intake, let
    in-flight work finish (up to ``server.shutdown_timeout_seconds``), close connections."""
    from aiohttp import web

    from router.app import create_app

    runner = web.AppRunner(
        create_app(config),
        access_log=None,
        shutdown_timeout=config.server.shutdown_timeout_seconds,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        # What start-up made (the knowledge base, the matcher, the app) lives as long as
        # the process: out of the garbage collector's sight, a full collection no longer
        # walks it every time a request makes many objects (a month's report: 1.5-2x
        # faster; bench/report_bench.py does the same).
        gc.collect()
        gc.freeze()
        for address in runner.addresses:
            logger.info("listening on http://%s:%s", *address[:2])
        await stop.wait()
        logger.info("shutting down")
    finally:
        await runner.cleanup()
    logger.info("stopped")


async def telegram_set_webhook(config: Config, url: str) -> int:
    settings = config.channels.telegram
    if not settings.enabled or settings.mode != "webhook":
        print("relaydesk: enable channels.telegram in webhook mode first", file=sys.stderr)
        return 2
    if not url.endswith(settings.webhook_path):
        print(f"relaydesk: the URL must end with {settings.webhook_path}", file=sys.stderr)
        return 2
    from router.builders import build_telegram

    await build_telegram(config).set_webhook(url)
    print(f"Telegram will send updates to {url}")
    return 0


async def wechat_check(config: Config) -> int:
    """Whether WeChat gives us an access token with these credentials, and what to
    enter in the console (docs/wechat.md)."""
    from channels.wechat import MemoryChannelState, WeChatApi

    official, kf = config.channels.wechat, config.channels.wecom_kf
    if not official.enabled and not kf.enabled:
        print(
            "relaydesk: enable channels.wechat or channels.wecom_kf first (docs/wechat.md)",
            file=sys.stderr,
        )
        return 2
    base = (config.server.public_url or "https://<your public address>").rstrip("/")
    failed = False
    if official.enabled:
        api = WeChatApi(
            base_url=official.api_base_url,
            app_id=official.app_id,
            secret=official.app_secret,
            tokens=MemoryChannelState(),
        )
        if await _token_works(api, "WeChat", "app_id and app_secret", "IP白名单"):
            mode = "safe mode (安全模式)" if official.encoding_aes_key else "plain mode (明文模式)"
            print(f"Official Account: credentials work (an access token for {official.app_id})")
            print(f"  callback URL (服务器地址 URL): {base}{official.callback_path}")
            print(f"  token (令牌): as channels.wechat.token; message encryption: {mode}")
        else:
            failed = True
    if kf.enabled:
        api = WeChatApi(
            base_url=kf.api_base_url,
            app_id=kf.corp_id,
            secret=kf.secret,
            tokens=MemoryChannelState(),
            kind="wecom",
        )
        if await _token_works(api, "WeCom", "corp_id and secret", "企业可信IP"):
            print(f"WeCom customer service: credentials work (account {kf.open_kfid})")
            print(f"  callback URL (接收事件服务器 URL): {base}{kf.callback_path}")
            print("  Token and EncodingAESKey: as channels.wecom_kf")
        else:
            failed = True
    return 1 if failed else 0


async def _token_works(api: WeChatApi, platform: str, fields: str, allowlist: str) -> bool:
    from channels.base import DeliveryError

    await api.start()
    try:
        await api.token()
    except DeliveryError as exc:
        print(f"relaydesk: {platform} refused the credentials: {exc}", file=sys.stderr)
        print(
            f"  check {fields}, and that this server's IP address is on the "
            f"allowlist ({allowlist})",
            file=sys.stderr,
        )
        return False
    finally:
        await api.stop()
    return True
