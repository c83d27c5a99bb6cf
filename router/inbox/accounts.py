"""Agent accounts for the inbox: argon2 passwords, server-side sessions, login limits."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from router.inbox.api import hash_token as token_hash
from router.storage import Agent, Database

__all__ = ["Accounts", "LoginLimiter", "LoginRefused", "TooManyAttempts", "token_hash"]

logger = logging.getLogger(__name__)

MIN_PASSWORD = 10


class LoginRefused(Exception):
    """Wrong name or password (never says which), or a disabled account."""


class TooManyAttempts(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after:.0f} s")
        self.retry_after = retry_after


class LoginLimiter:
    """At most ``attempts`` failed logins per ``window`` seconds per key (an address, a name).

    In-process: each node counts its own (a load balancer with sticky sessions, or a
    WAF in front, covers a cluster).
    """

    def __init__(self, *, attempts: int = 5, window: float = 900.0) -> None:
        self._attempts = attempts
        self._window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def check(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            failures = self._failures.get(key)
            if not failures:
                continue
            while failures and failures[0] <= now - self._window:
                failures.popleft()
            if len(failures) >= self._attempts:
                raise TooManyAttempts(failures[0] + self._window - now)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        if len(self._failures) > 10_000:
            # Someone is trying many names or addresses: forget what has expired.
            for key in [k for k, v in self._failures.items() if v[-1] <= now - self._window]:
                del self._failures[key]
        for key in keys:
            self._failures[key].append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)


class Accounts:
    def __init__(
        self,
        *,
        db: Database,
        clock: Callable[[], datetime],
        session_hours: float = 12.0,
        limiter: LoginLimiter | None = None,
        secure_cookies: bool = False,
    ) -> None:
        self.secure_cookies = secure_cookies
        self._db = db
        self._clock = clock
        self._ttl = timedelta(hours=session_hours)
        self._hasher = PasswordHasher()
        self.limiter = limiter or LoginLimiter()

    async def hash_password(self, password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
        return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, stored: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def login(self, name: str, password: str, *, address: str) -> tuple[Agent, str, str]:
        """A new session for ``name``: (agent, session token, CSRF token)."""
        keys = (f"address:{address}", f"name:{name.casefold()}")
        self.limiter.check(*keys)
        async with self._db.read() as repo:
            found = await repo.password_hash(name)
        ok = False
        if found is not None and found[1] is not None:
            ok = await self._verify(found[1], password)
        else:
            # Spend the same time on unknown names: no account enumeration by timing.
            await asyncio.to_thread(self._hasher.hash, password or "-")
        if not ok or found is None or not found[0].active:
            self.limiter.failed(*keys)
            logger.warning("failed inbox login for %r from %s", name, address)
            raise LoginRefused("wrong name or password")
        self.limiter.succeeded(*keys)
        agent = found[0]
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = self._clock()
        async with self._db.write() as repo:
            await repo.delete_expired_sessions(now)
            await repo.create_session(
                agent_id=agent.id,
                token_hash=token_hash(token),
                csrf=csrf,
                now=now,
                expires_at=now + self._ttl,
            )
        logger.info("agent %s logged in to the inbox", agent.name)
        return agent, token, csrf

    async def session(self, token: str) -> tuple[Agent, str] | None:
        """The agent and CSRF token of a live session; None once it expired or the agent
        was disabled (checked on every request, so disabling takes effect at once)."""
        async with self._db.read() as repo:
            return await repo.session_agent(token_hash(token), self._clock())

    async def logout(self, token: str) -> None:
        async with self._db.write() as repo:
            await repo.delete_session(token_hash(token))

    async def create(self, name: str, password: str | None, *, role: str = "agent") -> str:
        """A new agent; returns its API token (for integrations)."""
        if role not in ("agent", "admin"):
            raise ValueError("role must be agent or admin")
        password_hash = None if password is None else await self.hash_password(password)
        api_token = secrets.token_urlsafe(32)
        async with self._db.write() as repo:
            if await repo.agent_by_name(name) is not None:
                raise ValueError(f"an agent named {name!r} already exists")
            await repo.add_agent(
                name=name,
                token_hash=token_hash(api_token),
                now=self._clock(),
                password_hash=password_hash,
                role=role,
            )
        return api_token

    async def set_password(self, agent_id: int, password: str) -> None:
        hashed = await self.hash_password(password)
        async with self._db.write() as repo:
            await repo.update_agent(agent_id, password_hash=hashed)
            await repo.delete_sessions(agent_id)

    async def set_active(self, agent_id: int, active: bool) -> None:
        async with self._db.write() as repo:
            await repo.update_agent(agent_id, active=active)
            if not active:
                await repo.delete_sessions(agent_id)

    async def set_language(self, agent_id: int, language: str) -> None:
        async with self._db.write() as repo:
            await repo.update_agent(agent_id, language=language)
