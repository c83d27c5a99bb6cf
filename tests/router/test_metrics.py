"""/metrics speaks Prometheus: parsed with prometheus-client's own parser, the series move
with what the service does, and a token keeps strangers out when configured."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.service import Service, running_service


async def scrape(
    service: Service, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with service.client.get("/metrics", headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_the_series_follow_what_the_service_does(sqlite_service: Service) -> None:
    service = sqlite_service
    before = await scrape(service)
    memory = service.memory
    await memory.inject(memory.message("How long is the warranty?", external_id="m1"))
    await memory.inject(memory.message("talk to a person", external_id="m2", sender="b"))
    await memory.wait_for_sent(2)
    after = await scrape(service)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("relaydesk_messages_ingested_total", channel="memory") == 2
    assert grew("relaydesk_ingest_seconds_count", channel="memory") == 2
    assert grew("relaydesk_bot_decisions_total", kind="handoff", reason="asked_for_human") == 1
    decisions = sum(
        v - value(before, n, **dict(labels))
        for (n, labels), v in after.items()
        if n == "relaydesk_bot_decisions_total"
    )
    assert decisions == 2
    assert value(after, "relaydesk_conversations", status="queued") == 1
    assert value(after, "relaydesk_conversations", status="bot") == 1
    assert grew("relaydesk_deliveries_total", channel="memory", outcome="sent") >= 1
    assert ("relaydesk_outbox_oldest_pending_seconds", ()) in after
    assert value(after, "relaydesk_websockets", kind="inbox") == 0


async def test_a_metrics_token_keeps_strangers_out(tmp_path: Path) -> None:
    overrides = {"server": {"metrics_token": "scrape-me-0123456789"}}
    async with running_service(tmp_path, overrides=overrides) as service:
        async with service.client.get("/metrics") as response:
            assert response.status == 401
        async with service.client.get(
            "/metrics", headers={"Authorization": "Bearer wrong"}
        ) as response:
            assert response.status == 401
        samples = await scrape(service, Authorization="Bearer scrape-me-0123456789")
        assert ("relaydesk_outbox_oldest_pending_seconds", ()) in samples
