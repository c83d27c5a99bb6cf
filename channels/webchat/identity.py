"""Who is on a socket: an anonymous visitor, or a shopper the shop vouched for.

A shop that shares ``identity_secret`` with RelayDesk may pass the signed-in shopper
as ``identity``: ``hash`` is the hex HMAC-SHA256 of ``"<id>:<email>"`` (email may be
empty) with that secret, made by the shop's server. A verified shopper is the same
visitor on every device (one history); without a valid hash the identity is ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass

from channels.base import encodable

__all__ = ["Caller", "verified_shopper"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is on one socket: the visitor, and the shopper if the shop vouched for them."""

    visitor_id: str
    address: str
    display_name: str | None = None
    email: str | None = None

    @property
    def verified(self) -> bool:
        return self.email is not None or self.display_name is not None


def verified_shopper(
    identity: object, address: str, *, identity_secret: str, secret: bytes
) -> Caller | None:
    """The shopper the shop vouched for, or None (no identity, or a wrong hash).

    ``secret`` (the service's own) makes the shopper's visitor id, so nobody can guess it."""
    if not identity_secret or not isinstance(identity, dict):
        return None
    user_id, given = identity.get("id"), identity.get("hash")
    email = identity.get("email") or ""
    name = identity.get("name")
    if not isinstance(user_id, str) or not isinstance(given, str) or not isinstance(email, str):
        return None
    if not 1 <= len(user_id) <= 200 or len(email) > 320 or not encodable(user_id + email):
        return None
    expected = hmac.new(
        identity_secret.encode(), f"{user_id}:{email}".encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(given.lower().encode(), expected.encode()):
        logger.warning("web chat: an identity with a wrong hash from %s", address)
        return None
    # The same shopper is the same visitor everywhere.
    visitor_id = hmac.new(secret, f"shopper:{user_id}".encode(), hashlib.sha256).hexdigest()[:32]
    display = name[:200] if isinstance(name, str) and encodable(name) and name else None
    return Caller(visitor_id, address, display_name=display or user_id, email=email or None)
