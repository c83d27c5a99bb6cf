"""Property tests over every parser that takes bytes from strangers: no exception escapes
and nothing is lost (issue 14, item 19).

The email parser, the web-chat frame handler and the knowledge-base loaders are called
directly, shrinking included. The HTTP entry points (Telegram webhook, bridge) are
exercised through the running service with examples drawn by hypothesis beforehand,
because one service serves them all.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.api.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from channels.base import InboundMessage, InboundReceipt
from channels.email.channel import EmailChannel, EmailSettings
from channels.email.parse import parse_mail
from knowledge import KnowledgeError
from knowledge.formats import load_csv, load_markdown
from knowledge.loader import load_entries, load_synonyms
from tests.support.service import running_service
from tests.support.telegram_api import FakeTelegram

pytestmark = pytest.mark.slow

FAST = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

HEADER_NAMES = st.sampled_from(
    [
        "From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References", "Date",
        "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version",
        "Return-Path", "Auto-Submitted", "Precedence", "List-Id", "Reply-To",
    ]
)  # fmt: skip
HEADER_VALUES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"=?utf-8?b?5L2g5aW9?=",
            b"=?gb2312?q?=C4=E3=BA=C3?=",
            b'multipart/mixed; boundary="b"',
            b'text/plain; charset="x-unknown"',
            b"alice@example.com <bob@example.com>",
            b"<a@b> <c@d>",
            b"base64",
            b"quoted-printable",
            b"\x00\r\nBcc: x@y",
        ]
    ),
)


@st.composite
def mails(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=12))
    body = draw(
        st.one_of(
            st.binary(max_size=2000),
            st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.just(b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n"),
        )
    )
    head = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers)
    return head + b"\r\n" + body


@FAST
@given(st.one_of(st.binary(max_size=3000), mails()))
def test_the_email_parser_never_raises_and_keeps_the_text(raw: bytes) -> None:
    parsed = parse_mail(raw)
    assert parsed.message_id
    assert isinstance(parsed.text, str)
    "".join([parsed.text, parsed.subject, parsed.from_name or ""]).encode("utf-8")
    assert "\x00" not in parsed.subject and "\n" not in parsed.subject


@FAST
@given(raw=st.one_of(st.binary(max_size=3000), mails()))
async def test_every_mail_becomes_one_stored_message(raw: bytes, tmp_path: Path) -> None:
    received: list[InboundMessage] = []

    async def ingest(inbound: InboundMessage) -> InboundReceipt:
        received.append(inbound)
        return InboundReceipt(conversation_id=1, message_id=len(received))

    channel = EmailChannel(
        settings=EmailSettings(addresses=["support@shop.example"]),
        attachments_dir=tmp_path,
        secret=b"s" * 32,
    )
    await channel.start(ingest)
    receipt = await channel.receive(raw, envelope_from="x@example.net")
    if receipt is not None:  # None: it looked like our own mail coming back
        assert len(received) == 1
        original = received[0].extras["original"]
        assert (tmp_path / original.removeprefix("email/")).read_bytes() == raw


FRAMES = st.one_of(
    st.text(max_size=300),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=50)),
        lambda children: st.one_of(
            st.lists(children, max_size=5), st.dictionaries(st.text(max_size=10), children)
        ),
        max_leaves=20,
    ).map(json.dumps),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["message", "choice", "hello", "nope"]),
            "client_id": st.one_of(st.text(max_size=120), st.integers()),
            "text": st.one_of(st.text(max_size=200), st.none()),
            "choice_id": st.text(max_size=20),
            "label": st.text(max_size=30),
        }
    ).map(lambda d: json.dumps(d, ensure_ascii=False)),
)


class _Socket:
    """Stands in for the aiohttp websocket: records what the channel sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_json(self, frame: dict[str, Any]) -> None:
        self.sent.append(frame)


