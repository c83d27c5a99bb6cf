"""What several commands use: the database, the SLA section in force."""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.config import Config, SlaConfig

if TYPE_CHECKING:
    from router.storage import Database


async def database(config: Config) -> Database:
    from router.storage import Database

    db = Database(config.storage.url)
    await db.upgrade()
    return db


async def sla_in_force(config: Config, db: Database) -> SlaConfig:
    """The SLA section in force: what an admin saved in the inbox, else config.yaml."""
    async with db.read() as repo:
        stored = await repo.setting("sla")
    if stored is None:
        return config.sla
    return SlaConfig.model_validate({**stored[0], "check_seconds": config.sla.check_seconds})
