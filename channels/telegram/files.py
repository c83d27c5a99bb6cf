"""The files a customer sends on Telegram, downloaded into the attachments folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from telegram import Message

from channels.base import Attachment

__all__ = ["received_files"]

CHANNEL = "telegram"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


async def received_files(message: Message, folder: Path, max_bytes: int) -> tuple[Attachment, ...]:
    """Every photo, document, voice note, audio and video of ``message``, stored under
    ``folder``; a file over ``max_bytes`` is recorded as refused, not downloaded."""
    found: list[tuple[Any, str, str]] = []
    if message.photo:
        largest = message.photo[-1]
        found.append((largest, f"photo-{largest.file_unique_id}.jpg", "image/jpeg"))
    for media, default_name, default_type in (
        (message.document, "document", "application/octet-stream"),
        (message.voice, "voice.ogg", "audio/ogg"),
        (message.audio, "audio", "audio/mpeg"),
        (message.video, "video.mp4", "video/mp4"),
        (message.video_note, "video-note.mp4", "video/mp4"),
    ):
        if media is not None:
            name = getattr(media, "file_name", None) or default_name
            content_type = getattr(media, "mime_type", None) or default_type
            found.append((media, name, content_type))
    return tuple([await _download(message, folder, max_bytes, *item) for item in found])


async def _download(
    message: Message, folder: Path, max_bytes: int, media: Any, name: str, content_type: str
) -> Attachment:
    name = _SAFE_NAME.sub("_", name)[:100] or "file"
    size = int(media.file_size or 0)
    if size > max_bytes:
        return Attachment(name=name, content_type=content_type, size=size, ref="refused:too-large")
    file = await media.get_file()
    where = folder / CHANNEL / str(message.chat.id)
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{message.message_id}-{name}"
    await file.download_to_drive(path)
    return Attachment(
        name=name,
        content_type=content_type,
        size=path.stat().st_size,
        ref=str(path.relative_to(folder)),
    )