@FAST
@given(data=FRAMES)
async def test_a_web_chat_frame_is_stored_or_refused_with_a_reason(data: str) -> None:
    from channels.webchat import RateLimit, WebChatChannel, WebChatSettings
    from channels.webchat.frames import FrameError
    from channels.webchat.identity import Caller
    from channels.webchat.tabs import Live

    stored: list[InboundMessage] = []

    async def ingest(inbound: InboundMessage) -> InboundReceipt:
        inbound.text.encode("utf-8")  # what the database would do
        stored.append(inbound)
        return InboundReceipt(conversation_id=1, message_id=len(stored))

    channel = WebChatChannel(
        settings=WebChatSettings(rate_limit=RateLimit(burst=1000, per_minute=1000)),
        secret=b"0123456789abcdef",
    )
    await channel.start(ingest)
    socket = _Socket()
    try:
        await channel._handle(Caller("ab" * 16, "127.0.0.1"), Live(), data, socket)  # type: ignore[arg-type]
    except FrameError as refused:
        assert refused.code and str(refused)
        assert stored == []
    else:
        assert len(stored) == 1 and socket.sent[-1]["type"] == "ack"


YAML_TEXT = st.one_of(
    st.text(max_size=400),
    st.sampled_from(
        ["- id: a\n  questions: [x]\n  answer: y\n", "a: [b", "- !!python/name:os.system"]
    ),
)


