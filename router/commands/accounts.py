"""`relaydesk db upgrade` and `relaydesk agents …`."""

from __future__ import annotations

import re
import sys

from router.commands.shared import database
from router.config import Config


async def db_upgrade(config: Config) -> int:
    db = await database(config)
    await db.dispose()
    print("database schema is up to date")
    return 0


async def agents_add(
    config: Config, name: str, *, password: str | None = None, role: str = "agent"
) -> int:
    name = name.strip()
    if not name:
        print("relaydesk: an agent needs a name", file=sys.stderr)
        return 2
    from router.builders import utc_now
    from router.inbox import Accounts

    db = await database(config)
    try:
        accounts = Accounts(db=db, clock=utc_now)
        token = await accounts.create(name, password, role=role)
    except ValueError as exc:
        print(f"relaydesk: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    print(f"{role} {name} added. API token (shown once):", file=sys.stderr)
    print(token)
    return 0


async def agents_change(config: Config, name: str, action: str, *, password: str) -> int:
    from router.builders import utc_now
    from router.inbox import Accounts

    db = await database(config)
    try:
        async with db.read() as repo:
            agent = await repo.agent_by_name(name)
        if agent is None:
            print(f"relaydesk: no agent named {name!r}", file=sys.stderr)
            return 2
        accounts = Accounts(db=db, clock=utc_now)
        if action == "password":
            await accounts.set_password(agent.id, password)
        else:
            await accounts.set_active(agent.id, action == "enable")
    except ValueError as exc:
        print(f"relaydesk: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    print(f"agent {name}: {action} done", file=sys.stderr)
    return 0


async def agents_email(config: Config, name: str, address: str) -> int:
    address = address.strip()
    if address and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
        print(f"relaydesk: {address!r} is not an email address", file=sys.stderr)
        return 2
    db = await database(config)
    try:
        async with db.write() as repo:
            agent = await repo.agent_by_name(name)
            if agent is None:
                print(f"relaydesk: no agent named {name!r}", file=sys.stderr)
                return 2
            await repo.set_agent_email(agent.id, address or None)
    finally:
        await db.dispose()
    print(
        f"agent {name}: alerts {'to ' + address if address else 'in the inbox only'}",
        file=sys.stderr,
    )
    return 0


async def agents_list(config: Config) -> int:
    db = await database(config)
    try:
        async with db.read() as repo:
            agents = await repo.agents()
    finally:
        await db.dispose()
    for agent in agents:
        state = "active" if agent.active else "disabled"
        print(f"{agent.id}\t{agent.name}\t{agent.role}\t{state}\t{agent.created_at:%Y-%m-%d}")
    return 0
