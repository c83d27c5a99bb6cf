"""What ``/metrics`` exposes, with prometheus-client.

Counters and histograms live in the process (one service per process, as
``relaydesk serve`` runs); what the database knows (conversations and outbox rows
by status, the oldest pending reply) and what this node holds open (websockets) is
read when Prometheus scrapes. See docs/metrics.md for every series and a Grafana
dashboard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "BOT_DECISIONS",
    "DELIVERIES",
    "INGESTED",
    "INGEST_SECONDS",
    "KNOWLEDGE_RELOADS",
    "SLA_ALERTS",
    "STALE_CLAIMS",
    "SURVEYS",
    "Snapshot",
    "exposition",
]

REGISTRY = CollectorRegistry(auto_describe=True)

INGESTED = Counter(
    "relaydesk_messages_ingested",
    "Customer messages stored, by channel",
    ["channel"],
    registry=REGISTRY,
)
INGEST_SECONDS = Histogram(
    "relaydesk_ingest_seconds",
    "From a message reaching the router to its unit of work committed (bot decision included)",
    ["channel"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
BOT_DECISIONS = Counter(
    "relaydesk_bot_decisions",
    "What the bot decided, by kind (answer, clarify, handoff, ...) and reason",
    ["kind", "reason"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "relaydesk_deliveries",
    "Delivery attempts of outgoing messages, by channel and outcome (sent, retry, dead)",
    ["channel", "outcome"],
    registry=REGISTRY,
)
STALE_CLAIMS = Counter(
    "relaydesk_outbox_stale_claims",
    "Replies not sent by the node that claimed them because their lease was nearly over "
    "(another node sends them once it ends; many mean the lease is too short for the load)",
    registry=REGISTRY,
)
SLA_ALERTS = Counter(
    "relaydesk_sla_alerts",
    "Promises about to be missed (warning) and missed (breach), by metric",
    ["metric", "level"],
    registry=REGISTRY,
)
SURVEYS = Counter(
    "relaydesk_surveys",
    "Satisfaction surveys sent, and answered by score",
    ["event", "score"],
    registry=REGISTRY,
)
KNOWLEDGE_RELOADS = Counter(
    "relaydesk_knowledge_reloads",
    "Knowledge base reloads, by result (ok, failed)",
    ["result"],
    registry=REGISTRY,
)


class Snapshot(Collector):
    """Gauges read at scrape time from the database and this node's open sockets."""

    def __init__(
        self,
        *,
        conversations: dict[str, int],
        outbox: dict[str, int],
        oldest_pending: datetime | None,
        now: datetime,
        sockets: dict[str, int],
    ) -> None:
        self._conversations = conversations
        self._outbox = outbox
        self._oldest = oldest_pending
        self._now = now
        self._sockets = sockets

    def collect(self) -> Iterable[Metric]:
        conversations = GaugeMetricFamily(
            "relaydesk_conversations", "Conversations by status", labels=["status"]
        )
        for status, count in sorted(self._conversations.items()):
            conversations.add_metric([status], count)
        yield conversations
        outbox = GaugeMetricFamily(
            "relaydesk_outbox", "Outgoing messages by delivery status", labels=["status"]
        )
        for status, count in sorted(self._outbox.items()):
            outbox.add_metric([status], count)
        yield outbox
        yield GaugeMetricFamily(
            "relaydesk_outbox_oldest_pending_seconds",
            "Age of the oldest reply still waiting to be delivered (0: none)",
            value=max((self._now - self._oldest).total_seconds(), 0.0) if self._oldest else 0.0,
        )
        sockets = GaugeMetricFamily(
            "relaydesk_websockets", "Open websockets on this node, by kind", labels=["kind"]
        )
        for kind, count in sorted(self._sockets.items()):
            sockets.add_metric([kind], count)
        yield sockets


def exposition(snapshot: Snapshot, extra: Callable[[], Iterable[Collector]] = tuple) -> bytes:
    """The text format Prometheus scrapes: the process's series and the snapshot."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(snapshot)
    for collector in extra():
        scrape.register(collector)
    return generate_latest(REGISTRY) + generate_latest(scrape)
