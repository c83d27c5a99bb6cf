"""Fixtures of the channel tests: the email service on a recording relay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.storage import Database
from tests.support.mail import Relay
from tests.support.service import Service, running_service


@pytest.fixture
async def mail(database: Database, tmp_path: Path, relay: Relay) -> AsyncIterator[Service]:
    """The service with email on (SMTP receiver on a free port), replies to ``relay``."""
    from tests.channels.test_email import email_overrides

    async with running_service(
        tmp_path, database=database, overrides=email_overrides(relay.port)
    ) as running:
        yield running
