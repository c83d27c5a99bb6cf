"""The real service on a loopback port, with helpers for the agent API."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient, TestServer

from channels.memory import MemoryChannel
from router.app import create_app
from router.builders import utc_now
from router.config import Config, load_config
from router.delivery.events import KnowledgeReloaded, MessageDelivered
from router.inbox import hash_token
from router.keys import DATABASE, EVENT_BUS, ROUTER, SCHEDULER
from router.storage import Database

ROOT = Path(__file__).resolve().parents[2]
DEMO_KB = ROOT / "knowledge" / "demo"
# Fitted knowledge bases and question embeddings, shared by every service the tests
# start (and kept between runs): keyed by what they were made from, so a test gets
# exactly what a fresh fit would give it, without fitting the demo again each time.
KB_CACHE = Path(
    os.environ.get("RELAYDESK_TEST_KB_CACHE", ROOT / "tests" / "artifacts" / "kb-cache")
)
SHARED = ROOT.parent / "shared"
# `make test` and CI: a missing test dependency (browser, Dovecot, PostgreSQL, the shared
# data, the semantic model) fails the run instead of skipping tests.
STRICT = (
    os.environ.get("CI", "").lower() == "true" or os.environ.get("RELAYDESK_TEST_STRICT", "") == "1"
)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_config(tmp_path: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """A config for tests: its own SQLite file and data dir, the demo KB, fast retries."""
    raw: dict[str, Any] = {
        "server": {"data_dir": str(tmp_path / "data"), "secret_key": secrets.token_hex(16)},
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'relaydesk.db'}"},
        "knowledge": {"path": str(DEMO_KB), "cache_dir": str(KB_CACHE)},
        "outbox": {
            "poll_interval_seconds": 0.05,
            "backoff_base_seconds": 0.01,
            "backoff_max_seconds": 0.05,
            "max_attempts": 3,
        },
        # Tests type faster than people, all from one address; the rate-limit tests set
        # their own.
        "channels": {
            "webchat": {
                "rate_limit": {"burst": 50, "per_minute": 600},
                "new_visitors_per_minute": 10_000,
                "address_messages_per_minute": 100_000,
            }
        },
    }
    raw = _merge(raw, overrides or {})
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_config(path)


@dataclass
class Service:
    client: TestClient[Any, Any]
    config: Config
    memory: MemoryChannel
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def app(self) -> Any:
        return self.client.app

    @property
    def db(self) -> Database:
        return self.app[DATABASE]

    @property
    def router(self) -> Any:
        return self.app[ROUTER]

    @property
    def events(self) -> Any:
        return self.app[EVENT_BUS]

    @asynccontextmanager
    async def delivered(self, count: int, *, within: float = 5.0) -> AsyncIterator[None]:
        """Leaves the block only once ``count`` replies sent inside it were delivered."""
        async with self.events.subscribe() as events:
            yield
            seen = 0
            async with asyncio.timeout(within):
                while seen < count:
                    if isinstance(await events.get(), MessageDelivered):
                        seen += 1

    @asynccontextmanager
    async def relearned(self, *, within: float = 180.0) -> AsyncIterator[None]:
        """Leaves the block only once the bot relearned its knowledge base, as it does in
        the background after a Save as FAQ, a published gap or an accepted word."""
        async with self.events.subscribe() as events:
            yield
            async with asyncio.timeout(within):
                while not isinstance(await events.get(), KnowledgeReloaded):
                    pass

    async def add_agent(self, name: str, *, role: str = "agent") -> str:
        """An agent with an API token (``role="admin"`` for an admin); returns the token."""
        token = secrets.token_urlsafe(24)
        async with self.db.write() as repo:
            await repo.add_agent(name=name, token_hash=hash_token(token), now=utc_now(), role=role)
        self.tokens[name] = token
        return token

    async def api(
        self, agent: str | None, method: str, path: str, json: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[agent]}"} if agent else {}
        async with self.client.request(method, path, json=json, headers=headers) as response:
            body = await response.json()
            return response.status, body


@asynccontextmanager
async def running_service(
    tmp_path: Path,
    *,
    database: Database | None = None,
    overrides: Mapping[str, Any] | None = None,
    clock: Callable[[], datetime] = utc_now,
    drive_sweeps: bool = False,
) -> AsyncIterator[Service]:
    """The whole service on a free port. ``drive_sweeps``: the scheduler's own loop is
    stopped once the service is up, so the test's ``run_due`` calls are the only sweeps
    (a loop sweep still under way when the test moves a fake clock would take what the
    test then looks for)."""
    config = make_config(tmp_path, overrides)
    memory = MemoryChannel()
    app = create_app(config, extra_channels=[memory], database=database, clock=clock)
    async with TestServer(app, host="127.0.0.1", port=0) as server, TestClient(server) as client:
        if drive_sweeps:
            await app[SCHEDULER].stop()
        yield Service(client=client, config=config, memory=memory)
