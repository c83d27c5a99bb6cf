"""A web-chat visitor sends a photo of the broken part: stored like an email attachment,
typed by its bytes, handed to a person with the conversation; refused clearly when it
is not a photo, PDF or video, too large, or from someone without a visitor token."""

from __future__ import annotations

import uuid
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.service import Service, running_service
from tests.support.webchat import Visitor


def png(width: int = 2, height: int = 2) -> bytes:
    """A real (tiny, red) PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def upload(
    service: Service,
    data: bytes,
    *,
    token: str | None,
    name: str = "kettle.png",
    client_id: str | None = None,
    caption: str = "",
    content_type: str = "image/png",
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    if token is not None:
        form.add_field("token", token)
    form.add_field("client_id", client_id or uuid.uuid4().hex)
    form.add_field("caption", caption)
    form.add_field("file", data, filename=name, content_type=content_type)
    async with service.client.post("/api/chat/upload", data=form) as response:
        return response.status, await response.json()


@pytest.fixture
async def desk(tmp_path: Path) -> Any:
    overrides = {"channels": {"webchat": {"max_upload_mb": 0.05}}}
    async with running_service(tmp_path, overrides=overrides) as service:
        await service.add_agent("ana")
        yield service


async def test_a_photo_reaches_the_agent_with_the_conversation(desk: Service) -> None:
    visitor = Visitor(desk.client)
    await visitor.connect()
    await visitor.tell("转人工，水壶坏了")
    # The browser says "application/octet-stream"; the bytes say PNG.
    status, ack = await upload(
        desk,
        png(),
        token=visitor.token,
        caption="底座裂了",
        name="../../底座.png",
        client_id="photo-1",
        content_type="application/octet-stream",
    )
    assert status == 200 and ack["duplicate"] is False
    echo = await visitor.wait_for(lambda f: f.get("client_id") == "photo-1" and "seq" in f)
    assert echo["text"] == "底座裂了"
    assert echo["attachments"] == [
        {"name": "底座.png", "content_type": "image/png", "size": len(png())}
    ]

    _, detail = await desk.api("ana", "GET", f"/api/agent/conversations/{ack['conversation']}")
    assert detail["status"] == "queued"
    [photo] = [m for m in detail["messages"] if m["attachments"]]
    assert photo["text"] == "底座裂了"
    [attachment] = photo["attachments"]
    assert attachment["content_type"] == "image/png"
    headers = {"Authorization": f"Bearer {desk.tokens['ana']}"}
    async with desk.client.get(attachment["url"], headers=headers) as response:
        assert response.status == 200 and await response.read() == png()
        # Never rendered from our origin: always a download, sandboxed.
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment")
    # Stored under the data folder, whatever the name claimed.
    folder = desk.config.server.data_dir / "attachments" / "webchat"
    [stored] = [p for p in folder.rglob("*") if p.is_file()]
    assert stored.read_bytes() == png() and stored.resolve().is_relative_to(folder.resolve())

    # The same upload again (a retry): stored once, the second file not kept.
    status, again = await upload(desk, png(), token=visitor.token, client_id="photo-1")
    assert status == 200 and again["duplicate"] is True
    assert len([p for p in folder.rglob("*") if p.is_file()]) == 1
    await visitor.close()


async def test_what_is_not_a_photo_pdf_or_video_is_refused_clearly(desk: Service) -> None:
    visitor = Visitor(desk.client)
    await visitor.connect()
    cases = [
        (dict(data=png(), token=None), 401, "unauthorized"),
        (dict(data=png(), token="v1.forged.0.sig"), 401, "unauthorized"),
        # A script named like a photo is what its bytes say it is.
        (dict(data=b"<script>alert(1)</script>", token=visitor.token), 415, "unsupported_type"),
        (dict(data=b"MZ\x90\x00" + b"\x00" * 100, token=visitor.token, name="a.pdf"), 415, None),
        (dict(data=png(200, 200) + b"\x00" * 60_000, token=visitor.token), 413, "too_large"),
        (dict(data=b"", token=visitor.token), 400, "invalid_body"),
        (dict(data=png(), token=visitor.token, client_id="x" * 101), 400, "invalid_body"),
    ]
    for kwargs, status, code in cases:
        got, body = await upload(desk, **kwargs)  # type: ignore[arg-type]
        assert got == status, (kwargs.get("name"), got, body)
        assert body["type"] == "error" and body["message"]
        if code:
            assert body["code"] == code
    async with desk.client.post("/api/chat/upload", data=b"not multipart") as response:
        assert response.status == 400
    folder = desk.config.server.data_dir / "attachments" / "webchat"
    assert not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()]
    async with desk.db.read() as repo:
        assert await repo.contact_conversations(1) == []
    await visitor.close()


async def test_uploads_can_be_switched_off(tmp_path: Path) -> None:
    overrides = {"channels": {"webchat": {"max_upload_mb": 0}}}
    async with running_service(tmp_path, overrides=overrides) as service:
        visitor = Visitor(service.client)
        await visitor.connect()
        status, body = await upload(service, png(), token=visitor.token)
        assert status == 403 and body["code"] == "uploads_off"
        await visitor.close()
