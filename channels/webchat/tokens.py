"""Signed visitor tokens: the browser keeps one, so a reload continues the same chat.

A token is ``v1.<visitor id>.<issued at>.<signature>``, HMAC-SHA256 over the rest.
A forged, altered or expired token is treated as no token: a new visitor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

__all__ = ["VisitorTokens"]

_VISITOR_ID = re.compile(r"^[0-9a-f]{32}$")


class VisitorTokens:
    def __init__(self, *, secret: bytes, ttl_seconds: float) -> None:
        if len(secret) < 16:
            raise ValueError("the web-chat secret must be at least 16 bytes")
        self._secret = secret
        self._ttl = ttl_seconds

    @staticmethod
    def new_visitor_id() -> str:
        return secrets.token_hex(16)

    def issue(self, visitor_id: str, *, now: float) -> str:
        body = f"v1.{visitor_id}.{int(now)}"
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, *, now: float) -> str | None:
        """The visitor id in a valid, unexpired token, else None."""
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != "v1":
            return None
        _, visitor_id, issued, signature = parts
        body = f"v1.{visitor_id}.{issued}"
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        if not _VISITOR_ID.match(visitor_id) or not issued.isdigit():
            return None
        if now - int(issued) > self._ttl:
            return None
        return visitor_id

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
