"""A load and durability harness: real `relaydesk serve` processes behind a small
round-robin proxy of its own, customers on several channels, a ledger of every
message sent and acknowledged and every reply received, and kill -9 at random moments.

Loopback only, bounded in count and time: it stops by itself. Web-chat visitors
follow the documented protocol (resend an unacknowledged message with the same
``client_id``; skip frames at or below the last ``seq`` seen; reconnect on a gap);
bridge senders resend an unanswered message with the same ``message_id`` and the
bridge's receiver delivers each ``idempotency_key`` once; mail customers' providers
retry a mail the receiver did not take with the same Message-ID, and Telegram posts
an update until it is answered 200 (the same update_id). After the load, the
harness waits for every reply to be delivered and checks the ledger against the
database: nothing acknowledged is missing or stored twice, every reply the
service made reached its customer, none was shown twice (email and Telegram replies
are counted per customer: their copies carry no key the harness can read back, and
the Bot API has none at all, so a Telegram reply sent again around a kill is counted
in ``figures()["telegram_resent"]``, not as a fault).

Used by ``bench/load.py`` (figures) and ``tests/test_durability.py`` (CI size).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import hashlib
import hmac
import itertools
import json
import os
import random
import re
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import yaml
from aiohttp import web
from aiosmtpd.smtp import SMTP
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

DEMO_KB = Path(__file__).resolve().parents[2] / "knowledge" / "demo"
# As tests/support/service.py's KB_CACHE: the nodes read the demo's fit, not make it.
KB_CACHE = Path(
    os.environ.get(
        "RELAYDESK_TEST_KB_CACHE",
        Path(__file__).resolve().parents[2] / "tests" / "artifacts" / "kb-cache",
    )
)
BRIDGE = "loadbridge"
CHANNELS = ("webchat", BRIDGE, "email", "telegram")
SUPPORT = "support@load.example"
QUESTIONS = [
    "How do I return an item?",
    "怎么申请退货？",
    "How long is the warranty?",
    "退款多久到账",
    "Where is my parcel?",
    "发票怎么开",
    "Can I change my delivery address?",
    "维修要多久",
]


@dataclass
class LoadSettings:
    """What to run. ``database`` is an SQLAlchemy URL (SQLite: one node only)."""

    folder: Path
    database: str
    nodes: int = 1
    messages: int = 1000  # customer messages in all, shared by the customers
    visitors: int = 10  # web-chat customers
    bridge_senders: int = 10  # customers writing through the signed bridge
    mail_senders: int = 0  # customers mailing the SMTP receiver
    telegram_chats: int = 0  # customers whose messages Telegram posts to the webhook
    kills: int = 0  # kill -9 of a random node at random moments, each restarted
    seconds: float = 300.0  # the whole run stops by then, finished or not
    seed: int = 1
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    bridge_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    telegram_secret: str = field(default_factory=lambda: secrets.token_hex(16))


@dataclass
class Ledger:
    """What the customers sent, had acknowledged and received."""

    sent: Counter[str] = field(default_factory=Counter)  # per channel
    acked: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CHANNELS})
    ack_ms: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CHANNELS})
    reply_ms: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CHANNELS})
    # web chat: visitor id → frame ids shown (a list: a frame shown twice is a fault)
    shown: dict[str, list[str]] = field(default_factory=dict)
    # bridge: idempotency key → deliveries (the bridge shows each key once)
    delivered: Counter[str] = field(default_factory=Counter)
    # email: (recipient, Message-ID) → mails received (a mail client shows one per id)
    mailed: Counter[tuple[str, str]] = field(default_factory=Counter)
    # telegram: chat id → messages sent to it (the Bot API has no idempotency key)
    texted: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    resent: int = 0
    # Telegram messages received beyond the replies the service recorded as sent.
    telegram_resent: int = 0


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str, prefix: str) -> AsyncIterator[str]:
    """A PostgreSQL database of its own next to ``admin_url``'s (for processes that take
    a URL, not a schema option); dropped afterwards, connections and all."""
    name = f"{prefix}_{secrets.token_hex(5)}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            await connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        await admin.dispose()


# -- the nodes and the proxy ------------------------------------------------------------


class Node:
    """One `relaydesk serve`, killable and restartable."""

    def __init__(self, folder: Path, config: dict[str, Any]) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0
        self.smtp_port = 0
        self._drain: asyncio.Task[None] | None = None
        self.log = folder / "serve.log"

    async def start(self) -> None:
        config = str(self.folder / "config.yaml")
        self.process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "router.cli", "--config", config, "serve", "--port", "0"),
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.process.stderr is not None
        with self.log.open("a", encoding="utf-8") as log:
            async with asyncio.timeout(60):
                while True:
                    line = (await self.process.stderr.readline()).decode()
                    if not line:
                        raise RuntimeError(f"relaydesk serve exited; see {self.log}")
                    log.write(line)
                    if match := re.search(r"SMTP receiver listening on [\d.]+:(\d+)", line):
                        self.smtp_port = int(match.group(1))
                    if match := re.search(r"listening on http://[\d.]+:(\d+)", line):
                        self.port = int(match.group(1))
                        break
        self._drain = asyncio.create_task(self._keep_reading(self.process))

    async def _keep_reading(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        with self.log.open("a", encoding="utf-8") as log:
            while line := await process.stderr.readline():
                log.write(line.decode(errors="replace"))

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        """kill -9: no shutdown of any kind."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._drain is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(20):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._drain is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain


