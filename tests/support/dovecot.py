"""A real Dovecot IMAP server for tests, with its own config and maildirs in a temp dir.

Dovecot listens on a UNIX socket only; a small forwarder on a loopback port
bound to 0 carries the IMAP connections to it, so no port is ever guessed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aioimaplib

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "support@shop.example"
PASSWORD = "imap-secret"


def available() -> bool:
    return Path(DOVECOT).exists()


@dataclass
class Dovecot:
    root: Path
    port: int

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    async def client(self) -> aioimaplib.IMAP4:
        client = aioimaplib.IMAP4(host="127.0.0.1", port=self.port, timeout=10)
        await client.wait_hello_from_server()
        response = await client.login(USER, PASSWORD)
        assert response.result == "OK", response
        return client

    async def deliver(self, *mails: bytes, mailbox: str = "INBOX") -> None:
        """Put mails in ``mailbox`` as the provider's MTA would (IMAP APPEND)."""
        client = await self.client()
        try:
            for raw in mails:
                response = await client.append(raw, mailbox=mailbox)
                assert response.result == "OK", response
        finally:
            await client.logout()

    async def flags(self, mailbox: str = "INBOX") -> dict[int, str]:
        """UID → flags of every mail in ``mailbox``."""
        client = await self.client()
        try:
            await client.select(mailbox)
            response = await client.uid("fetch", "1:*", "(FLAGS)")
            found: dict[int, str] = {}
            for line in response.lines:
                text = bytes(line).decode()
                if "FETCH" in text and "UID" in text:
                    uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                    found[uid] = text.split("FLAGS (")[1].split(")")[0]
            return found
        finally:
            await client.logout()

    async def create(self, mailbox: str) -> None:
        client = await self.client()
        try:
            await client.create(mailbox)
        finally:
            await client.logout()


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _config(root: Path, uid: int, gid: int, user: str) -> str:
    return f"""
protocols = imap
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
first_valid_uid = {uid}
last_valid_uid = 0
default_login_user = {"dovenull" if os.getuid() == 0 else user}
default_internal_user = {"dovecot" if os.getuid() == 0 else user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = 0
  }}
  unix_listener imap-client {{
    mode = 0666
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def _start() -> Path:
    """Write a config and maildirs under a new temp dir and start Dovecot; returns the dir."""
    # Not under pytest's tmp_path: its 0700 parents keep Dovecot's unprivileged
    # processes out.
    root = Path(tempfile.mkdtemp(prefix="relaydesk-dovecot-"))
    root.chmod(0o755)
    if os.getuid() == 0:
        account = pwd.getpwnam("nobody")  # Dovecot refuses to read mail as root
        uid, gid, user = account.pw_uid, account.pw_gid, "nobody"
    else:
        uid, gid, user = os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    for sub in ("mail", "home"):
        os.chown(root / sub, uid, gid)
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    config = root / "dovecot.conf"
    config.write_text(_config(root, uid, gid, user))
    # The master daemonises: its output goes to the log, not to pipes we would wait on.
    subprocess.run(
        [DOVECOT, "-c", str(config)],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # The master creates its sockets before it daemonises.
    assert (root / "run" / "imap-client").exists(), "Dovecot did not start; see its log"
    return root


def _stop(root: Path) -> None:
    subprocess.run(
        [DOVECOT, "-c", str(root / "dovecot.conf"), "stop"],
        check=False,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def running_dovecot() -> AsyncIterator[Dovecot]:
    root = await asyncio.to_thread(_start)
    socket_path = root / "run" / "imap-client"
    handlers: set[asyncio.Task[None]] = set()
    writers: set[asyncio.StreamWriter] = set()

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)  # type: ignore[arg-type]
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(str(socket_path))
        writers.update((writer, upstream_writer))
        await asyncio.gather(_forward(reader, upstream_writer), _forward(upstream_reader, writer))

    server = await asyncio.start_server(connect, "127.0.0.1", 0)
    try:
        yield Dovecot(root=root, port=int(server.sockets[0].getsockname()[1]))
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await asyncio.gather(*handlers, return_exceptions=True)
        await asyncio.to_thread(_stop, root)
