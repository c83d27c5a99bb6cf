"""How long and how often a reply that failed for a passing reason is tried again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from router.storage import OutboxItem

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Transient failures are retried with growing delays for ``give_up_after``
    seconds (mail servers try for days; a relay outage must not lose replies), then
    the reply is dead and shown to agents, who can send it again."""

    give_up_after: float = 48 * 3600.0
    backoff_base: float = 2.0
    backoff_max: float = 600.0
    lease: float = 60.0
    # An optional cap on attempts besides the time window; None: no cap.
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.give_up_after <= 0 or self.backoff_base <= 0 or self.backoff_max <= 0:
            raise ValueError("RetryPolicy times must be positive")

    def give_up_at(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.give_up_after)

    def exhausted(self, item: OutboxItem, now: datetime) -> bool:
        """Whether a transient failure of ``item`` is its last."""
        if self.max_attempts is not None and item.attempts >= self.max_attempts:
            return True
        deadline = item.give_up_at or self.give_up_at(item.created_at)
        return now >= deadline

    def delay(self, attempts: int, retry_after: float | None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** max(attempts - 1, 0))
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay
