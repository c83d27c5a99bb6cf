"""The router: ingest, conversations, storage, outbox, handoff queue, events, the inbox.

``Router`` and ``IntakeClosed`` are read on first use: a command that needs only the
configuration and the bot (``relaydesk kb ask``) does not import the whole service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.desk.pipeline import IntakeClosed, Router

__all__ = ["IntakeClosed", "Router"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from router.desk import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'router' has no attribute {name!r}")
