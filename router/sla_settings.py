"""The SLA settings in force: config.yaml's ``sla`` section, or the one an admin saved.

An admin edits calendars, holidays and policies in the inbox (or ``PUT
/api/agent/sla``) while the service runs. The section is validated exactly as
config.yaml is (the same model, errors naming the key and the reason), stored in
the database and applied at once on this node; other nodes pick it up on their
next scheduler sweep. Everything but ``check_seconds`` (how often this node sweeps)
and ``holiday_files`` (files are the config file's business) may be edited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import yaml
from pydantic import ValidationError

from router import audit
from router.builders import policies_from
from router.config import SlaConfig, explain
from router.promises import Promises
from router.sla import SlaPolicies
from router.storage import Agent, Database

__all__ = ["SettingsRefused", "SlaSettings"]

logger = logging.getLogger(__name__)

KEY = "sla"
_FILE_ONLY = {"check_seconds": "is set per node in config.yaml"}


class SettingsRefused(ValueError):
    """The edited section cannot be used; ``reasons`` name each key and why."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class SlaSettings:
    """Keeps ``promises`` on the SLA section in force."""

    def __init__(
        self,
        *,
        db: Database,
        base: SlaConfig,
        promises: Promises,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._base = base
        self._current = base
        self._promises = promises
        self._clock = clock
        self._seen: datetime | None = None

    @property
    def current(self) -> SlaConfig:
        return self._current

    @property
    def edited(self) -> bool:
        return self._seen is not None

    def as_yaml(self) -> str:
        """The section in force as YAML, as an admin edits it."""
        data = self._current.model_dump(mode="json", exclude=set(_FILE_ONLY))
        for calendar in data.get("calendars", {}).values():
            calendar.pop("holiday_files", None)
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)

    async def refresh(self) -> bool:
        """Apply what an admin saved (here or on another node) since we last looked."""
        async with self._db.read() as repo:
            changed = await repo.setting_changed_at(KEY)
            if changed is None or changed == self._seen:
                return False
            stored = await repo.setting(KEY)
        assert stored is not None
        value, changed = stored
        try:
            section = self._validate(value)
        except SettingsRefused as exc:
            # Saved by a version that took it; this one cannot. Keep what works.
            logger.error("stored SLA settings not applied, config.yaml's stay: %s", exc)
            self._seen = changed
            return False
        self._apply(section)
        self._seen = changed
        logger.info("SLA settings saved by an admin are in force (%s)", changed.isoformat())
        return True

    async def save(self, raw: Any, agent: Agent) -> SlaPolicies:
        """Validate ``raw`` (a mapping, or YAML text), store it and apply it now."""
        if isinstance(raw, str):
            try:
                raw = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise SettingsRefused([f"sla: not valid YAML: {exc}"]) from exc
        section = self._validate(raw)
        now = self._clock()
        async with self._db.write() as repo:
            stored = section.model_dump(mode="json", exclude=set(_FILE_ONLY))
            await repo.put_setting(KEY, stored, now=now, agent_id=agent.id)
            await audit.record(repo, now, agent, "change_settings", "setting", None, key=KEY)
        self._apply(section)
        self._seen = now
        logger.info("SLA settings changed by %s", agent.name)
        return self._promises.policies

    def _validate(self, raw: Any) -> SlaConfig:
        if not isinstance(raw, Mapping):
            raise SettingsRefused(["sla: must be a mapping of settings"])
        reasons = [f"sla.{key}: {why}" for key, why in _FILE_ONLY.items() if key in raw]
        for name, calendar in (raw.get("calendars") or {}).items():
            if isinstance(calendar, Mapping) and calendar.get("holiday_files"):
                reasons.append(
                    f"sla.calendars.{name}.holiday_files: list the dates in holidays and "
                    "working_days here (files belong in config.yaml)"
                )
        if reasons:
            raise SettingsRefused(reasons)
        try:
            section = SlaConfig.model_validate(
                {**dict(raw), "check_seconds": self._base.check_seconds}
            )
            policies_from(section)  # every calendar has open time, every name resolves
        except ValidationError as exc:
            raise SettingsRefused([f"sla.{line}" for line in explain(exc).splitlines()]) from exc
        except ValueError as exc:
            raise SettingsRefused([f"sla: {exc}"]) from exc
        return section

    def _apply(self, section: SlaConfig) -> None:
        self._current = section
        self._promises.policies = policies_from(section)
