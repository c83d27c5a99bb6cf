"""What WeChat's messages carry, both ways: text cut to what the APIs take, the images
they take, and customers' photos and voice kept like email attachments."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from channels.base import Attachment, Choice, DeliveryError, OutboundAttachment, OutboundMessage
from channels.uploads import stored_file_name
from channels.wechat.api import WeChatApi

__all__ = ["keep_media", "send_reply", "sendable_image", "text_parts"]

logger = logging.getLogger(__name__)

# Customer-service text messages take up to 2,048 bytes of UTF-8 (about 680 Chinese
# characters); longer replies go in parts.
TEXT_BYTES = 2000
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "audio/amr": ".amr",
    "audio/mpeg": ".mp3",
    "video/mp4": ".mp4",
}


def sendable_image(attachment: OutboundAttachment) -> bool:
    """An image the customer-service APIs take as one (JPEG or PNG, up to 10 MB)."""
    return attachment.content_type in ("image/jpeg", "image/png") and attachment.size <= 10 << 20


def text_parts(text: str) -> list[str]:
    """``text`` in parts of at most ``TEXT_BYTES`` bytes of UTF-8, cut between lines
    where it can be."""
    parts: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line.encode()) > TEXT_BYTES:
            cut = TEXT_BYTES // 4  # characters: at most 4 bytes each
            head, line = line[:cut], line[cut:]
            if current:
                parts.append(current)
                current = ""
            parts.append(head)
        if len((current + line).encode()) > TEXT_BYTES:
            parts.append(current)
            current = ""
        current += line
    if current.strip():
        parts.append(current)
    return [p.strip("\n") for p in parts if p.strip()]


async def keep_media(
    api: WeChatApi, folder: Path | None, channel: str, user: str, media_id: str, kind: str
) -> tuple[Attachment, ...]:
    """A customer's photo, voice message or file fetched by its ``media_id`` and kept
    under ``folder``; a failure keeps the message without it (and says so in the log)."""
    if folder is None or not media_id:
        return ()
    try:
        data, content_type = await api.media(media_id)
    except DeliveryError as exc:
        logger.warning("%s: %s of %s not downloaded: %s", channel, kind, user[:8], exc)
        return ()
    name = f"{kind}-{stored_file_name(media_id[:40])}{_EXTENSIONS.get(content_type, '')}"
    path = folder / channel / stored_file_name(user) / f"{secrets.token_hex(8)}-{name}"
    await asyncio.to_thread(_write, path, data)
    return (
        Attachment(
            name=name,
            content_type=content_type or "application/octet-stream",
            size=len(data),
            ref=str(path.relative_to(folder)),
        ),
    )


async def send_reply(
    api: WeChatApi,
    outbound: OutboundMessage,
    *,
    path: str,
    to: dict[str, str],
    menu_item: Callable[[Choice], dict[str, Any]],
) -> None:
    """``outbound`` through a customer-service send API at ``path`` (the Official
    Account's 客服消息 or WeCom's kf/send_msg), addressed by ``to``: the text in parts with
    links to the files it cannot carry, choices as a menu message under the last part
    (``menu_item`` shapes one entry), then each photo uploaded as an image."""
    links = "\n".join(
        f"📎 {a.name}: {a.url}" for a in outbound.attachments if not sendable_image(a)
    )
    texts = text_parts("\n\n".join(t for t in (outbound.text.strip(), links) if t))
    head = texts.pop() if outbound.choices and texts else ""
    for part in texts:
        await api.post(path, {**to, "msgtype": "text", "text": {"content": part}})
    if outbound.choices:
        menu = {
            "head_content": head,
            "list": [menu_item(c) for c in outbound.choices],
            "tail_content": "",
        }
        await api.post(path, {**to, "msgtype": "msgmenu", "msgmenu": menu})
    for attachment in outbound.attachments:
        if sendable_image(attachment):
            uploaded = await api.upload(
                "/cgi-bin/media/upload?type=image",
                attachment.name,
                await attachment.read(),
                attachment.content_type,
            )
            image = {"media_id": str(uploaded["media_id"])}
            await api.post(path, {**to, "msgtype": "image", "image": image})


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
