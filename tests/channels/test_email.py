"""The email channel end to end: a customer's provider → our SMTP receiver → router →
our reply through a real relay (aiosmtpd), all on loopback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from router.delivery.events import DeliveryFailed
from router.keys import SMTP_RECEIVER
from tests.support.inbox import InboxSession, add_inbox_agent
from tests.support.mail import Relay, body_text, customer_mail, self_signed_context, send
from tests.support.service import Service, running_service

SUPPORT = "support@shop.example"


def email_overrides(relay_port: int, **email: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "enabled": True,
        "addresses": [SUPPORT, "help@shop.example"],
        "from_name": "Shop Support",
        "relay": {"host": "127.0.0.1", "port": relay_port, "security": "none"},
        "smtp": {"enabled": True, "port": 0},  # the default 25 MB limit
    }
    settings.update(email)
    return {"channels": {"email": settings}}


def smtp_port(service: Service) -> int:
    return int(service.app[SMTP_RECEIVER].port)


async def conversation_of(service: Service, message_id: str) -> int:
    async with service.db.read() as repo:
        found = await repo.message_exists("email", message_id.strip("<>"))
        assert found is not None, f"{message_id} was not stored"
        conversation_id = await repo.conversation_of_message(found)
    assert conversation_id is not None
    return conversation_id


async def test_a_question_is_answered_by_mail_threaded_to_the_customers_message(
    mail: Service, relay: Relay
) -> None:
    question = customer_mail("Hello,\n\nHow long does a refund take?\n\nThanks, Li")
    async with mail.delivered(1):
        await send(smtp_port(mail), question)

    (reply,) = await relay.wait_for(1)
    conversation_id = await conversation_of(mail, question["Message-ID"])
    assert reply["To"] == "li.wei@example.net"
    assert reply["From"].addresses[0].addr_spec == SUPPORT
    assert reply["Subject"] == f"Re: Question about my order [#{conversation_id}]"
    assert reply["In-Reply-To"] == question["Message-ID"]
    assert question["Message-ID"] in reply["References"]
    # RFC 3834: an automatic answer says so, so that auto-responders stay quiet.
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply.get_content_type() == "multipart/alternative"
    text = body_text(reply)
    assert "original payment method" in text
    assert "reply to this email and a person" in text
    html = reply.get_body(preferencelist=("html",))
    assert html is not None and "original payment method" in html.get_content()
    # The Message-ID we minted is stored: the customer's reply to it finds the conversation.
    assert await conversation_of(mail, reply["Message-ID"]) == conversation_id


async def test_a_reply_after_the_bots_answer_goes_to_a_person_with_one_acknowledgement(
    mail: Service, relay: Relay
) -> None:
    question = customer_mail("How long does a refund take?")
    async with mail.delivered(1):
        await send(smtp_port(mail), question)
    (answer,) = await relay.wait_for(1)

    follow_up = customer_mail(
        "It has been three weeks and I still have nothing.\n\n"
        "On Mon, 23 Nov 2026 at 10:00, Shop Support <support@shop.example> wrote:\n"
        "> Once approved, the refund goes back to the original payment method.",
        subject=f"Re: {answer['Subject']}",
        in_reply_to=answer["Message-ID"],
        references=[question["Message-ID"], answer["Message-ID"]],
    )
    async with mail.delivered(1):
        await send(smtp_port(mail), follow_up)
    ack = (await relay.wait_for(2))[1]

    conversation_id = await conversation_of(mail, question["Message-ID"])
    assert await conversation_of(mail, follow_up["Message-ID"]) == conversation_id
    assert f"#{conversation_id}" in body_text(ack)
    assert ack["In-Reply-To"] == follow_up["Message-ID"]
    await mail.add_agent("ana")
    status, detail = await mail.api("ana", "GET", f"/api/agent/conversations/{conversation_id}")
    assert status == 200
    assert detail["status"] == "queued"
    assert detail["handoffs"][0]["reason"] == "reply_after_answer"
    customer_messages = [m for m in detail["messages"] if m["direction"] == "in"]
    # The agent reads what the customer wrote this time; the quote is kept aside.
    assert customer_messages[1]["text"] == "It has been three weeks and I still have nothing."
    assert customer_messages[1]["extras"]["joined"].startswith("replies to <")

    # A third mail from the customer: a person is on it, nobody answers automatically.
    await send(
        smtp_port(mail),
        customer_mail("Any news?", subject="Re: refund", in_reply_to=ack["Message-ID"]),
    )
    async with mail.db.read() as repo:
        outbox = await repo.outbox_for_conversation(conversation_id)
    assert [item.kind for item in outbox] == ["answer", "ack"]


async def test_a_question_told_with_its_story_is_answered_by_mail(
    mail: Service, relay: Relay
) -> None:
    # The whole mail scores below email's bar (40); its question alone is clear.
    question = customer_mail("Hi, how long does a refund take? I returned my shoes last week.")
    async with mail.delivered(1):
        await send(smtp_port(mail), question)
    (reply,) = await relay.wait_for(1)
    assert reply["Auto-Submitted"] == "auto-replied"
    assert "original payment method" in body_text(reply)


async def test_two_questions_in_one_mail_go_to_a_person(mail: Service, relay: Relay) -> None:
    question = customer_mail(
        "Where is my order? Also, can I change the delivery address? It is a gift."
    )
    await send(smtp_port(mail), question)
    (ack,) = await relay.wait_for(1)
    assert "will answer by" in body_text(ack)
    conversation_id = await conversation_of(mail, question["Message-ID"])
    await mail.add_agent("ana")
    status, detail = await mail.api("ana", "GET", f"/api/agent/conversations/{conversation_id}")
    assert status == 200 and detail["status"] == "queued"
    assert detail["handoffs"][0]["reason"] == "several_questions"


async def test_an_unsure_match_is_not_answered_by_mail_but_handed_to_a_person(
    mail: Service, relay: Relay
) -> None:
    question = customer_mail("Hi, is the money back quick once you have my parcel?")
    await send(smtp_port(mail), question)
    (ack,) = await relay.wait_for(1)
    conversation_id = await conversation_of(mail, question["Message-ID"])
    text = body_text(ack)
    assert f"#{conversation_id}" in text and "will answer by" in text
    async with mail.db.read() as repo:
        conversation = await repo.conversation(conversation_id)
    assert conversation is not None and conversation.status.value == "queued"


async def test_mail_without_threading_headers_joins_by_ticket_or_subject(
    mail: Service, relay: Relay
) -> None:
    await mail.add_agent("ana")
    first = customer_mail("My order 1042 arrived with a cracked screen.", subject="Broken phone")
    await send(smtp_port(mail), first)
    await relay.wait_for(1)
    conversation_id = await conversation_of(mail, first["Message-ID"])

    # A client that drops In-Reply-To and References, replying with "回复:".
    by_subject = customer_mail("照片见附件。", subject="回复: Broken phone")
    # A reply to an old mail under a new subject that kept our ticket token.
    by_ticket = customer_mail(
        "Any update?", subject=f"Where is my replacement? [#{conversation_id}]"
    )
    # Someone else with the same subject is a different customer.
    stranger = customer_mail("Mine too.", subject="Re: Broken phone", sender="someone@example.org")
    for item in (by_subject, by_ticket, stranger):
        await send(smtp_port(mail), item)

    assert await conversation_of(mail, by_subject["Message-ID"]) == conversation_id
    assert await conversation_of(mail, by_ticket["Message-ID"]) == conversation_id
    assert await conversation_of(mail, stranger["Message-ID"]) != conversation_id
    _, detail = await mail.api("ana", "GET", f"/api/agent/conversations/{conversation_id}")
    reasons = [m["extras"].get("joined") for m in detail["messages"] if m["direction"] == "in"]
    assert reasons == [
        "new conversation",
        "same sender and subject",
        f"ticket #{conversation_id} in the subject",
    ]


async def test_auto_generated_mail_is_kept_and_never_answered(mail: Service, relay: Relay) -> None:
    automatic = [
        customer_mail("I am out of the office.", headers={"Auto-Submitted": "auto-replied"}),
        customer_mail("Weekly deals!", headers={"Precedence": "bulk"}),
        customer_mail("News", headers={"List-Id": "<deals.example.net>"}),
        customer_mail("Reply suppressed", headers={"X-Auto-Response-Suppress": "OOF"}),
        customer_mail("Your mail could not be delivered", sender="MAILER-DAEMON@example.net"),
        customer_mail("Do not reply", sender="noreply@example.net"),
        customer_mail("自动回复：我正在休假", subject="自动回复: Question about my order"),
    ]
    for item in automatic:
        await send(smtp_port(mail), item)
    # A real customer afterwards is answered: the receiver and the bot are alive.
    await send(smtp_port(mail), customer_mail("How long does a refund take?"))
    await relay.wait_for(1)
    assert len(relay.received) == 1
    assert "original payment method" in body_text(relay.received[0])
    for item in automatic:
        conversation_id = await conversation_of(mail, item["Message-ID"])
        async with mail.db.read() as repo:
            messages = await repo.messages(conversation_id)
        (stored,) = [m for m in messages if m.external_id == item["Message-ID"].strip("<>")]
        assert stored.extras["automated"]


async def test_an_auto_responder_that_answers_everything_gets_three_replies_then_silence(
    tmp_path: Path, relay: Relay
) -> None:
    overrides = email_overrides(relay.port, auto_replies_per_hour=3)
    async with running_service(tmp_path, overrides=overrides) as mail:
        # A responder that sets no header we could recognise and starts a new
        # thread every time: only the per-sender cap stops the ping-pong.
        for round_ in range(8):
            await send(
                smtp_port(mail),
                customer_mail(
                    "How long does a refund take?",
                    subject=f"Ticket received {round_}",
                    sender="robot@helpdesk.example.org",
                ),
            )
        await relay.wait_for(3)
        # Every mail is stored; eight conversations, only three automatic replies.
        async with mail.db.read() as repo:
            counts = await repo.count_by_status()
        assert sum(counts.values()) == 8
        assert counts.get("queued") == 5
    assert len(relay.received) == 3


async def test_the_receiver_refuses_strangers_with_550_and_big_mail_with_552(
    mail: Service, relay: Relay
) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(smtp_port(mail), customer_mail("hello", to="ceo@shop.example"))
    assert refused.value.recipients[0].code == 550

    big = customer_mail("see attachment")
    big.add_attachment(b"\0" * (30 * 1024 * 1024), maintype="application", subtype="zip")
    with pytest.raises(aiosmtplib.SMTPResponseException) as too_big:
        await send(smtp_port(mail), big)
    assert too_big.value.code == 552

    # Both support addresses are ours; the same mail delivered twice is stored once.
    twice = customer_mail("How long does a refund take?", to="help@shop.example")
    await send(smtp_port(mail), twice)
    await send(smtp_port(mail), twice)
    await relay.wait_for(1)
    conversation_id = await conversation_of(mail, twice["Message-ID"])
    async with mail.db.read() as repo:
        messages = await repo.messages(conversation_id)
    assert [m.direction.value for m in messages] == ["in", "out"]


async def test_our_own_mail_coming_back_is_recognised_and_dropped(
    mail: Service, relay: Relay
) -> None:
    await send(smtp_port(mail), customer_mail("How long does a refund take?"))
    (answer,) = await relay.wait_for(1)
    # A misconfigured forward sends our answer back to the support address.
    await send(smtp_port(mail), answer.as_bytes())
    async with mail.db.read() as repo:
        counts = await repo.count_by_status()
    assert sum(counts.values()) == 1
    assert len(relay.received) == 1


async def test_a_relay_that_defers_then_accepts_delivers_once_and_a_refusal_is_dead(
    mail: Service, relay: Relay
) -> None:
    relay.script = ["451 4.3.0 greylisted, try again"]
    async with mail.delivered(1):
        await send(smtp_port(mail), customer_mail("How long does a refund take?"))
    assert relay.attempts == 2
    assert len(relay.received) == 1

    await mail.add_agent("ana")
    relay.script = ["550 5.1.1 mailbox unavailable"]
    async with mail.events.subscribe() as events:
        question = customer_mail(
            "How long does a refund take?", sender="gone@example.org", subject="refund?"
        )
        await send(smtp_port(mail), question)
        while not isinstance(event := await events.get(), DeliveryFailed):
            pass
    assert event.dead
    conversation_id = await conversation_of(mail, question["Message-ID"])
    _, detail = await mail.api("ana", "GET", f"/api/agent/conversations/{conversation_id}")
    (delivery,) = detail["failed_deliveries"]
    assert delivery["status"] == "dead"
    assert "550" in delivery["last_error"]
    assert len(relay.received) == 1


async def test_a_bounce_of_our_reply_marks_it_failed_and_is_not_answered(
    mail: Service, relay: Relay
) -> None:
    async with mail.delivered(1):
        await send(smtp_port(mail), customer_mail("How long does a refund take?"))
    (answer,) = await relay.wait_for(1)
    conversation_id = await conversation_of(mail, answer["Message-ID"])
    bounce = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        f"To: {SUPPORT}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
        "<li.wei@example.net>: host mx.example.net said: 550 5.1.1 User unknown\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        "Final-Recipient: rfc822; li.wei@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {answer['Message-ID']}\r\nSubject: {answer['Subject']}\r\n"
        "--b--\r\n"
    ).encode()
    async with mail.events.subscribe() as events:
        await send(smtp_port(mail), bounce, sender="MAILER-DAEMON@mx.example.net")
        while not isinstance(event := await events.get(), DeliveryFailed):
            pass
    assert event.conversation_id == conversation_id and event.dead
    assert await conversation_of(mail, "bounce-1@mx.example.net") == conversation_id
    async with mail.db.read() as repo:
        (item,) = await repo.outbox_for_conversation(conversation_id)
        conversation = await repo.conversation(conversation_id)
    assert item.status == "dead" and "User unknown" in (item.last_error or "")
    # The bounce did not become the reply address.
    assert conversation is not None and conversation.reply_to.recipient_id == "li.wei@example.net"
    assert len(relay.received) == 1


async def test_replies_go_out_over_starttls_with_auth_on_one_reused_connection(
    tmp_path: Path,
) -> None:
    relay = Relay(tls_context=self_signed_context(tmp_path), credentials=("shop", "relay-pw"))
    await relay.start()
    overrides = email_overrides(
        relay.port,
        relay={
            "host": "127.0.0.1",
            "port": relay.port,
            "security": "starttls",
            "username": "shop",
            "password": "relay-pw",
            "verify_certificate": False,
        },
    )
    try:
        async with running_service(tmp_path / "svc", overrides=overrides) as mail:
            for n in range(3):
                async with mail.delivered(1):
                    question = customer_mail(
                        "How long does a refund take?", sender=f"c{n}@example.net"
                    )
                    await send(smtp_port(mail), question)
    finally:
        await relay.stop()
    assert len(relay.received) == 3
    assert relay.connections == 1
    assert relay.logins == ["shop"]


async def test_a_wrong_relay_password_keeps_the_reply_waiting_and_shows_in_health(
    tmp_path: Path,
) -> None:
    relay = Relay(tls_context=self_signed_context(tmp_path), credentials=("shop", "relay-pw"))
    await relay.start()
    overrides = email_overrides(
        relay.port,
        relay={
            "host": "127.0.0.1",
            "port": relay.port,
            "username": "shop",
            "password": "wrong",
            "verify_certificate": False,
        },
    )
    try:
        async with running_service(tmp_path / "svc", overrides=overrides) as mail:
            async with mail.events.subscribe() as events:
                await send(smtp_port(mail), customer_mail("How long does a refund take?"))
                while not isinstance(event := await events.get(), DeliveryFailed):
                    pass
            assert not event.dead and "transient" in event.error
            async with mail.client.get("/healthz") as response:
                health = await response.json()
    finally:
        await relay.stop()
    assert health["status"] == "degraded"
    assert not health["channels"]["email"]["ok"]
    assert relay.received == []


async def test_the_receiver_answers_451_when_the_mail_cannot_be_stored(
    mail: Service, relay: Relay
) -> None:
    await mail.router.close()  # shutting down: intake is closed
    with pytest.raises(aiosmtplib.SMTPResponseException) as deferred:
        await send(smtp_port(mail), customer_mail("How long does a refund take?"))
    assert deferred.value.code == 451


async def test_an_agent_splits_off_a_mail_that_joined_the_wrong_conversation(
    mail: Service, relay: Relay
) -> None:
    await mail.add_agent("ana")
    first = customer_mail("My order 1042 arrived with a cracked screen.", subject="Order 1042")
    await send(smtp_port(mail), first)
    conversation_id = await conversation_of(mail, first["Message-ID"])
    other = customer_mail("Also, can I change my delivery address?", subject="Re: Order 1042")
    await send(smtp_port(mail), other)
    assert await conversation_of(mail, other["Message-ID"]) == conversation_id
    _, detail = await mail.api("ana", "GET", f"/api/agent/conversations/{conversation_id}")
    (moved,) = [m for m in detail["messages"] if m["text"].startswith("Also")]

    status, split = await mail.api(
        "ana", "POST", f"/api/agent/conversations/{conversation_id}/messages/{moved['id']}/split"
    )
    assert status == 201 and split["status"] == "queued"
    assert await conversation_of(mail, other["Message-ID"]) == split["id"]
    # The customer's next reply in that thread finds the new conversation.
    again = customer_mail("Any news on the address?", in_reply_to=other["Message-ID"])
    await send(smtp_port(mail), again)
    assert await conversation_of(mail, again["Message-ID"]) == split["id"]
    status, error = await mail.api(
        "ana", "POST", f"/api/agent/conversations/{conversation_id}/messages/999/split"
    )
    assert status == 404 and error["error"]["code"] == "message_not_found"


async def test_attachments_are_kept_and_served_to_agents_only_as_downloads(
    mail: Service, relay: Relay
) -> None:
    await mail.add_agent("ana")
    question = customer_mail("The invoice is wrong, see attached.", subject="Invoice")
    question.add_attachment(
        b"<script>alert(1)</script>",
        maintype="text",
        subtype="html",
        filename="<img src=x onerror=alert(1)>.html",
    )
    question.add_attachment(
        b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="发票.pdf"
    )
    await send(smtp_port(mail), question)
    conversation_id = await conversation_of(mail, question["Message-ID"])
    _, detail = await mail.api("ana", "GET", f"/api/agent/conversations/{conversation_id}")
    (message,) = [m for m in detail["messages"] if m["direction"] == "in"]
    hostile, invoice = message["attachments"]
    assert hostile["name"] == "<img src=x onerror=alert(1)>.html"
    assert invoice["name"] == "发票.pdf" and invoice["size"] == len(b"%PDF-1.4 invoice")
    # A person looks at files the bot cannot read.
    assert detail["handoffs"][0]["reason"] == "attachment"

    headers = {"Authorization": f"Bearer {mail.tokens['ana']}"}
    async with mail.client.get(hostile["url"], headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert await response.read() == b"<script>alert(1)</script>"
    async with mail.client.get(invoice["url"], headers=headers) as response:
        assert "%E5%8F%91%E7%A5%A8.pdf" in response.headers["Content-Disposition"]
    async with mail.client.get(invoice["url"]) as response:
        assert response.status == 401
    escape = "/api/agent/attachments/..%2F..%2Fconfig.yaml"
    async with mail.client.get(escape, headers=headers) as response:
        assert response.status == 404


async def test_the_inbox_shows_why_a_mail_joined_and_splits_it_off(
    mail: Service, relay: Relay
) -> None:
    await add_inbox_agent(mail, "Ana")
    agent = InboxSession(mail)
    await agent.login("Ana")
    first = customer_mail("My order 1042 arrived with a cracked screen.", subject="Order 1042")
    await send(smtp_port(mail), first)
    conversation_id = await conversation_of(mail, first["Message-ID"])
    other = customer_mail("Also, a new question about invoices.", subject="RE: Order 1042")
    await send(smtp_port(mail), other)
    page = await agent.get(f"/inbox/c/{conversation_id}")
    assert "joined because: same sender and subject" in page
    message_id = re.findall(r'name="message_id" value="(\d+)"', page)[-1]
    status, _ = await agent.post(f"/inbox/c/{conversation_id}/split", {"message_id": message_id})
    assert status == 303
    assert await conversation_of(mail, other["Message-ID"]) != conversation_id
    await agent.close()
