"""The JSON frames of the web-chat protocol: what a client frame must hold, and the
frames the server sends.

Protocol (JSON text frames):

client → server
  ``{"type": "hello", "token": "...", "last_seq": 12, "epoch": "...",
     "identity": {"id": "...", "hash": "...", "name": "...", "email": "..."}}``  first frame
  ``{"type": "message", "client_id": "...", "text": "...", "survey_comment": true}``
               (``survey_comment``: the text comments on the rating just given)
  ``{"type": "choice", "client_id": "...", "choice_id": "...", "label": "..."}``

server → client (stream frames carry their ``seq``)
  ``welcome``  the visitor's token, id and the stream ``epoch``
  ``message``  a stream frame: the customer's own message, a bot answer or
               clarification (with ``choices``), an agent reply, a notice
  ``ack``      a client message was stored (``duplicate``: it already was)
  ``typing``   a person is writing a reply
  ``error``    what was wrong with a frame; the connection stays up

A reconnecting client sends the last ``seq`` it saw and gets, in order, only
the stream frames after it (the newest ``history_frames`` of them). The stream
is stored (``VisitorStream``; the service keeps it in its database), so a
restart or another node replays it, and a reply delivered twice keeps its
number: a client that skips frames at or below its last ``seq`` sees every
frame once. A frame numbered past ``last seq + 1`` means one was missed: the
client reconnects to have it replayed.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from channels.base import Attachment, OutboundKind, OutboundMessage, encodable

__all__ = [
    "ClientFrame",
    "FrameError",
    "echo_frame",
    "error_frame",
    "read_frame",
    "read_hello",
    "reply_frame",
    "send_quietly",
]

_AUTHOR = {
    OutboundKind.ANSWER: "bot",
    OutboundKind.CLARIFY: "bot",
    OutboundKind.AGENT: "agent",
    OutboundKind.ACK: "system",
    OutboundKind.SURVEY: "system",
    OutboundKind.SYSTEM: "system",
    OutboundKind.FOLLOW_UP: "system",
}


class FrameError(Exception):
    """A client frame refused: ``code`` and the message go back in an ``error`` frame."""

    def __init__(self, code: str, message: str, client_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.client_id = client_id


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A ``message`` or ``choice`` frame that may be stored."""

    client_id: str
    text: str
    extras: dict[str, str] = field(default_factory=dict)


def read_hello(data: object) -> dict[str, Any] | None:
    """The first frame as a ``hello`` object, or None if it is not one."""
    hello: Any = None
    if isinstance(data, str):
        with contextlib.suppress(ValueError, RecursionError):
            hello = json.loads(data)
    if not isinstance(hello, dict) or hello.get("type") != "hello":
        return None
    return hello


def read_frame(data: str, max_text_chars: int) -> ClientFrame:
    """A client's ``message`` or ``choice`` frame, or FrameError saying what is wrong."""
    try:
        frame = json.loads(data)
    except ValueError as exc:
        raise FrameError("invalid_json", f"not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise FrameError("invalid_json", "JSON nested too deeply") from exc
    if not isinstance(frame, dict):
        raise FrameError("invalid_frame", "a frame must be a JSON object")
    kind = frame.get("type")
    client_id = frame.get("client_id")
    if kind not in ("message", "choice"):
        raise FrameError("unknown_type", f"unknown frame type {str(kind)[:40]!r}")
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= 100:
        raise FrameError("invalid_frame", "client_id must be a string of 1-100 characters")
    if kind == "message":
        text = frame.get("text")
        extras: dict[str, str] = {}
        if frame.get("survey_comment") is True:
            extras["survey_comment"] = "1"
    else:
        text = frame.get("label")
        choice = frame.get("choice_id")
        if not isinstance(choice, str) or not choice or len(choice) > 200:
            raise FrameError("invalid_frame", "choice_id must be a string", client_id)
        extras = {"choice": choice}
    if not isinstance(text, str) or not text.strip():
        raise FrameError("invalid_frame", "text must be a non-empty string", client_id)
    if not encodable(text) or not encodable(client_id) or not encodable(str(extras)):
        raise FrameError(
            "invalid_text", "text holds an unpaired surrogate (\\ud800-\\udfff)", client_id
        )
    if len(text) > max_text_chars:
        raise FrameError(
            "too_long",
            f"messages are limited to {max_text_chars} characters (this one has {len(text)})",
            client_id,
        )
    return ClientFrame(client_id, text, extras)


def reply_frame(outbound: OutboundMessage) -> dict[str, Any]:
    """A reply as the stream frame a visitor's tabs show."""
    return {
        "type": "message",
        "id": outbound.idempotency_key,
        "author": _AUTHOR[outbound.kind],
        "kind": outbound.kind.value,
        "text": outbound.text,
        "choices": [{"id": c.id, "label": c.label} for c in outbound.choices],
        # Files an agent sent: signed links, always served as downloads.
        "attachments": [
            {"name": a.name, "content_type": a.content_type, "size": a.size, "url": a.url}
            for a in outbound.attachments
        ],
        "at": outbound.created_at.isoformat(),
    }


def echo_frame(
    client_id: str, text: str, attachments: tuple[Attachment, ...], at: datetime
) -> dict[str, Any]:
    """The customer's own message as the stream frame their other tabs show."""
    return {
        "type": "message",
        "id": f"c:{client_id}",
        "client_id": client_id,
        "author": "customer",
        "kind": "customer",
        "text": text,
        "choices": [],
        "attachments": [
            {"name": a.name, "content_type": a.content_type, "size": a.size} for a in attachments
        ],
        "at": at.isoformat(),
    }


def error_frame(code: str, message: str, client_id: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if client_id is not None:
        frame["client_id"] = client_id
    return frame


async def send_quietly(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    # A socket closing under us is the reconnect logic's business, not the sender's.
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json(frame)
