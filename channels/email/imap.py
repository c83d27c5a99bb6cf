"""IMAP intake (aioimaplib): poll, or IDLE where the server offers it.

One task per mailbox, each with its own connection (IDLE watches one selected
mailbox). A mail is fetched with ``BODY.PEEK[]`` (it stays unread), handed to
the channel, and only once the ingest committed is it marked ``\\Seen`` or
moved to the processed folder and its UID written to the state file. A
restart therefore neither skips (the state says where we were) nor takes a
mail twice (the UID is recorded per mail, and a mail taken in again after a
crash between commit and record is a duplicate Message-ID the router drops).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import ssl
from pathlib import Path
from typing import Any

import aioimaplib

from channels.email.channel import EmailChannel
from channels.email.settings import ImapSettings

__all__ = ["ImapPoller"]

logger = logging.getLogger(__name__)

_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_IDLE_MAX = 29 * 60.0  # RFC 2177: re-issue IDLE at least every 29 minutes


class ImapError(RuntimeError):
    """The IMAP server said NO or BAD, or answered something we cannot use."""


class _State:
    """UIDVALIDITY and the last processed UID per mailbox, in a small JSON file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            self._data: dict[str, dict[str, int]] = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            self._data = {}

    def get(self, key: str) -> dict[str, int] | None:
        return self._data.get(key)

    def put(self, key: str, uidvalidity: int, last_uid: int) -> None:
        self._data[key] = {"uidvalidity": uidvalidity, "last_uid": last_uid}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._data, indent=1), "utf-8")
        os.replace(temporary, self._path)


def _ok(response: Any, what: str) -> Any:
    if response.result != "OK":
        detail = b" ".join(bytes(line) for line in response.lines[-1:]).decode("utf-8", "replace")
        raise ImapError(f"{what}: {response.result} {detail}")
    return response


def _literal(response: Any) -> bytes | None:
    for line in response.lines:
        if isinstance(line, bytearray):
            return bytes(line)
    return None


