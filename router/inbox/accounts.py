"""Agent accounts for the inbox: argon2 passwords, server-side sessions, login limits."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from router.storage import Agent, Database

__all__ = ["Accounts", "LoginLimiter", "LoginRefused", "TooManyAttempts", "hash_token"]

logger = logging.getLogger(__name__)

MIN_PASSWORD = 10


def hash_token(token: str) -> str:
    """API tokens and session tokens are stored as their SHA-256 only."""
    return hashlib.sha256(token.encode()).hexdigest()


class LoginRefused(Exception):
    """Wrong name or password (never says which), or a disabled account."""


class TooManyAttempts(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(slots=True)
class _Throttle:
    failures: int = 0
    last: float = 0.0
    next_allowed: float = 0.0


class LoginLimiter:
    """Growing delays after failed logins, never a lock a stranger can set off.

    Each attempt is counted before its password is checked, so parallel guesses
    cannot slip past the count. Three keys slow guessing down:

    * the name from one address: ``free`` attempts, then 1 s, 2 s, 4 s … up to
      ``max_delay`` between attempts;
    * one address, whatever the names: the same, with ``free × 4`` attempts (an
      office behind one NAT);
    * the name from everywhere (a guesser with many addresses): the same delays but
      never more than ``name_max_delay``, and not at all from an address the agent
      signed in from before: a stranger cannot lock an agent out.

    A success clears the name's counts. Nothing is kept after ``window`` seconds
    without attempts. In-process: each node counts its own.
    """

    def __init__(
        self,
        *,
        attempts: int = 5,
        window: float = 900.0,
        max_delay: float = 900.0,
        name_max_delay: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._free = attempts
        self._window = window
        self._max_delay = max_delay
        self._name_max_delay = name_max_delay
        self._clock = clock
        self._throttles: dict[str, _Throttle] = {}
        # (name, address) pairs that signed in: the name-wide delay spares them.
        self._trusted: dict[tuple[str, str], float] = {}

    def _keys(self, name: str, address: str) -> list[tuple[str, int, float]]:
        name = name.casefold()
        keys = [
            (f"pair:{name}\x00{address}", self._free, self._max_delay),
            (f"address:{address}", self._free * 4, self._max_delay),
        ]
        if (name, address) not in self._trusted:
            keys.append((f"name:{name}", self._free * 2, self._name_max_delay))
        return keys

    def _delay(self, failures: int, free: int, cap: float) -> float:
        if failures < free:
            return 0.0
        return float(min(cap, 2.0 ** min(failures - free, 30)))

    def attempt(self, name: str, address: str) -> None:
        """Count an attempt now, before its password is checked; TooManyAttempts if
        one of its keys must still wait."""
        now = self._clock()
        self._forget(now)
        keys = self._keys(name, address)
        throttles = []
        for key, _, _ in keys:
            throttle = self._throttles.get(key)
            if throttle is not None and now - throttle.last > self._window:
                throttle = None
                del self._throttles[key]
            throttles.append(throttle)
        wait = max((t.next_allowed - now for t in throttles if t is not None), default=0.0)
        if wait > 0:
            raise TooManyAttempts(wait)
        for (key, free, cap), throttle in zip(keys, throttles, strict=True):
            if throttle is None:
                throttle = self._throttles[key] = _Throttle()
            throttle.failures += 1
            throttle.last = now
            throttle.next_allowed = now + self._delay(throttle.failures, free, cap)

    def succeeded(self, name: str, address: str) -> None:
        """The attempt was right: the name's counts go, the address keeps the others'."""
        folded = name.casefold()
        self._throttles.pop(f"pair:{folded}\x00{address}", None)
        self._throttles.pop(f"name:{folded}", None)
        shared = self._throttles.get(f"address:{address}")
        if shared is not None:
            shared.failures = max(shared.failures - 1, 0)
            shared.next_allowed = shared.last + self._delay(
                shared.failures, self._free * 4, self._max_delay
            )
        self._trusted[(folded, address)] = self._clock()

    def _forget(self, now: float) -> None:
        if len(self._throttles) > 10_000:
            # Someone is trying many names or addresses: forget what has expired.
            for key in [k for k, t in self._throttles.items() if now - t.last > self._window]:
                del self._throttles[key]
        if len(self._trusted) > 10_000:
            for pair in sorted(self._trusted, key=self._trusted.__getitem__)[:5_000]:
                del self._trusted[pair]


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
        self.limiter.attempt(name, address)
        async with self._db.read() as repo:
            found = await repo.password_hash(name)
        ok = False
        if found is not None and found[1] is not None:
            ok = await self._verify(found[1], password)
        else:
            # Spend the same time on unknown names: no account enumeration by timing.
            await asyncio.to_thread(self._hasher.hash, password or "-")
        if not ok or found is None or not found[0].active:
            logger.warning("failed inbox login for %r from %s", name, address)
            raise LoginRefused("wrong name or password")
        self.limiter.succeeded(name, address)
        agent = found[0]
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = self._clock()
        async with self._db.write() as repo:
            await repo.delete_expired_sessions(now)
            await repo.create_session(
                agent_id=agent.id,
                token_hash=hash_token(token),
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
            return await repo.session_agent(hash_token(token), self._clock())

    async def logout(self, token: str) -> None:
        async with self._db.write() as repo:
            await repo.delete_session(hash_token(token))

    async def create(self, name: str, password: str | None, *, role: str = "agent") -> str:
        """A new agent; returns its API token (for integrations)."""
        if role not in ("agent", "lead", "admin"):
            raise ValueError("role must be agent, lead (sees the reports) or admin")
        password_hash = None if password is None else await self.hash_password(password)
        api_token = secrets.token_urlsafe(32)
        async with self._db.write() as repo:
            if await repo.agent_by_name(name) is not None:
                raise ValueError(f"an agent named {name!r} already exists")
            await repo.add_agent(
                name=name,
                token_hash=hash_token(api_token),
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
