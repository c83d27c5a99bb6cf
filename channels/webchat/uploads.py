"""``POST /api/chat/upload``: reading and storing a visitor's file.

A photo, PDF or short video, its type read from its bytes, not from what the
browser claims; stored under a random name like an email attachment."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import filetype  # type: ignore[import-untyped]
from aiohttp import BodyPartReader, web

from channels.base import Attachment, encodable
from channels.uploads import MULTIPART_ERRORS, posted_file_name, read_capped, stored_file_name

__all__ = ["UPLOAD_TYPES", "PostedFile", "Refused", "read_upload", "refusal", "store_upload"]

CHANNEL = "webchat"

# What a visitor may send, by the type its bytes show: after-sales evidence.
UPLOAD_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/heic",
        "image/heif",
        "application/pdf",
        "video/mp4",
        "video/quicktime",
    }
)


class Refused(Exception):
    """The upload is refused with ``status`` and an error ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class PostedFile:
    token: str
    client_id: str
    caption: str
    name: str
    mime: str
    data: bytes


def refusal(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "code": code, "message": message}, status=status)


async def read_upload(request: web.Request, *, limit: int, max_text_chars: int) -> PostedFile:
    """The multipart body (``token``, ``client_id``, an optional ``caption``, then
    ``file``) read within ``limit`` bytes and checked, or Refused."""
    too_large = Refused(413, "too_large", f"files are limited to {limit // 1024 // 1024} MB")
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise too_large
    if not request.content_type.startswith("multipart/form-data"):
        raise Refused(400, "invalid_body", "send multipart/form-data")
    fields: dict[str, str] = {}
    data, name = b"", ""
    try:
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.name == "file":
                name = posted_file_name(part.filename, "upload")
                read = await read_capped(part, limit)
                if read is None:
                    raise too_large
                data = read
                break  # the file is the last field
            if part.name in ("token", "client_id", "caption"):
                value = await read_capped(part, max_text_chars * 4 + 1024)
                if value is None:
                    raise Refused(400, "invalid_body", f"{part.name}: too long")
                fields[part.name] = value.decode("utf-8", "replace")
    except MULTIPART_ERRORS as exc:
        raise Refused(400, "invalid_body", f"not a readable multipart body: {exc}"[:200]) from exc
    client_id = fields.get("client_id", "")
    caption = fields.get("caption", "").strip()
    if not 1 <= len(client_id) <= 100 or not encodable(client_id + caption):
        raise Refused(400, "invalid_body", "client_id must be a string of 1-100 characters")
    if len(caption) > max_text_chars:
        raise Refused(400, "too_long", "the caption is too long")
    if not data:
        raise Refused(400, "invalid_body", "file: a non-empty file is required")
    kind = filetype.guess(data[:8192])
    if kind is None or kind.mime not in UPLOAD_TYPES:
        raise Refused(
            415, "unsupported_type", "send a photo (JPEG, PNG, GIF, WebP, HEIC), a PDF or a video"
        )
    return PostedFile(fields.get("token", ""), client_id, caption, name, kind.mime, data)


def store_upload(folder: Path, visitor_id: str, posted: PostedFile) -> tuple[Attachment, Path]:
    """A new file under a random name (a stored file never changes), and its record."""
    where = folder / CHANNEL / visitor_id
    where.mkdir(parents=True, exist_ok=True)
    safe = stored_file_name(posted.name, "upload")
    while True:
        path = where / f"{secrets.token_hex(12)}-{safe}"
        try:
            with path.open("xb") as handle:
                handle.write(posted.data)
        except FileExistsError:
            continue
        break
    attachment = Attachment(
        name=posted.name,
        content_type=posted.mime,
        size=len(posted.data),
        ref=str(path.relative_to(folder)),
    )
    return attachment, path
