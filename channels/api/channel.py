"""The API channel: bridge any messaging app (WhatsApp, WeChat, LINE, an in-app chat)
to RelayDesk over signed HTTP, without new code in RelayDesk.

Inbound: the bridge POSTs ``/api/channels/<name>/messages`` (see docs/api-channel.md);
we answer once the message is committed. Outbound: we POST every reply to the
bridge's ``outbound_url``, signed the same way, retried through the outbox.
"""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import UTC, datetime
from typing import Annotated

import aiohttp
from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from channels.api.settings import ApiChannelSettings
from channels.api.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from channels.base import (
    ChannelAddress,
    ChannelHealth,
    InboundHandler,
    InboundMessage,
    OutboundMessage,
    PermanentDeliveryError,
    SenderIdentity,
    TransientDeliveryError,
)

__all__ = ["ApiChannel"]

logger = logging.getLogger(__name__)


_Attribute = Annotated[str, Field(max_length=200)] | StrictBool | StrictInt | StrictFloat


class _Sender(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    # What the shop knows of the customer (vip, tier): routing rules read it.
    attributes: dict[Annotated[str, Field(min_length=1, max_length=100)], _Attribute] = Field(
        default_factory=dict, max_length=30
    )


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: str = Field(min_length=1, max_length=200)
    sender: _Sender
    text: str = Field(min_length=1)
    thread_id: str | None = Field(default=None, max_length=320)
    choice: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, pattern="^(zh|en)$")
    sent_at: datetime | None = None


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class ApiChannel:
    """One bridged app; its name is the channel name stored on its conversations."""

    def __init__(self, *, name: str, settings: ApiChannelSettings) -> None:
        self._name = name
        self._settings = settings
        self._on_message: InboundHandler | None = None
        self._session: aiohttp.ClientSession | None = None
        self._last_error = ""

    @property
    def name(self) -> str:
        return self._name

    async def start(self, on_message: InboundHandler) -> None:
        self._on_message = on_message
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._settings.timeout_seconds)
        )

    async def stop(self) -> None:
        self._on_message = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def health(self) -> ChannelHealth:
        return ChannelHealth(
            ok=self._on_message is not None, detail=self._last_error or "bridge ready"
        )

    def routes(self) -> list[web.RouteDef]:
        return [web.post(f"/api/channels/{self._name}/messages", self._receive)]

    async def send(self, outbound: OutboundMessage) -> None:
        if self._session is None:
            raise TransientDeliveryError("the API channel is not started")
        body = json.dumps(
            {
                "idempotency_key": outbound.idempotency_key,
                "conversation_id": outbound.conversation_id,
                "recipient": {"id": outbound.address.recipient_id},
                "thread_id": outbound.address.thread_id,
                "kind": outbound.kind.value,
                "text": outbound.text,
                "choices": [{"id": c.id, "label": c.label} for c in outbound.choices],
                # Files an agent sent: fetch each from its signed, expiring url.
                "attachments": [
                    {
                        "name": a.name,
                        "content_type": a.content_type,
                        "size": a.size,
                        "url": a.url,
                    }
                    for a in outbound.attachments
                ],
                "created_at": outbound.created_at.isoformat(),
            },
            ensure_ascii=False,
        ).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._settings.secret, timestamp, body),
            "Idempotency-Key": outbound.idempotency_key,
        }
        try:
            async with self._session.post(
                self._settings.outbound_url, data=body, headers=headers
            ) as response:
                detail = (await response.text())[:200]
                status = response.status
                retry_after = response.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._last_error = f"bridge unreachable: {exc}"
            raise TransientDeliveryError(f"bridge unreachable: {exc!r}") from exc
        if status < 300:
            self._last_error = ""
            return
        message = f"bridge answered {status}: {detail}"
        self._last_error = message
        if status == 429 or status >= 500:
            wait = float(retry_after) if retry_after.isdigit() else None
            raise TransientDeliveryError(message, retry_after=wait)
        raise PermanentDeliveryError(message)

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = verify(
            self._settings.secret,
            timestamp=request.headers.get(TIMESTAMP_HEADER, ""),
            signature=request.headers.get(SIGNATURE_HEADER, ""),
            body=body,
            now=time.time(),
            tolerance=self._settings.timestamp_tolerance_seconds,
        )
        if problem is not None:
            return _error(401, "unauthorized", problem)
        try:
            payload = _Inbound.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "body"
            return _error(400, "invalid_body", f"{field}: {first['msg']}")
        if any(
            isinstance(v, float) and not math.isfinite(v)
            for v in payload.sender.attributes.values()
        ):
            return _error(400, "invalid_body", "sender.attributes: numbers must be finite")
        if len(payload.text) > self._settings.max_text_chars:
            return _error(
                400, "invalid_body", f"text: longer than {self._settings.max_text_chars} characters"
            )
        if self._on_message is None:
            return _error(503, "unavailable", "RelayDesk is starting or stopping; send again")
        extras: dict[str, str] = {}
        if payload.choice:
            extras["choice"] = payload.choice
        if payload.language:
            extras["language"] = payload.language
        sent_at = payload.sent_at or datetime.now(UTC)
        if sent_at.tzinfo is None:
            sent_at = sent_at.replace(tzinfo=UTC)
        receipt = await self._on_message(
            InboundMessage(
                external_id=payload.message_id,
                address=ChannelAddress(
                    channel=self.name, recipient_id=payload.sender.id, thread_id=payload.thread_id
                ),
                sender=SenderIdentity(
                    channel=self.name,
                    external_id=payload.sender.id,
                    display_name=payload.sender.name,
                    email=payload.sender.email,
                    attributes=payload.sender.attributes,
                ),
                text=payload.text,
                sent_at=sent_at,
                extras=extras,
            )
        )
        return web.json_response(
            {
                "conversation_id": receipt.conversation_id,
                "message_id": receipt.message_id,
                "duplicate": receipt.duplicate,
            }
        )
