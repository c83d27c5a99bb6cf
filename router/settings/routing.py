"""The teams and routing rules in force: config.yaml's ``routing`` section, or the one
an admin saved on the routing page (or ``PUT /api/agent/routing``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from router.config import RoutingConfig, SlaConfig
from router.desk.handoff import Handoffs
from router.desk.routing import Routing
from router.settings.editable import EditableSection
from router.storage import Database

__all__ = ["RoutingSettings"]


class RoutingSettings(EditableSection[RoutingConfig]):
    """Keeps the handoffs on the routing section in force."""

    KEY = "routing"
    MODEL = RoutingConfig
    COMPACT = True

    def __init__(
        self,
        *,
        db: Database,
        base: RoutingConfig,
        handoffs: Handoffs,
        sla: Callable[[], SlaConfig],
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(db=db, base=base, clock=clock)
        self._handoffs = handoffs
        self._sla = sla
        handoffs.routing = Routing(base)

    @property
    def routing(self) -> Routing:
        return self._handoffs.routing

    def _check(self, section: RoutingConfig) -> list[str]:
        return section.check_against(self._sla())

    def _apply(self, section: RoutingConfig) -> None:
        super()._apply(section)
        self._handoffs.routing = Routing(section)