@FAST
@given(text=YAML_TEXT, kind=st.sampled_from(["yaml", "csv", "md", "synonyms"]))
def test_the_knowledge_loaders_load_or_name_the_problem(
    text: str, kind: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("kb")
    name = {"yaml": "faq.yaml", "csv": "faq.csv", "md": "faq.md", "synonyms": "synonyms.yaml"}
    file = folder / name[kind]
    file.write_bytes(text.encode("utf-8", "surrogatepass"))
    loader = {
        "yaml": load_entries,
        "csv": load_csv,
        "md": load_markdown,
        "synonyms": lambda f: load_synonyms(f.parent),
    }[kind]
    try:
        loader(file)
    except KnowledgeError as problem:
        assert str(problem)


def _drawn(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples drawn by hypothesis, for entry points behind one running service."""
    drawn: list[Any] = []

    @settings(max_examples=count, database=None, deadline=None)
    @given(strategy)
    def collect(example: Any) -> None:
        drawn.append(example)

    collect()
    return drawn


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children)
    ),
    max_leaves=25,
)
TELEGRAM_LIKE = st.fixed_dictionaries(
    {
        "update_id": st.one_of(st.integers(), st.text(max_size=5)),
        "message": st.fixed_dictionaries(
            {
                "message_id": st.one_of(st.integers(min_value=-5, max_value=10**12), st.none()),
                "date": st.one_of(st.integers(min_value=-(10**10), max_value=10**10), st.text()),
                "chat": st.one_of(
                    st.fixed_dictionaries(
                        {"id": st.integers(), "type": st.sampled_from(["private", "group", "x"])}
                    ),
                    JSONISH,
                ),
                "from": JSONISH,
                "text": st.one_of(st.text(max_size=100), st.integers(), st.none()),
            }
        ),
    }
)
BRIDGE_LIKE = st.one_of(
    JSONISH,
    st.fixed_dictionaries(
        {
            "message_id": st.one_of(st.text(max_size=300), st.integers()),
            "sender": st.one_of(st.fixed_dictionaries({"id": st.text(max_size=50)}), JSONISH),
            "text": st.one_of(st.text(max_size=200), st.integers()),
            "thread_id": st.one_of(st.none(), st.text(max_size=50)),
            "sent_at": st.one_of(st.none(), st.text(max_size=30), st.integers()),
        }
    ),
)


async def test_telegram_updates_and_bridge_payloads_never_get_a_server_error(
    tmp_path: Path,
) -> None:
    telegram = FakeTelegram()
    telegram.server = TestServer(telegram.app(), host="127.0.0.1", port=0)
    await telegram.server.start_server()
    try:
        await _post_all(tmp_path, telegram)
    finally:
        await telegram.server.close()


async def _post_all(tmp_path: Path, telegram: FakeTelegram) -> None:
    secret, hook = "bridge-secret-0123456789", "telegram-webhook-secret-0123"
    overrides = {
        "channels": {
            "telegram": {
                "enabled": True,
                "token": telegram.token,
                "mode": "webhook",
                "webhook_secret": hook,
                "api_base_url": telegram.base_url,
                "per_chat_interval_seconds": 0,
            },
            "api": {"shop": {"secret": secret, "outbound_url": f"{telegram.base_url}/out"}},
        }
    }
    updates = _drawn(st.one_of(TELEGRAM_LIKE, JSONISH), 150)
    payloads = _drawn(BRIDGE_LIKE, 150)
    async with running_service(tmp_path, overrides=overrides) as service:
        statuses: set[int] = set()
        for update in updates:
            async with service.client.post(
                "/telegram/webhook",
                data=json.dumps(update),
                headers={"X-Telegram-Bot-Api-Secret-Token": hook},
            ) as response:
                assert response.status < 500, (update, await response.text())
                statuses.add(response.status)
        for payload in payloads:
            body = json.dumps(payload).encode()
            stamp = int(time.time())
            async with service.client.post(
                "/api/channels/shop/messages",
                data=body,
                headers={
                    TIMESTAMP_HEADER: str(stamp),
                    SIGNATURE_HEADER: sign(secret, stamp, body),
                    "Content-Type": "application/json",
                },
            ) as response:
                assert response.status < 500, (payload, await response.text())
                statuses.add(response.status)
        assert 200 in statuses and 400 in statuses


# What WeChat and WeCom could POST, signed and (in safe mode) encrypted with the right
# keys: any mix of their field names with strange values, and XML that is not theirs.
_WECHAT_FIELDS = st.sampled_from(
    [
        "MsgType", "Content", "MsgId", "CreateTime", "FromUserName", "ToUserName", "Event",
        "EventKey", "MediaId", "Recognition", "Location_X", "Label", "Url", "bizmsgmenuid",
    ]
)  # fmt: skip
_XML_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="]<>&"),
    max_size=40,
)
WECHAT_LIKE = st.one_of(
    st.builds(
        lambda pairs: "<xml>"
        + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in pairs)
        + "</xml>",
        st.lists(
            st.tuples(_WECHAT_FIELDS, st.one_of(_XML_TEXT, st.sampled_from(["text", "image",
            "voice", "event", "subscribe", "location", "link", "qrscene_", "-1", ""]))),
            max_size=8,
        ),
    ),
    st.text(max_size=200),
)  # fmt: skip


async def test_wechat_callbacks_never_get_a_server_error(tmp_path: Path) -> None:
    from tests.support import wechat_api

    bodies = _drawn(WECHAT_LIKE, 150)
    fake = wechat_api.FakeWeCom()
    fake.server = TestServer(fake.app(), host="127.0.0.1", port=0)
    await fake.server.start_server()
    overrides = {
        "channels": {
            "wechat": {
                "enabled": True,
                "app_id": wechat_api.APP_ID,
                "app_secret": wechat_api.SECRET,
                "token": wechat_api.TOKEN,
                "encoding_aes_key": wechat_api.AES_KEY,
                "api_base_url": fake.base_url,
            }
        }
    }
    try:
        async with running_service(tmp_path, overrides=overrides) as service:
            statuses: set[int] = set()
            for body in bodies:
                query, data = wechat_api.signed(body, safe=True)
                async with service.client.post(f"/wechat/callback?{query}", data=data) as r:
                    assert r.status < 500, (body, await r.text())
                    statuses.add(r.status)
            assert 200 in statuses and 400 in statuses
    finally:
        await fake.server.close()
