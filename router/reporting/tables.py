"""The reports' tables, by name: the CSV downloads, ``relaydesk report --table`` and
the API document all take these names (``router.reporting.reports`` makes them)."""

from __future__ import annotations

__all__ = ["REPORT_TABLES"]

REPORT_TABLES = (
    "volume_by_channel",
    "heatmap",
    "bot_outcomes",
    "handoffs_by_reason",
    "response_times",
    "sla_attainment",
    "backlog",
    "satisfaction",
    "comments",
)
