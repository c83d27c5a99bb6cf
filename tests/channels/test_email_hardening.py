"""Email against strangers and broken mail: nobody joins a conversation they are not on,
a stored file never changes, the sender is the addr-spec, and whatever the receiver
accepts is kept (issue 14, items 1-5)."""

from __future__ import annotations

import base64
import re
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import select

from channels.base import ChannelAddress, OutboundKind, OutboundMessage
from channels.email.compose import compose_reply
from channels.email.parse import parse_mail
from router.storage.models import MessageRow
from tests.channels.test_email import conversation_of, smtp_port
from tests.support.mail import Relay, body_text, customer_mail, send
from tests.support.service import Service

ATTACKER = "Mallory <mallory@evil.example>"


def _auth(service: Service) -> dict[str, str]:
    return {"Authorization": f"Bearer {service.tokens['ana']}"}


async def _detail(service: Service, conversation_id: int) -> dict[str, object]:
    if "ana" not in service.tokens:
        await service.add_agent("ana")
    status, detail = await service.api("ana", "GET", f"/api/agent/conversations/{conversation_id}")
    assert status == 200
    assert isinstance(detail, dict)
    return detail


async def test_our_message_ids_cannot_be_guessed_from_the_conversation_and_reply() -> None:
    outbound = OutboundMessage(
        address=ChannelAddress("email", "li@example.net", "x@example.net"),
        conversation_id=42,
        text="hello",
        kind=OutboundKind.AGENT,
        idempotency_key="msg-7",
    )
    sender = Address("Support", addr_spec="support@shop.example")
    _, first = compose_reply(outbound, sender=sender, domain="shop.example", secret=b"k" * 32)
    _, again = compose_reply(outbound, sender=sender, domain="shop.example", secret=b"k" * 32)
    _, other = compose_reply(outbound, sender=sender, domain="shop.example", secret=b"j" * 32)
    assert first == again, "a retried reply keeps its Message-ID"
    assert first != other, "the id depends on the server secret"
    assert "42" not in first.split("@")[0] and "msg-7" not in first
    assert re.fullmatch(r"relaydesk\.[a-z2-7]{32}@shop\.example", first)


async def test_a_stranger_naming_our_message_id_gets_a_conversation_of_their_own(
    mail: Service, relay: Relay
) -> None:
    question = customer_mail("How long does a refund take? My order is 4711.")
    async with mail.delivered(1):
        await send(smtp_port(mail), question)
    (answer,) = await relay.wait_for(1)
    victim = await conversation_of(mail, question["Message-ID"])

    hijack = customer_mail(
        "Please send the details of my order again.",
        sender=ATTACKER,
        subject=answer["Subject"],  # with the victim's [#ticket]
        in_reply_to=answer["Message-ID"],
        references=[question["Message-ID"], answer["Message-ID"]],
    )
    await send(smtp_port(mail), hijack, sender="mallory@evil.example")
    own = await conversation_of(mail, hijack["Message-ID"])
    assert own != victim

    detail = await _detail(mail, own)
    (stored,) = [m for m in detail["messages"] if m["direction"] == "in"]  # type: ignore[attr-defined]
    assert f"#{victim}" in stored["extras"]["joined"]
    assert "not on it" in stored["extras"]["joined"]
    assert stored["extras"]["claimed_conversation"] == victim

    # The victim's conversation still answers the victim, and only the victim.
    victim_detail = await _detail(mail, victim)
    assert victim_detail["reply_to"] == "li.wei@example.net"  # type: ignore[index]
    await mail.api("ana", "POST", f"/api/agent/conversations/{victim}/claim")
    async with mail.delivered(1):
        status, _ = await mail.api(
            "ana", "POST", f"/api/agent/conversations/{victim}/reply", {"text": "Order 4711: ..."}
        )
    assert status == 202
    (agent_reply,) = [r for r in relay.received if "Order 4711" in body_text(r)]
    assert agent_reply["To"] == "li.wei@example.net"


