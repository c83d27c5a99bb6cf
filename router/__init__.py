"""The router: ingest, conversations, storage, outbox, handoff queue, events, the inbox."""

from router.pipeline import IntakeClosed, Router

__all__ = ["IntakeClosed", "Router"]