class Proxy:
    """Round-robin TCP proxy over the live nodes: each new connection goes to the
    next node that accepts it (HTTP and websockets alike; no sticky sessions)."""

    def __init__(self, nodes: list[Node], *, smtp: bool = False) -> None:
        self._nodes = nodes
        self._smtp = smtp  # to the nodes' SMTP receivers rather than their HTTP
        self._next = 0
        self._server: asyncio.Server | None = None
        self.port = 0
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._pipes):
                task.cancel()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        for _ in range(len(self._nodes) * 2):
            node = self._nodes[self._next % len(self._nodes)]
            self._next += 1
            port = node.smtp_port if self._smtp else node.port
            if not node.alive or not port:
                continue
            with contextlib.suppress(OSError):
                upstream = await asyncio.open_connection("127.0.0.1", port)
                break
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        pipes = [
            asyncio.create_task(_pipe(reader, up_writer)),
            asyncio.create_task(_pipe(up_reader, writer)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
                self._pipes.discard(task)
            for w in (writer, up_writer):
                w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


# -- the customers ----------------------------------------------------------------------


class Visitor:
    """A web-chat customer who follows the documented protocol."""

    def __init__(self, base: str, name: str, ledger: Ledger) -> None:
        self.base = base
        self.name = name
        self.ledger = ledger
        self.token: str | None = None
        self.visitor_id = ""
        self.epoch: str | None = None
        self.last_seq = 0
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.acks: dict[str, asyncio.Future[None]] = {}
        self.sent_at: dict[str, float] = {}
        self.waiting_reply: float | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, http: aiohttp.ClientSession) -> None:
        while True:
            try:
                self.ws = await http.ws_connect(f"{self.base}/api/chat/ws", heartbeat=None)
                await self.ws.send_json(
                    {
                        "type": "hello",
                        "token": self.token,
                        "last_seq": self.last_seq,
                        "epoch": self.epoch,
                    }
                )
                welcome = await self.ws.receive_json(timeout=15)
                if welcome.get("type") != "welcome":
                    raise ConnectionError(f"no welcome: {welcome}")
                self.token = welcome["visitor"]["token"]
                self.visitor_id = welcome["visitor"]["id"]
                if welcome.get("epoch") != self.epoch:
                    self.epoch, self.last_seq = welcome.get("epoch"), 0
                self._reader = asyncio.create_task(self._read(self.ws))
                return
            except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError, ValueError):
                self.ledger.reconnects += 1
                await asyncio.sleep(0.2)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            kind = frame.get("type")
            if kind == "ack":
                future = self.acks.get(frame["client_id"])
                if future is not None and not future.done():
                    future.set_result(None)
            elif kind == "error" and frame.get("client_id") in self.acks:
                future = self.acks[frame["client_id"]]
                if not future.done():
                    future.set_exception(ConnectionError(frame.get("code", "error")))
            elif kind == "message" and isinstance(frame.get("seq"), int):
                seq = frame["seq"]
                if seq <= self.last_seq:
                    continue  # seen already: the protocol says skip it
                if seq > self.last_seq + 1:
                    break  # a gap: reconnect to have it replayed
                self.last_seq = seq
                self.ledger.shown.setdefault(self.visitor_id, []).append(frame["id"])
                if frame.get("author") != "customer" and self.waiting_reply is not None:
                    self.ledger.reply_ms["webchat"].append(
                        (time.perf_counter() - self.waiting_reply) * 1000
                    )
                    self.waiting_reply = None
        await ws.close()

    async def say(self, http: aiohttp.ClientSession, client_id: str, words: str) -> None:
        """Send until acknowledged (the same ``client_id`` every time)."""
        began = time.perf_counter()
        self.ledger.sent["webchat"] += 1
        attempt = 0
        while True:
            if self.ws is None or self.ws.closed or self._reader is None or self._reader.done():
                await self.connect(http)
            assert self.ws is not None
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.acks[client_id] = future
            try:
                if attempt:
                    self.ledger.resent += 1
                attempt += 1
                self.waiting_reply = time.perf_counter()
                await self.ws.send_json({"type": "message", "client_id": client_id, "text": words})
                assert self._reader is not None
                done, _ = await asyncio.wait(
                    {future, self._reader}, timeout=20, return_when=asyncio.FIRST_COMPLETED
                )
                if future in done and future.exception() is None:
                    break
            except (aiohttp.ClientError, OSError, ConnectionError):
                pass
            if future.done() and future.exception() is not None:
                await asyncio.sleep(0.2)  # the service asked to retry
            with contextlib.suppress(Exception):
                await self.ws.close()
            self.ledger.reconnects += 1
        self.acks.pop(client_id, None)
        self.ledger.acked["webchat"].add(f"{self.visitor_id}:{client_id}")
        self.ledger.ack_ms["webchat"].append((time.perf_counter() - began) * 1000)

    async def catch_up(self, http: aiohttp.ClientSession) -> None:
        """Reconnect once more, for what was stored while away."""
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        await self.connect(http)
        await asyncio.sleep(0)
        assert self.ws is not None
        # The replay follows the welcome at once; then close.
        await asyncio.sleep(0.5)
        await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader


