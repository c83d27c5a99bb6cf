"""The SLA settings in force: config.yaml's ``sla`` section, or the one an admin saved.

An admin edits calendars, holidays and policies in the inbox (or ``PUT
/api/agent/sla``) while the service runs (``router.settings.editable``). Everything but
``check_seconds`` (how often this node sweeps) and ``holiday_files`` (files are the
config file's business) may be edited.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from router.config import RoutingConfig, SlaConfig
from router.desk.promises import Promises
from router.desk.sla import policies_from
from router.settings.editable import EditableSection, SettingsRefused
from router.storage import Database

__all__ = ["SettingsRefused", "SlaSettings"]


class SlaSettings(EditableSection[SlaConfig]):
    """Keeps ``promises`` on the SLA section in force."""

    KEY = "sla"
    MODEL = SlaConfig
    FILE_ONLY: ClassVar[Mapping[str, str]] = {"check_seconds": "is set per node in config.yaml"}

    def __init__(
        self,
        *,
        db: Database,
        base: SlaConfig,
        promises: Promises,
        clock: Callable[[], datetime],
        routing: Callable[[], RoutingConfig] | None = None,
    ) -> None:
        super().__init__(db=db, base=base, clock=clock)
        self._promises = promises
        # The routing rules in force, which may name this section's policies.
        self._routing = routing

    def _for_editing(self, data: dict[str, Any]) -> dict[str, Any]:
        for calendar in data.get("calendars", {}).values():
            calendar.pop("holiday_files", None)
        return data

    def _refuse(self, raw: Mapping[str, Any]) -> list[str]:
        return [
            f"sla.calendars.{name}.holiday_files: list the dates in holidays and "
            "working_days here (files belong in config.yaml)"
            for name, calendar in (raw.get("calendars") or {}).items()
            if isinstance(calendar, Mapping) and calendar.get("holiday_files")
        ]

    def _check(self, section: SlaConfig) -> list[str]:
        policies_from(section)  # every calendar has open time, every name resolves
        if self._routing is None:
            return []
        return [
            f"policies: routing.{problem} (change the routing rule first)"
            for problem in self._routing().check_against(section)
        ]

    def _apply(self, section: SlaConfig) -> None:
        super()._apply(section)
        self._promises.policies = policies_from(section)