async def test_a_ticket_number_in_a_strangers_subject_opens_their_own_conversation(
    mail: Service, relay: Relay
) -> None:
    question = customer_mail("My blender stopped working after a week.", subject="Broken")
    await send(smtp_port(mail), question)
    victim = await conversation_of(mail, question["Message-ID"])

    stranger = customer_mail(
        "What is the address on this order?", sender=ATTACKER, subject=f"Re: Broken [#{victim}]"
    )
    await send(smtp_port(mail), stranger, sender="mallory@evil.example")
    assert await conversation_of(mail, stranger["Message-ID"]) != victim


async def test_someone_the_customer_copied_may_write_into_the_thread_and_replies_stay_theirs(
    mail: Service, relay: Relay
) -> None:
    question = customer_mail(
        "The parcel never arrived.", headers={"Cc": "Wang Fang <wang.fang@example.net>"}
    )
    await send(smtp_port(mail), question)
    conversation = await conversation_of(mail, question["Message-ID"])

    colleague = customer_mail(
        "Adding: the tracking number is SF123.",
        sender="Wang Fang <wang.fang@example.net>",
        in_reply_to=question["Message-ID"],
        references=[question["Message-ID"]],
    )
    await send(smtp_port(mail), colleague, sender="wang.fang@example.net")
    assert await conversation_of(mail, colleague["Message-ID"]) == conversation
    detail = await _detail(mail, conversation)
    assert detail["reply_to"] == "li.wei@example.net"  # type: ignore[index]


async def test_an_agent_merges_a_claimed_mail_into_the_conversation_it_named(
    mail: Service, relay: Relay
) -> None:
    question = customer_mail("Where is my refund?", subject="Refund")
    await send(smtp_port(mail), question)
    original = await conversation_of(mail, question["Message-ID"])
    # The same customer, from their work address: not yet known as theirs.
    other_address = customer_mail(
        "Writing from my work mail: any news?",
        sender="Li Wei <li.wei@work.example>",
        subject=f"Re: Refund [#{original}]",
    )
    await send(smtp_port(mail), other_address, sender="li.wei@work.example")
    separate = await conversation_of(mail, other_address["Message-ID"])
    assert separate != original

    detail = await _detail(mail, separate)
    (message,) = [m for m in detail["messages"] if m["direction"] == "in"]  # type: ignore[attr-defined]
    said_before = [m["id"] for m in detail["messages"] if m["direction"] == "out"]  # type: ignore[attr-defined]
    status, merged = await mail.api(
        "ana", "POST", f"/api/agent/conversations/{separate}/messages/{message['id']}/merge"
    )
    assert status == 200, merged
    assert merged["id"] == original
    assert await conversation_of(mail, other_address["Message-ID"]) == original
    # The conversation merged away is closed like any other: its promise no longer
    # runs (no warning, breach or alert mail for a conversation nobody sees), and the
    # customer is neither surveyed nor followed up there.
    emptied = await _detail(mail, separate)
    assert emptied["status"] == "resolved"
    assert emptied["promises"], "it was handed off, under a promise"
    assert all(p["stopped_at"] is not None for p in emptied["promises"])
    said_after = [m["id"] for m in emptied["messages"] if m["direction"] == "out"]
    assert said_after == said_before


async def test_a_second_mail_reusing_a_message_id_changes_no_stored_file(
    mail: Service, relay: Relay, tmp_path: Path
) -> None:
    first = customer_mail("Invoice attached.", message_id="<order-77@example.net>")
    first.add_attachment(
        b"%PDF real invoice", maintype="application", subtype="pdf", filename="invoice.pdf"
    )
    await send(smtp_port(mail), first)
    folder = tmp_path / "data" / "attachments" / "email"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert b"%PDF real invoice" in before.values()

    forged = customer_mail(
        "Invoice attached.", sender=ATTACKER, message_id="<order-77@example.net>"
    )
    forged.add_attachment(
        b"%PDF pay to mallory", maintype="application", subtype="pdf", filename="invoice.pdf"
    )
    await send(smtp_port(mail), forged, sender="mallory@evil.example")

    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert {k: after[k] for k in before} == before, "no stored file is overwritten"
    # The forged mail is a different mail: stored beside the first, in files of its own.
    assert b"%PDF pay to mallory" in after.values()

    await send(smtp_port(mail), first)  # a re-sent copy of the first
    again = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert again == after, "a duplicate mail writes nothing and overwrites nothing"


