"""Time-driven work: SLA warnings and breaches, follow-ups and reminders when due, and
periodic upkeep (the knowledge-base gap scan).

``run_due`` does everything due at the clock's now, each item in a unit of work of
its own, claimed by a conditional UPDATE (``FOR UPDATE SKIP LOCKED`` on PostgreSQL):
with several nodes each alert is raised and each follow-up sent exactly once, and a
follow-up's message is committed with its "done" mark, so a crash can neither lose
nor repeat it (the outbox delivers it). The loop calls ``run_due`` every few
seconds; tests call it directly with a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from router.desk.aftercare import Aftercare
from router.desk.promises import Alert, Promises
from router.desk.work import Units
from router.storage import Scheduled

__all__ = ["Scheduler", "SweepResult"]

logger = logging.getLogger(__name__)


@dataclass
class SweepResult:
    alerts: list[Alert] = field(default_factory=list)
    done: int = 0
    postponed: int = 0
    skipped: int = 0


class Scheduler:
    """Runs what is due: promise alerts, follow-ups, reminders."""

    def __init__(
        self,
        *,
        units: Units,
        promises: Promises,
        aftercare: Aftercare,
        interval: float = 30.0,
        batch_size: int = 100,
        before: Callable[[], Awaitable[object]] | None = None,
        chores: Sequence[Callable[[], Awaitable[object]]] = (),
    ) -> None:
        self._units = units
        self._promises = promises
        self._aftercare = aftercare
        self._interval = interval
        self._batch_size = batch_size
        self._task: asyncio.Task[None] | None = None
        self._before = before
        # Periodic upkeep after each sweep (the gap scan), each on its own.
        self._chores = tuple(chores)

    async def run_due(self) -> SweepResult:
        if self._before is not None:
            await self._before()
        result = SweepResult()
        async with self._units.write() as w:
            result.alerts = await self._promises.sweep(w, limit=self._batch_size)
        while True:
            async with self._units.db.read() as repo:
                due = await repo.due_scheduled(self._units.clock(), self._batch_size)
            progress = 0
            for outcome in await self._run_batch(due):
                setattr(result, outcome, getattr(result, outcome) + 1)
                progress += outcome != "skipped"
            if len(due) < self._batch_size or not progress:
                return result

    async def _run_batch(self, due: list[Scheduled]) -> list[str]:
        """All of ``due`` in one unit of work (one commit); if that fails, each in a unit
        of its own, so one bad item holds up nobody else."""
        if not due:
            return []
        try:
            async with self._units.write() as w:
                return await self._aftercare.run(w, due)
        except Exception:
            if len(due) == 1:
                logger.exception(
                    "scheduled %s %s failed; tried again later", due[0].kind, due[0].id
                )
                return ["skipped"]
        outcomes = []
        for item in due:
            outcomes.extend(await self._run_batch([item]))
        return outcomes

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.run_due()
            except Exception:
                logger.exception("scheduler: sweep failed; again in %.0f s", self._interval)
            for chore in self._chores:
                try:
                    await chore()
                except Exception:
                    logger.exception("scheduler: %s failed; again in %.0f s", chore, self._interval)
            # A periodic chore: what it does is claimed in the database, not timed here.
            await asyncio.sleep(self._interval)
