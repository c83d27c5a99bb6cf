"""Settings an admin edits while the service runs: config.yaml's section until one is saved.

A section (the SLA promises, the teams and routing rules) is validated exactly as
config.yaml's is (the same model, errors naming the key and the reason), stored in
the database and applied at once on this node; other nodes pick it up on their next
scheduler sweep (``refresh``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from router import audit
from router.config import explain
from router.storage import Agent, Database

__all__ = ["EditableSection", "SettingsRefused"]

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=BaseModel)


class SettingsRefused(ValueError):
    """The edited section cannot be used; ``reasons`` name each key and why."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class EditableSection(Generic[S]):
    """Keeps one section of the settings in force; subclasses apply it."""

    # The section's name in config.yaml and its key in the settings table.
    KEY: ClassVar[str]
    MODEL: ClassVar[type[BaseModel]]
    # Keys that only config.yaml may set, and why.
    FILE_ONLY: ClassVar[Mapping[str, str]] = {}
    # Show only what differs from the defaults when editing (lists of rules whose
    # every unset condition would otherwise fill the page).
    COMPACT: ClassVar[bool] = False

    def __init__(self, *, db: Database, base: S, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._base = base
        self._current = base
        self._clock = clock
        self._seen: datetime | None = None

    @property
    def current(self) -> S:
        return self._current

    @property
    def edited(self) -> bool:
        return self._seen is not None

    def as_yaml(self) -> str:
        """The section in force as YAML, as an admin edits it."""
        data = self._current.model_dump(
            mode="json", exclude=set(self.FILE_ONLY), exclude_defaults=self.COMPACT
        )
        return yaml.safe_dump(self._for_editing(data), allow_unicode=True, sort_keys=False)

    async def refresh(self) -> bool:
        """Apply what an admin saved (here or on another node) since we last looked."""
        async with self._db.read() as repo:
            changed = await repo.setting_changed_at(self.KEY)
            if changed is None or changed == self._seen:
                return False
            stored = await repo.setting(self.KEY)
        assert stored is not None
        value, changed = stored
        try:
            section = self.validate(value)
        except SettingsRefused as exc:
            # Saved by a version that took it; this one cannot. Keep what works.
            logger.error("stored %s settings not applied, config.yaml's stay: %s", self.KEY, exc)
            self._seen = changed
            return False
        self._apply(section)
        self._seen = changed
        logger.info(
            "%s settings saved by an admin are in force (%s)", self.KEY, changed.isoformat()
        )
        return True

    async def save(self, raw: Any, agent: Agent) -> S:
        """Validate ``raw`` (a mapping, or YAML text), store it and apply it now."""
        if isinstance(raw, str):
            try:
                raw = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise SettingsRefused([f"{self.KEY}: not valid YAML: {exc}"]) from exc
        section = self.validate(raw)
        now = self._clock()
        async with self._db.write() as repo:
            stored = section.model_dump(mode="json", exclude=set(self.FILE_ONLY))
            await repo.put_setting(self.KEY, stored, now=now, agent_id=agent.id)
            await audit.record(repo, now, agent, "change_settings", "setting", None, key=self.KEY)
        self._apply(section)
        self._seen = now
        logger.info("%s settings changed by %s", self.KEY, agent.name)
        return section

    def validate(self, raw: Any) -> S:
        """``raw`` as the section's model, or SettingsRefused with every reason."""
        if not isinstance(raw, Mapping):
            raise SettingsRefused([f"{self.KEY}: must be a mapping of settings"])
        reasons = [f"{self.KEY}.{key}: {why}" for key, why in self.FILE_ONLY.items() if key in raw]
        reasons += self._refuse(raw)
        if reasons:
            raise SettingsRefused(reasons)
        try:
            section: S = self.MODEL.model_validate(self._with_file_only(raw))  # type: ignore[assignment]
            reasons = self._check(section)
        except ValidationError as exc:
            raise SettingsRefused(
                [f"{self.KEY}.{line}" for line in explain(exc).splitlines()]
            ) from exc
        except ValueError as exc:
            raise SettingsRefused([f"{self.KEY}: {exc}"]) from exc
        if reasons:
            raise SettingsRefused([f"{self.KEY}.{r}" for r in reasons])
        return section

    # -- what a section adds --------------------------------------------------------

    def _for_editing(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def _refuse(self, raw: Mapping[str, Any]) -> list[str]:
        """Reasons to refuse ``raw`` before it is parsed."""
        return []

    def _with_file_only(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return {**dict(raw), **{key: getattr(self._base, key) for key in self.FILE_ONLY}}

    def _check(self, section: S) -> list[str]:
        """Reasons to refuse a parsed section (names it uses that do not resolve)."""
        return []

    def _apply(self, section: S) -> None:
        self._current = section
