"""An agent sends a file (a manual, a return label, a photo) with a reply: it reaches the
customer on every channel that carries files — attached to the mail, uploaded to the
Telegram chat, a link in the web chat, a signed link for a bridge — and is only ever
served as a download, to whoever holds an unexpired, untampered link."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from router.keys import FILES
from tests.channels.test_api_channel import SECRET, Bridge, message, post
from tests.channels.test_email import conversation_of, smtp_port
from tests.channels.test_telegram import HEADERS, telegram_overrides
from tests.channels.test_webchat_uploads import png
from tests.router.test_audit_and_privacy import add_admin
from tests.support.mail import Relay, body_text, customer_mail, send
from tests.support.service import Service, running_service
from tests.support.telegram_api import FakeTelegram
from tests.support.webchat import Visitor

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
LABEL = ("退货标签.pdf", PDF, "application/pdf")


async def reply_with_files(
    service: Service,
    agent: str,
    conversation_id: int,
    files: list[tuple[str, bytes, str]],
    *,
    text: str | None = None,
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData(default_to_multipart=True)
    if text is not None:
        form.add_field("text", text)
    for name, data, content_type in files:
        form.add_field("files", data, filename=name, content_type=content_type)
    headers = {"Authorization": f"Bearer {service.tokens[agent]}"}
    path = f"/api/agent/conversations/{conversation_id}/reply"
    async with service.client.post(path, data=form, headers=headers) as response:
        return response.status, await response.json()


async def claim(service: Service, agent: str, conversation_id: int) -> None:
    status, _ = await service.api(
        agent, "POST", f"/api/agent/conversations/{conversation_id}/claim"
    )
    assert status == 200


async def handed_off_visitor(service: Service) -> tuple[Visitor, int]:
    visitor = Visitor(service.client)
    await visitor.connect()
    await visitor.tell("转人工，我的水壶坏了")
    async with service.db.read() as repo:
        [conversation] = await repo.contact_conversations(1)
    await claim(service, "ana", conversation.id)
    return visitor, conversation.id


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Service]:
    overrides = {"inbox": {"max_attachment_mb": 0.05}}
    async with running_service(tmp_path, overrides=overrides) as service:
        await service.add_agent("ana")
        yield service


async def test_a_web_chat_customer_gets_the_file_as_a_link_only_they_can_use(
    desk: Service,
) -> None:
    visitor, conversation_id = await handed_off_visitor(desk)
    status, body = await reply_with_files(
        desk, "ana", conversation_id, [LABEL, ("kettle.png", png(), "image/png")], text="请查收"
    )
    assert status == 202 and body["attachments"] == 2

    frame = await visitor.wait_for(lambda f: f.get("author") == "agent")
    assert frame["text"] == "请查收"
    label, photo = frame["attachments"]
    assert (label["name"], label["content_type"], label["size"]) == (
        "退货标签.pdf",
        "application/pdf",
        len(PDF),
    )
    assert photo["content_type"] == "image/png"

    # The link works without signing in, and only as a download.
    async with desk.client.get(label["url"]) as response:
        assert response.status == 200 and await response.read() == PDF
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert "sandbox" in response.headers["Content-Security-Policy"]

    # A link with another file's path, expiry or name, or no signature, opens nothing.
    parts = urlsplit(label["url"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    other = urlsplit(photo["url"]).path
    forged = [
        f"{other}?{parts.query}",
        f"{parts.path}?expires={int(query['expires']) + 1}&sig={query['sig']}",
        f"{parts.path}?expires={query['expires']}",
        f"{parts.path}?expires=abc&sig={query['sig']}",
        f"{parts.path}?expires={query['expires']}&sig=%C3%A9%00",
        "/files/..%2F..%2Fconfig.yaml?expires=9999999999&sig=00",
        f"{parts.path}?" + urlencode({**query, "name": "退货标签.pdf.exe"}),
        f"{parts.path}?expires={query['expires']}&sig={query['sig']}",  # the name left out
    ]
    for url in forged:
        async with desk.client.get(url) as response:
            assert response.status == 403, url

    # An expired link opens nothing either.
    files = desk.app[FILES]
    assert not files.allows(
        urlsplit(label["url"]).path[len("/files/") :], query, now=time.time() + 31 * 86400
    )

    # The agent sees what they sent in the transcript.
    _, detail = await desk.api("ana", "GET", f"/api/agent/conversations/{conversation_id}")
    [sent] = [m for m in detail["messages"] if m["author"] == "agent"]
    assert [a["name"] for a in sent["attachments"]] == ["退货标签.pdf", "kettle.png"]
    await visitor.close()


async def test_files_alone_are_a_reply_and_too_much_is_refused(desk: Service) -> None:
    visitor, conversation_id = await handed_off_visitor(desk)
    status, _ = await reply_with_files(desk, "ana", conversation_id, [LABEL])
    assert status == 202
    frame = await visitor.wait_for(lambda f: f.get("author") == "agent")
    assert frame["text"] == "" and [a["name"] for a in frame["attachments"]] == ["退货标签.pdf"]

    big = ("manual.pdf", PDF + b"\x00" * 60_000, "application/pdf")
    too_many = [("a.pdf", PDF, "application/pdf")] * 6
    for files, text, expected in [
        ([big], "too big", (413, "too_large")),
        (too_many, "too many", (400, "too_many_files")),
        ([], None, (400, "invalid_body")),
        ([], "   ", (400, "invalid_body")),
        ([("empty.pdf", b"", "application/pdf")], "hello", (400, "invalid_body")),
    ]:
        status, body = await reply_with_files(desk, "ana", conversation_id, files, text=text)
        assert (status, body["error"]["code"]) == expected, (text, body)

    # Nobody else's reply, and nothing kept of the refused ones.
    status, body = await desk.api("ana", "GET", f"/api/agent/conversations/{conversation_id}")
    assert len([m for m in body["messages"] if m["author"] == "agent"]) == 1
    kept = [p for p in (desk.app[FILES].root / "outbound").rglob("*") if p.is_file()]
    assert len(kept) == 1
    await visitor.close()


async def test_a_refused_reply_keeps_no_file(desk: Service) -> None:
    visitor, conversation_id = await handed_off_visitor(desk)
    await desk.add_agent("bo")
    status, body = await reply_with_files(desk, "bo", conversation_id, [LABEL], text="mine")
    assert status == 409, body  # ana owns it
    assert not [p for p in (desk.app[FILES].root / "outbound").rglob("*") if p.is_file()]
    await visitor.close()


async def test_agents_send_no_files_when_switched_off(tmp_path: Path) -> None:
    overrides = {"inbox": {"max_attachment_mb": 0}}
    async with running_service(tmp_path, overrides=overrides) as service:
        await service.add_agent("ana")
        visitor, conversation_id = await handed_off_visitor(service)
        status, body = await reply_with_files(service, "ana", conversation_id, [LABEL], text="x")
        assert (status, body["error"]["code"]) == (403, "attachments_off")
        await visitor.close()


async def test_an_email_customer_gets_the_file_attached(mail: Service, relay: Relay) -> None:
    await mail.add_agent("ana")
    question = customer_mail("Hello,\n\nI want to talk to a person about my kettle.\n\nLi")
    await send(smtp_port(mail), question)
    (ack,) = await relay.wait_for(1)
    conversation_id = await conversation_of(mail, question["Message-ID"])
    await claim(mail, "ana", conversation_id)
    photo = png(3, 3)
    status, _ = await reply_with_files(
        mail,
        "ana",
        conversation_id,
        [LABEL, ("kettle.png", photo, "image/png")],
        text="Here is your return label.",
    )
    assert status == 202
    reply = (await relay.wait_for(2))[1]
    assert reply.get_content_type() == "multipart/mixed"
    assert "Here is your return label." in body_text(reply)
    attached = {part.get_filename(): part for part in reply.iter_attachments()}
    assert set(attached) == {"退货标签.pdf", "kettle.png"}
    assert attached["退货标签.pdf"].get_content_type() == "application/pdf"
    assert attached["退货标签.pdf"].get_content() == PDF
    assert attached["kettle.png"].get_content() == photo
    assert reply["In-Reply-To"] == ack["In-Reply-To"]


async def test_a_telegram_customer_gets_the_photo_and_the_document(
    tmp_path: Path, telegram_api: FakeTelegram
) -> None:
    fake = telegram_api
    async with running_service(tmp_path, overrides=telegram_overrides(fake, "webhook")) as service:
        await service.add_agent("ana")
        async with service.client.post(
            "/telegram/webhook", json=fake.text_update("talk to a person"), headers=HEADERS
        ) as response:
            assert response.status == 200
        await fake.wait_for_sent(1)
        async with service.db.read() as repo:
            [conversation] = await repo.contact_conversations(1)
        await claim(service, "ana", conversation.id)
        photo = png(5, 4)
        status, _ = await reply_with_files(
            service,
            "ana",
            conversation.id,
            [("kettle.png", photo, "image/png"), LABEL],
            text="The label and a photo of the part",
        )
        assert status == 202
        sent_photo, sent_label = await fake.wait_for_files(2)
        texts = [m.text for m in fake.sent]
        assert texts[-1] == "The label and a photo of the part"
        assert (sent_photo.method, sent_photo.data, sent_photo.chat_id) == ("sendPhoto", photo, 555)
        assert (sent_label.method, sent_label.filename, sent_label.data) == (
            "sendDocument",
            "退货标签.pdf",
            PDF,
        )


async def test_a_bridge_gets_signed_links_it_can_fetch(tmp_path: Path) -> None:
    far_side = Bridge()
    app = aiohttp.web.Application()
    app.router.add_post("/replies", far_side.handle)
    async with TestServer(app, host="127.0.0.1", port=0) as bridge_server:
        overrides: dict[str, Any] = {
            "channels": {
                "api": {
                    "whatsapp": {
                        "secret": SECRET,
                        "outbound_url": str(bridge_server.make_url("/replies")),
                    }
                }
            },
        }
        async with running_service(tmp_path, overrides=overrides) as service:
            await service.add_agent("ana")
            status, receipt = await post(service, message("我要人工客服"))
            assert status == 200
            await far_side.wait_for_replies(1)
            await claim(service, "ana", receipt["conversation_id"])
            status, _ = await reply_with_files(
                service, "ana", receipt["conversation_id"], [LABEL], text="label attached"
            )
            assert status == 202
            reply = (await far_side.wait_for_replies(2))[1]
            [attachment] = reply["attachments"]
            assert attachment["name"] == "退货标签.pdf" and attachment["size"] == len(PDF)
            async with service.client.get(attachment["url"]) as response:
                assert response.status == 200 and await response.read() == PDF


async def test_links_are_absolute_with_a_public_url(tmp_path: Path) -> None:
    overrides = {"server": {"public_url": "https://support.example.com"}}
    async with running_service(tmp_path, overrides=overrides) as service:
        await service.add_agent("ana")
        visitor, conversation_id = await handed_off_visitor(service)
        await reply_with_files(service, "ana", conversation_id, [LABEL], text="x")
        frame = await visitor.wait_for(lambda f: f.get("author") == "agent")
        url = frame["attachments"][0]["url"]
        assert url.startswith("https://support.example.com/files/outbound/")
        async with service.client.get(url.removeprefix("https://support.example.com")) as response:
            assert response.status == 200
        await visitor.close()


async def test_erasing_the_contact_deletes_the_files_agents_sent_them(desk: Service) -> None:
    await add_admin(desk, "boss")
    visitor, conversation_id = await handed_off_visitor(desk)
    await reply_with_files(desk, "ana", conversation_id, [LABEL], text="label")
    frame = await visitor.wait_for(lambda f: f.get("author") == "agent")
    url = frame["attachments"][0]["url"]
    folder = desk.app[FILES].root / "outbound"
    assert [p for p in folder.rglob("*") if p.is_file()]

    status, erased = await desk.api("boss", "POST", "/api/agent/contacts/1/erase")
    assert status == 200 and erased["files"] == 1
    assert not [p for p in folder.rglob("*") if p.is_file()]
    async with desk.client.get(url) as response:
        assert response.status == 404
    await visitor.close()
