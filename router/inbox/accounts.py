"""Agent accounts for the inbox: argon2 passwords, server-side sessions, login limits."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from router import audit
from router.storage import Agent, Database, Repositories
from router.storage.shared_queries import LoginThrottle

__all__ = [
    "Accounts",
    "DatabaseThrottles",
    "LoginLimiter",
    "LoginRefused",
    "MemoryThrottles",
    "TooManyAttempts",
    "hash_token",
]

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


class ThrottleBook(Protocol):
    """Where the login limiter keeps its counts, for one attempt: loaded, changed and
    saved as one unit (two nodes counting the same name take turns)."""

    async def load(self, keys: list[str]) -> dict[str, _Throttle]: ...
    async def save(self, throttles: dict[str, _Throttle]) -> None: ...
    async def drop(self, keys: list[str]) -> None: ...
    async def trusted(self, key: str) -> bool: ...
    async def trust(self, key: str, now: float) -> None: ...
    async def forget(self, now: float, window: float) -> None: ...


class ThrottleStore(Protocol):
    def book(self) -> AbstractAsyncContextManager[ThrottleBook]: ...


class MemoryThrottles:
    """The counts in this process (one node; the tests)."""

    def __init__(self) -> None:
        self._throttles: dict[str, _Throttle] = {}
        # (name, address) keys that signed in, with when.
        self._trusted: dict[str, float] = {}
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def book(self) -> AsyncIterator[ThrottleBook]:
        async with self._lock:
            yield self

    async def load(self, keys: list[str]) -> dict[str, _Throttle]:
        return {
            k: _Throttle(t.failures, t.last, t.next_allowed)
            for k in keys
            if (t := self._throttles.get(k)) is not None
        }

    async def save(self, throttles: dict[str, _Throttle]) -> None:
        self._throttles.update(throttles)

    async def drop(self, keys: list[str]) -> None:
        for key in keys:
            self._throttles.pop(key, None)

    async def trusted(self, key: str) -> bool:
        return key in self._trusted

    async def trust(self, key: str, now: float) -> None:
        self._trusted[key] = now

    async def forget(self, now: float, window: float) -> None:
        if len(self._throttles) > 10_000:
            # Someone is trying many names or addresses: forget what has expired.
            for key in [k for k, t in self._throttles.items() if now - t.last > window]:
                del self._throttles[key]
        if len(self._trusted) > 10_000:
            for pair in sorted(self._trusted, key=self._trusted.__getitem__)[:5_000]:
                del self._trusted[pair]


class DatabaseThrottles:
    """The counts in the database, shared by every node: a guesser spreading attempts
    over the nodes behind a balancer is counted once. Keys are stored as their SHA-256
    (no agent name or address in the table); trusted pairs are kept for 90 days."""

    TRUST_SECONDS = 90 * 86400.0

    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def book(self) -> AsyncIterator[ThrottleBook]:
        async with self._db.write() as repo:
            yield _DatabaseBook(repo, self.TRUST_SECONDS)


class _DatabaseBook:
    def __init__(self, repo: Repositories, trust_seconds: float) -> None:
        self._repo = repo
        self._trust_seconds = trust_seconds

    async def load(self, keys: list[str]) -> dict[str, _Throttle]:
        hashed = {_hashed(k): k for k in keys}
        found = await self._repo.lock_login_throttles(list(hashed))
        return {hashed[h]: _Throttle(*t) for h, t in found.items()}

    async def save(self, throttles: dict[str, _Throttle]) -> None:
        await self._repo.save_login_throttles(
            {
                _hashed(k): LoginThrottle(t.failures, t.last, t.next_allowed)
                for k, t in throttles.items()
            }
        )

    async def drop(self, keys: list[str]) -> None:
        await self._repo.drop_login_throttles([_hashed(k) for k in keys])

    async def trusted(self, key: str) -> bool:
        return await self._repo.login_trusted(_hashed(key))

    async def trust(self, key: str, now: float) -> None:
        await self._repo.trust_login(_hashed(key), now)

    async def forget(self, now: float, window: float) -> None:
        await self._repo.forget_login_throttles(
            counts_before=now - window, trust_before=now - self._trust_seconds
        )


def _hashed(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


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
    without attempts. The counts live in ``store``: this process's memory by default,
    the database (``DatabaseThrottles``) when several nodes serve the inbox.
    """

    def __init__(
        self,
        *,
        attempts: int = 5,
        window: float = 900.0,
        max_delay: float = 900.0,
        name_max_delay: float = 30.0,
        clock: Callable[[], float] = time.time,
        store: ThrottleStore | None = None,
    ) -> None:
        self._free = attempts
        self._window = window
        self._max_delay = max_delay
        self._name_max_delay = name_max_delay
        self._clock = clock
        self._store: ThrottleStore = store or MemoryThrottles()

    async def _keys(
        self, book: ThrottleBook, name: str, address: str
    ) -> list[tuple[str, int, float]]:
        name = name.casefold()
        keys = [
            (f"pair:{name}\x00{address}", self._free, self._max_delay),
            (f"address:{address}", self._free * 4, self._max_delay),
        ]
        if not await book.trusted(f"trusted:{name}\x00{address}"):
            keys.append((f"name:{name}", self._free * 2, self._name_max_delay))
        return keys

    def _delay(self, failures: int, free: int, cap: float) -> float:
        if failures < free:
            return 0.0
        return float(min(cap, 2.0 ** min(failures - free, 30)))

    async def attempt(self, name: str, address: str) -> None:
        """Count an attempt now, before its password is checked; TooManyAttempts if
        one of its keys must still wait."""
        now = self._clock()
        async with self._store.book() as book:
            await book.forget(now, self._window)
            keys = await self._keys(book, name, address)
            found = await book.load([key for key, _, _ in keys])
            # A count without attempts for ``window`` is forgotten.
            live = {k: t for k, t in found.items() if now - t.last <= self._window}
            wait = max((t.next_allowed - now for t in live.values()), default=0.0)
            if wait > 0:
                raise TooManyAttempts(wait)
            for key, free, cap in keys:
                throttle = live.setdefault(key, _Throttle())
                throttle.failures += 1
                throttle.last = now
                throttle.next_allowed = now + self._delay(throttle.failures, free, cap)
            await book.save(live)

    async def succeeded(self, name: str, address: str) -> None:
        """The attempt was right: the name's counts go, the address keeps the others'."""
        folded = name.casefold()
        async with self._store.book() as book:
            await book.drop([f"pair:{folded}\x00{address}", f"name:{folded}"])
            shared = (await book.load([f"address:{address}"])).get(f"address:{address}")
            if shared is not None:
                shared.failures = max(shared.failures - 1, 0)
                shared.next_allowed = shared.last + self._delay(
                    shared.failures, self._free * 4, self._max_delay
                )
                await book.save({f"address:{address}": shared})
            await book.trust(f"trusted:{folded}\x00{address}", self._clock())


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
        await self.limiter.attempt(name, address)
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
        await self.limiter.succeeded(name, address)
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
            await audit.record(repo, now, agent, "sign_in", "agent", agent.id)
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

    async def create(
        self, name: str, password: str | None, *, role: str = "agent", by: Agent | None = None
    ) -> str:
        """A new agent (added by admin ``by``; None: the command line); returns its API
        token (for integrations)."""
        if role not in ("agent", "lead", "admin"):
            raise ValueError("role must be agent, lead (sees the reports) or admin")
        password_hash = None if password is None else await self.hash_password(password)
        api_token = secrets.token_urlsafe(32)
        async with self._db.write() as repo:
            if await repo.agent_by_name(name) is not None:
                raise ValueError(f"an agent named {name!r} already exists")
            added = await repo.add_agent(
                name=name,
                token_hash=hash_token(api_token),
                now=self._clock(),
                password_hash=password_hash,
                role=role,
            )
            await audit.record(
                repo, self._clock(), by, "add_agent", "agent", added.id, name=name, role=role
            )
        return api_token

    async def set_password(self, agent_id: int, password: str, *, by: Agent | None = None) -> None:
        hashed = await self.hash_password(password)
        async with self._db.write() as repo:
            await repo.update_agent(agent_id, password_hash=hashed)
            await repo.delete_sessions(agent_id)
            await audit.record(repo, self._clock(), by, "set_password", "agent", agent_id)

    async def set_active(self, agent_id: int, active: bool, *, by: Agent | None = None) -> None:
        async with self._db.write() as repo:
            await repo.update_agent(agent_id, active=active)
            if not active:
                await repo.delete_sessions(agent_id)
            action = "enable_agent" if active else "disable_agent"
            await audit.record(repo, self._clock(), by, action, "agent", agent_id)

    async def set_language(self, agent_id: int, language: str) -> None:
        async with self._db.write() as repo:
            await repo.update_agent(agent_id, language=language)