def test_the_sender_is_the_address_in_angle_brackets_not_the_display_name() -> None:
    raw = (
        b"From: alice@example.com <bob@example.com>\r\nTo: support@shop.example\r\n"
        b"Subject: hi\r\nMessage-ID: <1@example.com>\r\n\r\nhello\r\n"
    )
    parsed = parse_mail(raw)
    assert parsed.from_address == "bob@example.com"
    quoted = parse_mail(raw.replace(b"alice@example.com <", b'"Eve <eve@x.example>" <'))
    assert quoted.from_address == "bob@example.com"
    assert quoted.from_name == "Eve <eve@x.example>"


async def test_mail_from_a_do_not_reply_envelope_is_kept_but_never_acknowledged(
    mail: Service, relay: Relay
) -> None:
    notice = customer_mail(
        "Your order has shipped.",
        sender="Shop Platform <orders@platform.example>",
        headers={"Return-Path": "<do-not-reply@platform.example>"},
    )
    await send(smtp_port(mail), notice, sender="do-not-reply@platform.example")
    conversation = await conversation_of(mail, notice["Message-ID"])
    detail = await _detail(mail, conversation)
    assert [m["direction"] for m in detail["messages"]] == ["in"]  # type: ignore[attr-defined]
    automated = detail["messages"][0]["extras"]["automated"]  # type: ignore[index]
    assert automated.startswith("envelope sender")
    assert relay.received == []


async def test_one_bad_byte_in_a_utf8_mail_keeps_its_russian_readable(
    mail: Service, relay: Relay
) -> None:
    text = "Здравствуйте! Мой заказ не пришёл, прошу вернуть деньги. Спасибо."
    body = text.encode()
    body = body[:40] + b"\xff" + body[40:]
    raw = (
        b"From: Ivan <ivan@example.ru>\r\nTo: support@shop.example\r\nSubject: order\r\n"
        b"Message-ID: <ru-1@example.ru>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body
        + b"\r\n"
    )
    await send(smtp_port(mail), raw, sender="ivan@example.ru")
    detail = await _detail(mail, await conversation_of(mail, "ru-1@example.ru"))
    stored = detail["messages"][0]  # type: ignore[index]
    assert "прошу вернуть деньги" in stored["text"]
    assert "\ufffd" in stored["text"]


async def test_a_mail_with_a_very_long_line_is_taken_in(mail: Service, relay: Relay) -> None:
    line = ("这是一封很长的邮件，" * 400).encode()  # 12,000 bytes on one line
    raw = (
        b"From: Li Wei <li.wei@example.net>\r\nTo: support@shop.example\r\n"
        b"Subject: long\r\nMessage-ID: <long-1@example.net>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + line
        + b"\r\n"
    )
    errors, response = await send(smtp_port(mail), raw)
    assert errors == {} and response.startswith("2.0.0 OK"), response
    detail = await _detail(mail, await conversation_of(mail, "long-1@example.net"))
    assert detail["messages"][0]["text"].startswith("这是一封很长的邮件")  # type: ignore[index]


async def test_a_binary_body_is_flagged_for_a_person_and_kept_byte_for_byte(
    mail: Service, relay: Relay, tmp_path: Path
) -> None:
    # What an Outlook .msg (an OLE compound file) looks like pasted in as the body.
    blob = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 200
    mime = EmailMessage()
    mime["From"] = "Li Wei <li.wei@example.net>"
    mime["To"] = "support@shop.example"
    mime["Subject"] = "FW: my complaint"
    mime["Message-ID"] = "<msg-blob@example.net>"
    mime.set_content(blob.decode("latin-1"), charset="utf-8", cte="base64")
    await send(smtp_port(mail), mime.as_bytes())
    conversation = await conversation_of(mail, "msg-blob@example.net")
    detail = await _detail(mail, conversation)
    (message,) = detail["messages"]  # type: ignore[misc]
    assert "binary" in message["extras"]["flag"]
    assert len(message["text"]) < 200
    assert detail["status"] == "queued"
    assert relay.received == [], "nothing automatic answers what nobody could read"
    original = next(a for a in message["attachments"] if a["name"] == "original.eml")
    async with mail.client.get(original["url"], headers=_auth(mail)) as response:
        assert response.status == 200
        kept = await response.read()
    assert kept.replace(b"\r\n", b"\n") == mime.as_bytes().replace(b"\r\n", b"\n")