def signed(secret: str, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return {
        "X-RelayDesk-Timestamp": stamp,
        "X-RelayDesk-Signature": "sha256=" + signature.hexdigest(),
        "Content-Type": "application/json",
    }


async def until_acked(
    ledger: Ledger,
    channel: str,
    key: str,
    replies: dict[str, float],
    reply_to: str,
    attempt: Callable[[], Awaitable[bool]],
) -> None:
    """Try ``attempt`` (the same message every time) until it says the service took
    it; the ledger counts the message, its resends and how long its acknowledgement
    took, and ``replies`` when the customer started waiting for an answer."""
    began = time.perf_counter()
    ledger.sent[channel] += 1
    tries = 0
    while True:
        if tries:
            ledger.resent += 1
        tries += 1
        replies[reply_to] = time.perf_counter()
        if await attempt():
            break
        await asyncio.sleep(0.2)
    ledger.acked[channel].add(key)
    ledger.ack_ms[channel].append((time.perf_counter() - began) * 1000)


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """``app`` on a loopback port of its own; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _posted(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> bool:
    """Whether a POST was answered 200 (a failure of any kind: not yet)."""
    try:
        async with http.post(url, timeout=aiohttp.ClientTimeout(total=20), **kwargs) as response:
            return response.status == 200
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


async def bridge_say(
    http: aiohttp.ClientSession,
    base: str,
    settings: LoadSettings,
    ledger: Ledger,
    sender: str,
    message_id: str,
    words: str,
    replies: dict[str, float],
) -> None:
    """Send until stored (the same ``message_id`` every time)."""
    body = json.dumps(
        {"message_id": message_id, "sender": {"id": sender}, "text": words}, ensure_ascii=False
    ).encode()
    url = f"{base}/api/channels/{BRIDGE}/messages"
    await until_acked(
        ledger,
        BRIDGE,
        message_id,
        replies,
        sender,
        lambda: _posted(http, url, data=body, headers=signed(settings.bridge_secret, body)),
    )


@contextlib.asynccontextmanager
async def bridge_receiver(
    settings: LoadSettings, ledger: Ledger, replies: dict[str, float]
) -> AsyncIterator[str]:
    """The bridge's side: checks the signature, counts each delivery by key."""

    async def deliver(request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers.get("X-RelayDesk-Timestamp", "")
        expected = hmac.new(
            settings.bridge_secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(
            request.headers.get("X-RelayDesk-Signature", ""), "sha256=" + expected
        ):
            return web.Response(status=401)
        reply = json.loads(body)
        ledger.delivered[reply["idempotency_key"]] += 1
        sender = reply["recipient"]["id"]
        if sender in replies and ledger.delivered[reply["idempotency_key"]] == 1:
            ledger.reply_ms[BRIDGE].append((time.perf_counter() - replies.pop(sender)) * 1000)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/replies", deliver)
    async with serving(app) as base:
        yield f"{base}/replies"


async def mail_say(
    smtp_port: int, ledger: Ledger, sender: str, n: int, words: str, replies: dict[str, float]
) -> None:
    """Mail until the receiver says 250 (the same Message-ID every time: a provider
    retrying a mail it could not hand over)."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = SUPPORT
    mail["Subject"] = f"Question {n}"
    mail["Message-ID"] = message_id = f"<{sender.split('@')[0]}-{n}@customers.example>"
    mail.set_content(words)

    async def handed_over() -> bool:
        try:
            await aiosmtplib.send(mail, hostname="127.0.0.1", port=smtp_port, timeout=20)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            return False
        return True

    await until_acked(ledger, "email", message_id.strip("<>"), replies, sender, handed_over)


@dataclass
class MailSink:
    """The relay the nodes send replies through: counts each mail by Message-ID."""

    ledger: Ledger
    replies: dict[str, float]
    port: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = email.message_from_bytes(envelope.original_content or envelope.content)
        for recipient in envelope.rcpt_tos:
            self.ledger.mailed[(recipient, str(mail["Message-ID"]))] += 1
            if recipient in self.replies:
                began = self.replies.pop(recipient)
                self.ledger.reply_ms["email"].append((time.perf_counter() - began) * 1000)
        return "250 2.0.0 queued"


@contextlib.asynccontextmanager
async def mail_sink(ledger: Ledger, replies: dict[str, float]) -> AsyncIterator[MailSink]:
    sink = MailSink(ledger, replies)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, decode_data=False, enable_SMTPUTF8=True), "127.0.0.1", 0
    )
    sink.port = int(server.sockets[0].getsockname()[1])
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


async def telegram_say(
    http: aiohttp.ClientSession,
    base: str,
    settings: LoadSettings,
    ledger: Ledger,
    chat: int,
    n: int,
    words: str,
    replies: dict[str, float],
) -> None:
    """Post the update until answered 200, as Telegram retries a webhook (the same
    update every time)."""
    update = {
        "update_id": chat * 10_000 + n,
        "message": {
            "message_id": n + 1,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private", "first_name": "Mei"},
            "from": {"id": chat, "is_bot": False, "first_name": "Mei", "language_code": "en"},
            "text": words,
        },
    }
    await until_acked(
        ledger,
        "telegram",
        f"{chat}:{n + 1}",
        replies,
        str(chat),
        lambda: _posted(
            http,
            f"{base}/telegram/webhook",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": settings.telegram_secret},
        ),
    )


@contextlib.asynccontextmanager
async def telegram_api(ledger: Ledger, replies: dict[str, float]) -> AsyncIterator[tuple[str, str]]:
    """The Bot API the nodes send replies to: counts each message by chat."""
    token = "4242:LOAD-TOKEN"
    sent = itertools.count(1)

    async def method(request: web.Request) -> web.Response:
        if request.match_info["token"] != token:
            return web.json_response({"ok": False, "error_code": 401}, status=401)
        name = request.match_info["method"]
        params: dict[str, Any] = dict(await request.post())
        if request.content_type == "application/json":
            params = await request.json()
        if name == "getMe":
            return web.json_response(
                {
                    "ok": True,
                    "result": {
                        "id": 4242,
                        "is_bot": True,
                        "first_name": "Load",
                        "username": "load_bot",
                    },
                }
            )
        if name == "sendMessage":
            chat = str(params["chat_id"])
            ledger.texted[chat] += 1
            if chat in replies:
                ledger.reply_ms["telegram"].append((time.perf_counter() - replies.pop(chat)) * 1000)
            return web.json_response(
                {
                    "ok": True,
                    "result": {
                        "message_id": next(sent),
                        "date": int(time.time()),
                        "chat": {"id": int(chat), "type": "private"},
                        "text": str(params.get("text", "")),
                    },
                }
            )
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", method)
    async with serving(app) as base:
        yield base, token


# -- a run ----------------------------------------------------------------------------


def node_config(
    settings: LoadSettings,
    folder: Path,
    outbound_url: str,
    *,
    relay_port: int = 0,
    telegram: tuple[str, str] | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "server": {"data_dir": str(folder / "data"), "secret_key": settings.secret},
        "storage": {"url": settings.database, "auto_upgrade": True},
        "knowledge": {"path": str(DEMO_KB), "cache_dir": str(KB_CACHE)},
        "outbox": {
            "poll_interval_seconds": 0.1,
            "backoff_base_seconds": 0.1,
            "backoff_max_seconds": 1.0,
            # A killed node's claimed replies go out from another node after this.
            "lease_seconds": 3.0,
        },
        "channels": {
            "webchat": {
                "rate_limit": {"burst": 1000, "per_minute": 100_000},
                "new_visitors_per_minute": 100_000,
                "address_messages_per_minute": 1_000_000,
            },
            "api": {BRIDGE: {"secret": settings.bridge_secret, "outbound_url": outbound_url}},
        },
    }
    if relay_port:
        config["channels"]["email"] = {
            "enabled": True,
            "addresses": [SUPPORT],
            "relay": {"host": "127.0.0.1", "port": relay_port, "security": "none"},
            "smtp": {"enabled": True, "port": 0},
            # Every customer question gets its answer (the loop guard is not under test).
            "auto_replies_per_hour": 100_000,
        }
    if telegram is not None:
        api, token = telegram
        config["channels"]["telegram"] = {
            "enabled": True,
            "token": token,
            "mode": "webhook",
            "webhook_secret": settings.telegram_secret,
            "api_base_url": api,
            "per_chat_interval_seconds": 0,
            "messages_per_second": 10_000,
        }
    return config


@dataclass
class LoadResult:
    settings: LoadSettings
    ledger: Ledger
    seconds: float
    finished: bool
    faults: dict[str, list[str]]
    counts: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.finished and not any(self.faults.values())

    def figures(self) -> dict[str, Any]:
        ledger = self.ledger
        acked = sum(len(v) for v in ledger.acked.values())

        def spread(values: list[float]) -> dict[str, float | None]:
            if not values:
                return {"p50": None, "p99": None}
            ordered = sorted(values)
            return {
                "p50": statistics.median(ordered),
                "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            }

        return {
            "nodes": self.settings.nodes,
            "database": "postgresql"
            if self.settings.database.startswith("postgresql")
            else "sqlite",
            "messages_acked": acked,
            "seconds": self.seconds,
            "messages_per_second": acked / self.seconds if self.seconds else None,
            "kills": self.settings.kills,
            "reconnects": ledger.reconnects,
            "resent": ledger.resent,
            "by_channel": {
                channel: {
                    "acked": len(ledger.acked[channel]),
                    "ack_ms": spread(ledger.ack_ms[channel]),
                    "reply_ms": spread(ledger.reply_ms[channel]),
                }
                for channel in ledger.acked
            },
            "mail_copies": sum(self.ledger.mailed.values()) - len(self.ledger.mailed),
            "telegram_resent": self.ledger.telegram_resent,
            "faults": {k: len(v) for k, v in self.faults.items()},
            "fault_examples": {k: v[:5] for k, v in self.faults.items() if v},
            "counts": self.counts,
            "finished": self.finished,
        }


async def run_load(settings: LoadSettings) -> LoadResult:
    """One run: start the nodes, load them (killing and restarting as asked), let every
    reply go out, check the ledger against the database."""
    if settings.nodes > 1 and not settings.database.startswith("postgresql"):
        raise ValueError("several nodes need PostgreSQL")
    rng = random.Random(settings.seed)
    ledger = Ledger()
    replies: dict[str, float] = {}
    began = time.perf_counter()
    deadline = began + settings.seconds
    async with (
        bridge_receiver(settings, ledger, replies) as outbound_url,
        mail_sink(ledger, replies) as sink,
        telegram_api(ledger, replies) as telegram,
    ):
        nodes = [
            Node(
                settings.folder / f"node{n}",
                node_config(
                    settings,
                    settings.folder / f"node{n}",
                    outbound_url,
                    relay_port=sink.port if settings.mail_senders else 0,
                    telegram=telegram if settings.telegram_chats else None,
                ),
            )
            for n in range(settings.nodes)
        ]
        # The first node migrates the database before the others start.
        await nodes[0].start()
        await asyncio.gather(*(n.start() for n in nodes[1:]))
        proxy, smtp_proxy = Proxy(nodes), Proxy(nodes, smtp=True)
        await proxy.start()
        await smtp_proxy.start()
        base = f"http://127.0.0.1:{proxy.port}"
        finished = False
        try:
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=True)
            ) as http:
                visitors = [Visitor(base, f"v{i}", ledger) for i in range(settings.visitors)]
                # Each customer as "say message n with these words", in a fixed order.
                Say = Callable[[int, str], Awaitable[None]]

                def on_chat(visitor: Visitor) -> Say:
                    return lambda n, words: visitor.say(http, f"{visitor.name}-{n}", words)

                def on_bridge(i: int) -> Say:
                    return lambda n, words: bridge_say(
                        http, base, settings, ledger, f"b{i}", f"b{i}-{n}", words, replies
                    )

                def on_mail(i: int) -> Say:
                    sender = f"customer{i}@customers.example"
                    return lambda n, words: mail_say(
                        smtp_proxy.port, ledger, sender, n, words, replies
                    )

                def on_telegram(i: int) -> Say:
                    return lambda n, words: telegram_say(
                        http, base, settings, ledger, 900_000 + i, n, words, replies
                    )

                speakers = [
                    *map(on_chat, visitors),
                    *map(on_bridge, range(settings.bridge_senders)),
                    *map(on_mail, range(settings.mail_senders)),
                    *map(on_telegram, range(settings.telegram_chats)),
                ]
                plan = [rng.choice(QUESTIONS) for _ in range(settings.messages)]
                load_began = time.perf_counter()

                async def paced(say: Say, words: list[str]) -> None:
                    for n, text_ in enumerate(words):
                        if time.perf_counter() > deadline:
                            return
                        await say(n, text_)

                async def killer() -> None:
                    # Each kill when a random share of the messages has been acknowledged.
                    marks = sorted(
                        rng.uniform(0.1, 0.8) * settings.messages for _ in range(settings.kills)
                    )
                    for mark in marks:
                        while sum(len(v) for v in ledger.acked.values()) < mark:
                            if time.perf_counter() > deadline:
                                return
                            await asyncio.sleep(0.01)
                        victim = rng.choice(nodes)
                        await victim.kill()
                        await asyncio.sleep(rng.uniform(0.2, 1.0))
                        await victim.start()

                work = [paced(say, plan[i :: len(speakers)]) for i, say in enumerate(speakers)]
                kills = asyncio.create_task(killer())
                await asyncio.gather(*work)
                load_seconds = time.perf_counter() - load_began
                await kills
                finished = (
                    all(len(ledger.acked[c]) == ledger.sent[c] for c in ledger.acked)
                    and sum(ledger.sent.values()) == settings.messages
                )
                counts = await _settle(settings, deadline)
                for visitor in visitors:
                    await visitor.catch_up(http)
                faults = await _check(settings, ledger, visitors)
        finally:
            await proxy.stop()
            await smtp_proxy.stop()
            await asyncio.gather(*(n.stop() for n in nodes))
    return LoadResult(
        settings=settings,
        ledger=ledger,
        seconds=load_seconds,
        finished=finished,
        faults=faults,
        counts=counts,
    )


async def _settle(settings: LoadSettings, deadline: float) -> dict[str, int]:
    """Wait until no reply waits in the outbox (the leases of killed nodes run out)."""
    engine = create_async_engine(settings.database)
    try:
        while True:
            async with engine.connect() as connection:
                rows = dict(
                    (
                        await connection.execute(
                            text("SELECT status, count(*) FROM outbox GROUP BY status")
                        )
                    ).all()
                )
            if (
                not any(status not in ("sent", "dead") for status in rows)
                or time.perf_counter() > deadline + 60
            ):
                return {str(k): int(v) for k, v in rows.items()}
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


async def _check(
    settings: LoadSettings, ledger: Ledger, visitors: list[Visitor]
) -> dict[str, list[str]]:
    engine = create_async_engine(settings.database)
    faults: dict[str, list[str]] = {
        "acknowledged_but_missing": [],
        "stored_twice": [],
        "reply_not_delivered": [],
        "reply_lost": [],
        "reply_shown_twice": [],
        "invalid_state": [],
    }
    try:
        async with engine.connect() as connection:
            stored = Counter(
                f"{channel}:{external}"
                for channel, external in (
                    await connection.execute(
                        text("SELECT channel, external_id FROM messages WHERE direction = 'in'")
                    )
                ).all()
            )
            outbox = (
                await connection.execute(
                    text("SELECT channel, recipient, idempotency_key, status FROM outbox")
                )
            ).all()
            states = (await connection.execute(text("SELECT id, status FROM conversations"))).all()
    finally:
        await engine.dispose()
    for channel, keys in ledger.acked.items():
        for key in keys:
            if stored[f"{channel}:{key}"] == 0:
                faults["acknowledged_but_missing"].append(f"{channel}:{key}")
    faults["stored_twice"] = [k for k, n in stored.items() if n > 1]
    shown = {visitor: Counter(frames) for visitor, frames in ledger.shown.items()}
    for channel, recipient, key, status in outbox:
        if status != "sent":
            faults["reply_not_delivered"].append(f"{channel}:{recipient}:{key}:{status}")
        elif channel == "webchat" and shown.get(recipient, Counter())[key] == 0:
            faults["reply_lost"].append(f"webchat:{recipient}:{key}")
        elif channel == BRIDGE and ledger.delivered[key] == 0:
            faults["reply_lost"].append(f"{BRIDGE}:{recipient}:{key}")
    # Email and Telegram replies carry no key the harness can read back: count them per
    # customer. A mail sent twice has one Message-ID (mail clients show it once); a
    # Telegram message sent twice around a kill shows twice (the Bot API has no
    # idempotency key), so those are counted, not faulted.
    made: Counter[tuple[str, str]] = Counter(
        (channel, recipient) for channel, recipient, _, status in outbox if status == "sent"
    )
    mailed = Counter(recipient for recipient, _ in ledger.mailed)
    for (channel, recipient), count in made.items():
        got = mailed[recipient] if channel == "email" else ledger.texted[recipient]
        if channel in ("email", "telegram") and got < count:
            faults["reply_lost"].append(f"{channel}:{recipient}:{count - got} of {count}")
    ledger.telegram_resent = sum(ledger.texted.values()) - sum(
        n for (channel, _), n in made.items() if channel == "telegram"
    )
    for visitor, frames in shown.items():
        faults["reply_shown_twice"] += [f"{visitor}:{f}" for f, n in frames.items() if n > 1]
    valid = {"bot", "queued", "assigned", "resolved", "open", "pending", "waiting"}
    faults["invalid_state"] = [f"{i}:{s}" for i, s in states if s not in valid]
    return faults
