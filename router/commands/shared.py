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
    """The SLA section in force: what an admin saved in the inbox, else config.yaml's
    (read as the service reads it, ``router.settings.sla``)."""
    from router.builders import utc_now
    from router.desk.promises import Promises
    from router.desk.sla import policies_from
    from router.settings.sla import SlaSettings

    settings = SlaSettings(
        db=db, base=config.sla, promises=Promises(policies_from(config.sla)), clock=utc_now
    )
    await settings.refresh()
    return settings.current