async def test_an_smtputf8_address_and_message_id_are_taken(mail: Service, relay: Relay) -> None:
    raw = (
        "From: 李伟 <李伟@例子.中国>\r\nTo: support@shop.example\r\nSubject: 退货\r\n"
        "Message-ID: <退货-1@例子.中国>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "请问怎么申请退货？\r\n"
    ).encode()
    errors, response = await aiosmtplib.send(
        raw,
        sender="李伟@例子.中国",
        recipients=["support@shop.example"],
        hostname="127.0.0.1",
        port=smtp_port(mail),
        mail_options=["SMTPUTF8"],
    )
    assert errors == {}
    assert response.startswith("2.0.0 OK"), response
    detail = await _detail(mail, await conversation_of(mail, "退货-1@例子.中国"))
    assert detail["messages"][0]["text"].startswith("请问怎么申请退货")  # type: ignore[index]
    # Our answer goes back to the internationalised address itself, in UTF-8.
    (reply,) = await relay.wait_for(1)

    def utf8(header: str) -> str:  # the parser keeps raw 8-bit header bytes as escapes
        return header.encode("utf-8", "surrogateescape").decode("utf-8")

    assert utf8(str(reply["To"])) == "李伟@例子.中国"
    assert utf8(str(reply["In-Reply-To"])) == "<退货-1@例子.中国>"


