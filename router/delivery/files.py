"""Files on their way out: what agents attach to replies, the signed links customers
and bridges fetch them by, and the one way any stored file is served.

Every file RelayDesk keeps lives under ``<data_dir>/attachments`` (shared by the nodes,
as the database is) and is named there by a ``ref``. Customers' files arrive through
their channels; agents' files arrive here, from the inbox's reply box or the agent API.
Whatever its origin, a file is only ever served as a download: never rendered as a
document from our origin.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import mimetypes
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import filetype  # type: ignore[import-untyped]
from aiohttp import BodyPartReader, web

from channels.base import Attachment, OutboundAttachment, encodable
from channels.uploads import MULTIPART_ERRORS, posted_file_name, read_capped, stored_file_name

__all__ = [
    "Files",
    "Upload",
    "UploadRefused",
    "download",
    "read_form_with_files",
]

_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as posted: its name (as the sender gave it) and its bytes."""

    name: str
    data: bytes


class UploadRefused(Exception):
    """A posted form the handler must answer with ``status`` (413 too large, 400 bad)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def download(root: Path, ref: str, name: str | None) -> web.StreamResponse:
    """The file ``ref`` names under ``root`` as a sandboxed download, or a 404; ``name``
    (what its sender called it) only ever goes into the Content-Disposition header.
    The caller has checked who is asking."""
    base = root.resolve()
    path = (base / ref).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        raise web.HTTPNotFound(text="no such file")
    shown = name if name and encodable(name) else path.name
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(shown)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
        },
    )


class Files:
    """Agents' outgoing files under ``root``, and signed links to any stored file.

    A link is ``/files/<ref>?name=…&expires=…&sig=…``: the signature (HMAC-SHA256 with
    the service's secret) covers the ref, the expiry and the name the file is served
    under, so a link works for whoever holds it until it expires, as it was made, and
    for nothing else (nobody turns invoice.pdf into a download named otherwise).
    ``public_url`` makes links absolute, for bridges that fetch them from elsewhere.
    """

    def __init__(
        self,
        *,
        root: Path,
        secret: bytes,
        public_url: str = "",
        max_bytes: int = 20 * _MB,
        max_files: int = 5,
        link_days: float = 30,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._key = hashlib.sha256(b"relaydesk file links\x00" + secret).digest()
        self._public_url = public_url.rstrip("/")
        self._link_seconds = link_days * 86400

    # -- keeping an agent's file -----------------------------------------------------

    async def keep(self, conversation_id: int, uploads: Iterable[Upload]) -> list[Attachment]:
        """Store ``uploads`` for a reply in ``conversation_id``: each under a new random
        name (a stored file never changes), typed by its bytes where they say."""
        return await asyncio.to_thread(self._keep, conversation_id, list(uploads))

    def _keep(self, conversation_id: int, uploads: list[Upload]) -> list[Attachment]:
        folder = self.root / "outbound" / str(conversation_id)
        folder.mkdir(parents=True, exist_ok=True)
        kept: list[Attachment] = []
        for upload in uploads:
            safe = stored_file_name(upload.name)
            path = folder / f"{secrets.token_hex(12)}-{safe}"
            path.write_bytes(upload.data)
            kept.append(
                Attachment(
                    name=upload.name,
                    content_type=_content_type(upload),
                    size=len(upload.data),
                    ref=str(path.relative_to(self.root)),
                )
            )
        return kept

    def forget(self, attachments: Iterable[Attachment]) -> None:
        """Delete files kept for a reply that was then refused."""
        for attachment in attachments:
            (self.root / attachment.ref).unlink(missing_ok=True)

    # -- links -------------------------------------------------------------------------

    def outbound(self, attachment: Attachment, *, now: datetime) -> OutboundAttachment:
        """What a channel needs to send ``attachment``: its path here and a signed link."""
        return OutboundAttachment(
            name=attachment.name,
            content_type=attachment.content_type,
            size=attachment.size,
            path=str(self.root / attachment.ref),
            url=self.link(attachment, expires=int(now.timestamp() + self._link_seconds)),
        )

    def link(self, attachment: Attachment, *, expires: int) -> str:
        query = urlencode(
            {
                "name": attachment.name,
                "expires": expires,
                "sig": self._sign(attachment.ref, expires, attachment.name),
            }
        )
        return f"{self._public_url}/files/{quote(attachment.ref)}?{query}"

    def _sign(self, ref: str, expires: int, name: str) -> str:
        message = f"{ref}\x00{expires}\x00{name}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def allows(self, ref: str, query: Mapping[str, str], *, now: float | None = None) -> bool:
        """Whether ``query`` is a valid, unexpired signature for ``ref`` and its name."""
        expires = query.get("expires", "")
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
            return False
        if int(expires) < (time.time() if now is None else now):
            return False
        signature = self._sign(ref, int(expires), query.get("name", "")).encode()
        return hmac.compare_digest(query.get("sig", "").encode(), signature)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/files/{ref:.+}", self._signed_download)]

    async def _signed_download(self, request: web.Request) -> web.StreamResponse:
        """``GET /files/<ref>?…``: a stored file for whoever holds a valid link."""
        ref = request.match_info["ref"]
        if not self.allows(ref, request.query):
            raise web.HTTPForbidden(text="this link is not valid (or has expired)")
        return download(self.root, ref, request.query.get("name"))


def _content_type(upload: Upload) -> str:
    """What the bytes say; else what the name says; else a plain download."""
    kind = filetype.guess(upload.data[:8192])
    if kind is not None:
        return str(kind.mime)
    guessed, _ = mimetypes.guess_type(upload.name, strict=False)
    if guessed and guessed.startswith(("text/", "application/")) and "html" not in guessed:
        return guessed
    return "application/octet-stream"


async def read_form_with_files(
    request: web.Request,
    *,
    max_bytes: int,
    max_files: int,
    file_field: str = "files",
    max_field_chars: int = 20_000,
) -> tuple[dict[str, str], list[Upload]]:
    """A ``multipart/form-data`` body read part by part: its text fields and the files
    posted as ``file_field`` (at most ``max_files``, ``max_bytes`` together; empty file
    inputs, which browsers send with no name, are skipped). Raises ``UploadRefused``."""
    if not request.content_type.startswith("multipart/form-data"):
        raise UploadRefused(400, "invalid_body", "send multipart/form-data")
    if request.content_length is not None and request.content_length > max_bytes + _MB:
        raise UploadRefused(413, "too_large", _too_large(max_bytes))
    fields: dict[str, str] = {}
    uploads: list[Upload] = []
    total = 0
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            if part.name == file_field:
                data = await read_capped(part, max_bytes - total)
                if data is None:
                    raise UploadRefused(413, "too_large", _too_large(max_bytes))
                total += len(data)
                if not data and not part.filename:
                    continue  # an empty file input
                if not data:
                    raise UploadRefused(400, "invalid_body", f"{part.filename}: the file is empty")
                if len(uploads) == max_files:
                    raise UploadRefused(400, "too_many_files", f"at most {max_files} files")
                uploads.append(Upload(posted_file_name(part.filename), data))
                continue
            raw = await read_capped(part, max_field_chars * 4)
            if raw is None:
                raise UploadRefused(400, "invalid_body", f"{part.name}: too long")
            value = raw.decode("utf-8", "replace")
            if not encodable(value):
                raise UploadRefused(400, "invalid_body", f"{part.name}: not UTF-8 text")
            fields.setdefault(part.name[:100], value)
    except UploadRefused:
        raise
    except MULTIPART_ERRORS as exc:
        raise UploadRefused(400, "invalid_body", "not a readable multipart body") from exc
    return fields, uploads


def _too_large(max_bytes: int) -> str:
    return f"files are limited to {max_bytes / _MB:g} MB in all"
