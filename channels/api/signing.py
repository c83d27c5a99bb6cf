"""Request signing for the API channel: HMAC-SHA256 over ``"<timestamp>.<raw body>"``.

Headers: ``X-RelayDesk-Timestamp`` (Unix seconds) and ``X-RelayDesk-Signature``
(``sha256=<hex digest>``). A timestamp further than ``tolerance`` from now is
refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign", "verify"]

TIMESTAMP_HEADER = "X-RelayDesk-Timestamp"
SIGNATURE_HEADER = "X-RelayDesk-Signature"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(
    secret: str, *, timestamp: str, signature: str, body: bytes, now: float, tolerance: float
) -> str | None:
    """None if the request is authentic and fresh, else why not."""
    # ASCII digits only: str.isdigit() also takes "²³", which int() refuses.
    if _TIMESTAMP.fullmatch(timestamp) is None:
        return f"missing or malformed {TIMESTAMP_HEADER}"
    if abs(now - int(timestamp)) > tolerance:
        return f"{TIMESTAMP_HEADER} is more than {tolerance:.0f} s away from now"
    if not hmac.compare_digest(signature.encode(), sign(secret, int(timestamp), body).encode()):
        return f"wrong {SIGNATURE_HEADER}"
    return None