async def test_every_refusal_of_the_receiver_is_logged_with_its_reason(
    mail: Service, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await send(
            smtp_port(mail),
            customer_mail("hello", to="nobody@shop.example"),
            recipients=["nobody@shop.example"],
        )
    refused = [r.getMessage() for r in caplog.records if "SMTP refused" in r.getMessage()]
    assert refused and "550" in refused[0] and "no such support mailbox" in refused[0]


async def test_a_mail_whose_message_id_was_taken_first_is_still_stored_and_flagged(
    mail: Service, relay: Relay
) -> None:
    """A stranger who sends the Message-ID a customer's mail will carry first does not
    silence that mail; a re-sent copy of either is still a duplicate."""
    taken = "<order-4711.confirmation@example.net>"
    decoy = customer_mail("Nothing to see.", sender=ATTACKER, message_id=taken, subject="hi")
    await send(smtp_port(mail), decoy, sender="mallory@evil.example")
    first = await conversation_of(mail, taken)

    real = customer_mail("My dishwasher leaks, order 4711.", message_id=taken, subject="Leak")
    await send(smtp_port(mail), real)
    await send(smtp_port(mail), real)  # the provider re-sends: still one message
    await send(smtp_port(mail), decoy, sender="mallory@evil.example")
    async with mail.db.read() as repo:
        found = await repo.session.execute(
            select(MessageRow.conversation_id).where(MessageRow.text.contains("dishwasher"))
        )
    (conversation,) = found.scalars().all()
    assert conversation != first
    detail = await _detail(mail, conversation)
    (stored,) = [m for m in detail["messages"] if m["direction"] == "in"]  # type: ignore[attr-defined]
    assert "dishwasher leaks" in stored["text"]
    assert "another mail was stored first under this Message-ID" in stored["extras"]["flag"]
    detail = await _detail(mail, first)
    assert len([m for m in detail["messages"] if m["direction"] == "in"]) == 1  # type: ignore[attr-defined]


async def test_a_contact_forms_mail_is_answered_at_its_reply_to_and_records_both(
    mail: Service, relay: Relay
) -> None:
    """A shop's web form mails from noreply@ with the customer in Reply-To: the customer
    is the Reply-To, and the bot's answer goes there."""
    form = customer_mail(
        "How long does a refund take?",
        sender="Shop website <noreply@forms.shop-site.example>",
        headers={"Reply-To": "Li Wei <li.wei@example.net>"},
    )
    async with mail.delivered(1):
        await send(smtp_port(mail), form, sender="noreply@forms.shop-site.example")
    (answer,) = await relay.wait_for(1)
    assert answer["To"] == "li.wei@example.net"
    conversation = await conversation_of(mail, form["Message-ID"])
    detail = await _detail(mail, conversation)
    assert detail["reply_to"] == "li.wei@example.net"
    (stored,) = [m for m in detail["messages"] if m["direction"] == "in"]  # type: ignore[attr-defined]
    assert stored["extras"]["from"] == "noreply@forms.shop-site.example"
    assert stored["extras"]["reply_to"] == "li.wei@example.net"
    assert "automated" not in stored["extras"]


async def test_a_reply_to_neither_joins_a_stranger_to_a_thread_nor_takes_its_replies(
    mail: Service, relay: Relay
) -> None:
    question = customer_mail("My blender stopped working after a week.", subject="Broken")
    await send(smtp_port(mail), question)
    victim = await conversation_of(mail, question["Message-ID"])

    # The stranger writes as themselves but names the customer as Reply-To.
    posing = customer_mail(
        "Cancel my order and refund to this card instead.",
        sender=ATTACKER,
        subject=f"Re: Broken [#{victim}]",
        in_reply_to=question["Message-ID"],
        references=[question["Message-ID"]],
        headers={"Reply-To": "li.wei@example.net"},
    )
    await send(smtp_port(mail), posing, sender="mallory@evil.example")
    assert await conversation_of(mail, posing["Message-ID"]) != victim

    # The customer's address as From (forged) with the stranger as Reply-To: whatever
    # joins, the customer's conversation keeps answering the customer.
    redirect = customer_mail(
        "Please send the invoice again.",
        subject="Re: Broken",
        in_reply_to=question["Message-ID"],
        references=[question["Message-ID"]],
        headers={"Reply-To": ATTACKER},
    )
    await send(smtp_port(mail), redirect)
    assert await conversation_of(mail, redirect["Message-ID"]) == victim
    detail = await _detail(mail, victim)
    assert detail["reply_to"] == "li.wei@example.net"
    await mail.api("ana", "POST", f"/api/agent/conversations/{victim}/claim")
    async with mail.delivered(1):
        status, _ = await mail.api(
            "ana", "POST", f"/api/agent/conversations/{victim}/reply", {"text": "Invoice: ..."}
        )
    assert status == 202
    (reply,) = [r for r in relay.received if "Invoice: ..." in body_text(r)]
    assert reply["To"] == "li.wei@example.net"


async def test_a_broken_multipart_is_stored_readable_and_answered_unfolded(
    mail: Service, relay: Relay
) -> None:
    """The readable part is what is stored (the original is kept beside it), and the
    answer's Subject is the customer's, unfolded."""
    text = base64.encodebytes(b"How long does a refund take?").decode()
    raw = (
        "From: Li Wei <li.wei@example.net>\r\nTo: support@shop.example\r\n"
        "Subject: =?utf-8?q?Refund_for_my?=\r\n =?utf-8?q?_ord\r\n er?=\r\n"
        "Message-ID: <broken-1@example.net>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="declared"\r\n\r\n'
        "--used\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{text}\r\n--used--\r\n"
    ).encode()
    async with mail.delivered(1):
        await send(smtp_port(mail), raw)
    (answer,) = await relay.wait_for(1)
    conversation = await conversation_of(mail, "<broken-1@example.net>")
    assert answer["Subject"] == f"Re: Refund for my order [#{conversation}]"
    detail = await _detail(mail, conversation)
    stored = detail["messages"][0]  # type: ignore[index]
    assert stored["text"] == "How long does a refund take?"
    assert stored["extras"]["original"].endswith("original.eml")
    assert "broken multipart" in stored["extras"]["problems"]