class ImapPoller:
    """Takes mail in from the configured mailboxes until stopped."""

    def __init__(self, *, channel: EmailChannel, settings: ImapSettings, state_path: Path) -> None:
        """``state_path``: where the UIDs already taken in are kept (one file per account)."""
        self._channel = channel
        self._settings = settings
        self._state = _State(state_path)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.processed = 0
        self.last_error = ""
        # Set whenever a connection or a mailbox read fails (``last_error`` says why).
        self.failed = asyncio.Event()
        # Set each time a mailbox has been read to the end (tests and health wait on it).
        self.drained = asyncio.Condition()
        self.rounds = 0

    @property
    def settings(self) -> ImapSettings:
        return self._settings

    @property
    def running(self) -> bool:
        """Polling here (with several nodes, only the leader polls)."""
        return bool(self._tasks)

    def _key(self, mailbox: str) -> str:
        return f"{self._settings.username}@{self._settings.host}:{self._settings.port}/{mailbox}"

    def start(self) -> None:
        self._stopping.clear()
        for mailbox in self._settings.mailboxes:
            self._tasks.append(asyncio.create_task(self._watch(mailbox), name=f"imap-{mailbox}"))

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def wait_rounds(self, count: int) -> None:
        """Wait until ``count`` mailbox reads have completed in all (for tests)."""
        async with self.drained:
            await self.drained.wait_for(lambda: self.rounds >= count)

    async def _connect(self) -> aioimaplib.IMAP4:
        s = self._settings
        if s.security == "tls":
            context = ssl.create_default_context()
            if not s.verify_certificate:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
                host=s.host, port=s.port, timeout=s.timeout_seconds, ssl_context=context
            )
        else:
            client = aioimaplib.IMAP4(host=s.host, port=s.port, timeout=s.timeout_seconds)
        await client.wait_hello_from_server()
        if client.get_state() == "NONAUTH":
            _ok(await client.login(s.username, s.password), "LOGIN")
        return client

    async def _watch(self, mailbox: str) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            client: aioimaplib.IMAP4 | None = None
            try:
                client = await self._connect()
                select = _ok(await client.select(mailbox), f"SELECT {mailbox}")
                uidvalidity = self._uidvalidity(select.lines)
                backoff = 1.0
                self.last_error = ""
                while not self._stopping.is_set():
                    await self._drain(client, mailbox, uidvalidity)
                    await self._wait_for_mail(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"IMAP {mailbox}: {type(exc).__name__}: {exc}"
                self.failed.set()
                logger.warning("%s; reconnecting in %.0fs", self.last_error, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, 300.0)
            finally:
                if client is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(client.logout(), 5)

    @staticmethod
    def _uidvalidity(lines: list[Any]) -> int:
        for line in lines:
            match = _UIDVALIDITY.search(bytes(line))
            if match:
                return int(match.group(1))
        raise ImapError("SELECT gave no UIDVALIDITY")

    async def _wait_for_mail(self, client: aioimaplib.IMAP4) -> None:
        s = self._settings
        if not (s.idle and client.has_capability("IDLE")):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), s.poll_seconds)
            return
        timeout = min(s.poll_seconds, _IDLE_MAX)
        idle = await client.idle_start(timeout=timeout)
        try:
            await client.wait_server_push(timeout=timeout + s.timeout_seconds)
        except TimeoutError:
            pass
        finally:
            client.idle_done()
            await asyncio.wait_for(idle, s.timeout_seconds)

    async def _drain(self, client: aioimaplib.IMAP4, mailbox: str, uidvalidity: int) -> None:
        key = self._key(mailbox)
        state = self._state.get(key)
        if state is not None and state["uidvalidity"] != uidvalidity:
            logger.warning("IMAP %s: UIDVALIDITY changed; reading the unread mail again", key)
            state = None
        if state is None:
            search = _ok(await client.uid_search("UNSEEN"), "UID SEARCH UNSEEN")
            last_uid = 0
        else:
            last_uid = state["last_uid"]
            search = _ok(await client.uid_search(f"UID {last_uid + 1}:*"), "UID SEARCH")
        # aioimaplib gives the untagged "* SEARCH" data without its prefix, then the
        # tagged completion line.
        uids = sorted(
            {
                int(token)
                for line in search.lines[:-1]
                for token in bytes(line).split()
                if token.isdigit()
            }
        )
        # "UID n:*" always matches the newest mail, even when it is older than n.
        for uid in (u for u in uids if u > last_uid):
            if self._stopping.is_set():
                break
            await self._take(client, mailbox, uid)
            self._state.put(key, uidvalidity, uid)
        if state is None and not uids:
            self._state.put(key, uidvalidity, last_uid)
        async with self.drained:
            self.rounds += 1
            self.drained.notify_all()

    async def _take(self, client: aioimaplib.IMAP4, mailbox: str, uid: int) -> None:
        s = self._settings
        size_response = _ok(await client.uid("fetch", str(uid), "(RFC822.SIZE)"), "FETCH SIZE")
        size = 0
        for line in size_response.lines:
            match = _SIZE.search(bytes(line))
            if match:
                size = int(match.group(1))
        too_big = size > s.max_message_bytes
        part = "BODY.PEEK[HEADER]" if too_big else "BODY.PEEK[]"
        fetched = _ok(await client.uid("fetch", str(uid), f"({part})"), "FETCH")
        raw = _literal(fetched)
        if raw is None:
            raise ImapError(f"FETCH of UID {uid} in {mailbox} returned no message")
        receipt = await self._channel.receive(raw, refused_size=size if too_big else None)
        logger.info(
            "IMAP %s UID %s taken in%s",
            mailbox,
            uid,
            "" if receipt is None else f" (conversation {receipt.conversation_id})",
        )
        if s.processed_folder:
            if client.has_capability("MOVE"):
                _ok(await client.uid("move", str(uid), s.processed_folder), "MOVE")
            else:
                _ok(await client.uid("copy", str(uid), s.processed_folder), "COPY")
                _ok(await client.uid("store", str(uid), "+FLAGS", r"(\Seen \Deleted)"), "STORE")
        else:
            _ok(await client.uid("store", str(uid), "+FLAGS", r"(\Seen)"), "STORE")
        self.processed += 1
