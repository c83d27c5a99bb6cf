"""Reading files posted as ``multipart/form-data``, for every receiver that takes them
(a web-chat visitor's photo, an agent's attachment): never more held in memory than
the limit, names reduced to the file's own, printable name."""

from __future__ import annotations

import re
from urllib.parse import unquote

from aiohttp import BodyPartReader
from aiohttp.http_exceptions import HttpProcessingError

from channels.base import encodable

__all__ = ["MULTIPART_ERRORS", "posted_file_name", "read_capped", "stored_file_name"]

# What reading a malformed multipart body raises: part headers that are not HTTP
# headers (HttpProcessingError), a broken boundary or encoding (the others).
MULTIPART_ERRORS = (ValueError, AssertionError, LookupError, HttpProcessingError)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


async def read_capped(part: BodyPartReader, cap: int) -> bytes | None:
    """The part's raw bytes, or None once they pass ``cap``. No content decoding: a
    part that claims gzip is taken as it is, never inflated."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def posted_file_name(raw: str | None, default: str = "file") -> str:
    """The file's own name as its sender gave it: without folders, printable, at most
    200 characters (some clients, aiohttp's among them, percent-encode a name
    outside ASCII)."""
    name = raw or ""
    if name.isascii() and "%" in name:
        name = unquote(name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()[:200]
    return name if name and encodable(name) else default


def stored_file_name(name: str, default: str = "file") -> str:
    """The ASCII tail of ``name`` that may stand in a stored file's name."""
    return _UNSAFE.sub("_", name)[-80:].strip("._") or default
