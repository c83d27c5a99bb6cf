"""Parsing real mail: the corpus, Chinese charsets (declared right and wrong), quote
markers of the common clients in English and Chinese, HTML-only mail."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from channels.email import normalise_subject, parse_mail, strip_reply
from channels.email.html import html_to_text
from channels.email.threading import reply_subject
from tests.support.service import SHARED, STRICT

CORPUS = SHARED / "data" / "email-corpus" / "flanker"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parents[1] / "data" / "email" / "corpus.yaml").read_text("utf-8")
)


needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir() and not STRICT, reason=f"the shared email corpus is not at {CORPUS}"
)


@needs_corpus
def test_every_corpus_file_has_an_expectation() -> None:
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.eml")}
    assert files == set(EXPECTED)


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message(name: str) -> None:
    expected = EXPECTED[name]
    parsed = parse_mail((CORPUS / name).read_bytes())
    assert parsed.readable, parsed.problems
    assert (parsed.auto is not None) == expected["automated"], parsed.auto
    if "report" in expected:
        assert parsed.auto == expected["report"]
    first = next((line.strip() for line in parsed.text.splitlines() if line.strip()), "")
    assert first.startswith(expected["text_starts"].strip())
    assert expected.get("text_contains", "") in parsed.text
    assert list(parsed.about) == expected.get("about", [])
    assert len(parsed.attachments) == expected.get("attachments", 0)
    assert parsed.message_id


_LEAK = "您好，我的洗衣机漏水了，请问怎么保修？"
_LEAK_B64 = base64.encodebytes(_LEAK.encode()).decode()
_HEAD = "From: li@example.net\r\nTo: support@shop.example\r\nSubject: t\r\nMIME-Version: 1.0\r\n"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            _HEAD + 'Content-Type: multipart/alternative; boundary="AAA"\r\n\r\n'
            "--BBB\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{_LEAK_B64}\r\n"
            "--BBB\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n--BBB--\r\n",
            id="another-boundary-than-declared",
        ),
        pytest.param(
            _HEAD + "Content-Type: multipart/mixed\r\n\r\n"
            "--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{_LEAK_B64}\r\n--XYZ--\r\n",
            id="no-boundary-declared",
        ),
        pytest.param(
            _HEAD + 'Content-Type: multipart/mixed; boundary="Q"\r\n\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{_LEAK_B64}\r\n",
            id="one-part-without-boundaries",
        ),
        pytest.param(
            _HEAD + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + _LEAK_B64,
            id="base64-not-declared",
        ),
    ],
)
def test_a_broken_structure_gives_the_readable_part_not_raw_mime(raw: str) -> None:
    parsed = parse_mail(raw.encode())
    assert parsed.text == _LEAK
    assert parsed.readable


@pytest.mark.parametrize(
    "header",
    [
        "=?utf-8?b?5rSX6KGj5py6\r\n 5ryP5rC0?=",  # a fold inside one encoded word
        "=?utf-8?b?5rSX6KGj5py6?=\r\n\t=?utf-8?b?5ryP5rC0?=",
        "=?utf-8?q?=E6=B4=97=E8=A1=A3=E6=9C=BA?=\r\n =?utf-8?q?=E6=BC=8F=E6=B0=B4?=",
    ],
)
def test_a_folded_subject_is_unfolded_for_the_reply(header: str) -> None:
    raw = f"From: li@example.net\r\nSubject: {header}\r\n\r\nhi\r\n".encode()
    subject = parse_mail(raw).subject
    assert subject == "洗衣机漏水"
    assert reply_subject(subject, 7, "x") == "Re: 洗衣机漏水 [#7]"


def test_garbage_is_kept_and_flagged_not_raised() -> None:
    for raw in (b"", b"\xff\xfe\x00garbage", b"Subject: x\r\n\r\n" + bytes(range(256))):
        parsed = parse_mail(raw)
        assert parsed.message_id  # a stable id still dedups repeats
        assert parse_mail(raw).message_id == parsed.message_id


def _mail(
    body: bytes,
    *,
    charset: str,
    subject: str,
    from_: str = "Wang <wang@example.cn>",
    encoding: str = "base64",
    content_type: str = "text/plain",
) -> bytes:
    payload = base64.encodebytes(body) if encoding == "base64" else body
    return (
        f"From: {from_}\r\nTo: support@shop.example\r\nSubject: {subject}\r\n"
        "Message-ID: <cn-1@example.cn>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: {content_type}; charset="{charset}"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode() + payload


def _word(text: str, codec: str, label: str) -> str:
    return f"=?{label}?B?{base64.b64encode(text.encode(codec)).decode()}?="


@pytest.mark.parametrize(
    ("codec", "label", "text", "subject"),
    [
        ("gb2312", "gb2312", "您好，我的订单还没有收到，请帮忙查一下。", "订单查询"),
        # GBK bytes labelled GB2312, as Outlook and Foxmail send them: 喆 and 镕 are not GB2312.
        ("gbk", "gb2312", "您好，我是王喆，朱镕的快递还没到。", "王喆的退款"),
        ("gbk", "gbk", "请问退款多久到账？", "退款"),
        ("gb18030", "gb18030", "我的名字里有𠮷字，发票抬头能开吗？", "发票𠮷"),
        ("big5", "big5", "請問退款要多久才會到帳？", "退款問題"),
        # Big5-HKSCS characters (邨) in mail labelled plain Big5.
        ("big5hkscs", "big5", "我住在石硤尾邨，包裹送錯了。", "包裹送錯"),
        ("utf-8", "utf-8", "退款多久到账？", "退款"),
        ("iso-8859-1", "iso-8859-1", "Où est ma commande ? Merci beaucoup.", "Commande égarée"),
        ("iso-8859-2", "iso-8859-2", "Dzień dobry, gdzie jest moja paczka?", "Przesyłka"),
    ],
)
def test_bodies_and_headers_in_every_charset_come_out_exactly(
    codec: str, label: str, text: str, subject: str
) -> None:
    raw = _mail(
        text.encode(codec),
        charset=label,
        subject=_word(subject, codec, label),
        from_=f"{_word('王先生', 'gb18030', 'gb2312')} <wang@example.cn>",
    )
    parsed = parse_mail(raw)
    assert parsed.text == text
    assert parsed.subject == subject
    assert parsed.from_name == "王先生"
    assert parsed.from_address == "wang@example.cn"


def test_raw_8bit_headers_and_an_unknown_charset_are_decoded_by_the_body_charset() -> None:
    body = "您好，快递显示已签收，但是我没有收到包裹，麻烦帮我查一下物流信息，谢谢。"
    raw = (
        b"From: wang@example.cn\r\nSubject: "
        + "包裹没收到".encode("gbk")
        + b"\r\nMessage-ID: <raw@example.cn>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="gbk"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
        + body.encode("gbk")
    )
    parsed = parse_mail(raw)
    assert parsed.subject == "包裹没收到"
    assert parsed.text == body
    unknown = _mail(body.encode("utf-8"), charset="x-made-up", subject="hi")
    assert parse_mail(unknown).text == body
    # No label at all and GBK bytes: detection finds it.
    undeclared = _mail(body.encode("gb18030"), charset="", subject="hi", encoding="8bit")
    assert parse_mail(undeclared).text == body


QUOTED = [
    (  # Outlook, English
        "Thanks, that worked.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\n"
        "Subject: RE: refund\n\nOnce approved...",
        "Thanks, that worked.",
    ),
    (  # Outlook without the dashes: a rule, then a header block
        "Still waiting.\n\n________________________________\nFrom: Shop Support "
        "<support@shop.example>\nSent: Monday, 23 November 2026 10:00\nTo: Li Wei\n"
        "Subject: Re: refund\n\nOnce approved...",
        "Still waiting.",
    ),
    (  # Gmail, English, attribution folded over two lines
        "Got it, thank you!\n\n"
        "On Mon, Nov 23, 2026 at 10:00 AM Shop Support <support@shop.example>\n"
        "wrote:\n> Once approved, the refund goes back...\n> \n",
        "Got it, thank you!",
    ),
    (  # Gmail / Apple Mail in Chinese
        "好的，收到了。\n\n在 2026年11月23日 周一 10:00，客服 <support@shop.example> 写道：\n"
        "> 退款审核通过后原路退回",
        "好的，收到了。",
    ),
    (  # Foxmail / QQ Mail
        "还是没有到账\n\n------------------ 原始邮件 ------------------\n"
        '发件人: "客服"<support@shop.example>;\n发送时间: 2026年11月23日(星期一) 上午10:00\n'
        '收件人: "王"<wang@example.cn>;\n主题: 回复：退款\n\n退款审核通过后原路退回',
        "还是没有到账",
    ),
    (  # Outlook in Chinese
        "谢谢！\n\n发件人: 客服 <support@shop.example>\n发送时间: 2026年11月23日 10:00\n"
        "收件人: 王 <wang@example.cn>\n主题: 回复: 退款\n\n退款审核通过后原路退回",
        "谢谢！",
    ),
    (  # Traditional Chinese Gmail, plus an iPhone signature
        "謝謝，已經收到了。\n\n從我的 iPhone 傳送\n\n在 2026年11月23日 寫道：\n> 退款",
        "謝謝，已經收到了。\n\n從我的 iPhone 傳送",
    ),
    (  # QQ Mail attribution
        '可以了\n\n2026-11-23 10:00，"客服" <support@shop.example> 写道：\n> 您好',
        "可以了",
    ),
    (  # signature delimiter and phone footer
        "Where is my parcel?\n\n-- \nLi Wei\nSent from my iPhone",
        "Where is my parcel?",
    ),
    ("Sent from my iPhone", "Sent from my iPhone"),  # nothing else: keep it
    (  # bottom posting
        "Marc wrote:\n> If you have a real uid of root\n\nThat is the case everywhere.",
        "That is the case everywhere.",
    ),
]


@pytest.mark.parametrize(("text", "expected"), QUOTED)
def test_quoted_history_and_signatures_are_removed(text: str, expected: str) -> None:
    assert strip_reply(text) == expected


def test_a_line_starting_with_from_in_the_customers_own_words_is_kept() -> None:
    text = "From: the warehouse, I got a note saying my parcel is delayed.\nWhat now?"
    assert strip_reply(text) == text


def test_html_only_mail_becomes_clean_text_without_the_quoted_history() -> None:
    gmail = (
        '<div dir="ltr">It arrived broken.<br>Photo attached.</div><br>'
        '<div class="gmail_quote"><div dir="ltr">On Mon, Shop wrote:</div>'
        "<blockquote>Once approved...</blockquote></div>"
    )
    outlook = (
        "<html><head><style>p {color: red}</style></head><body><p>还是没收到&nbsp;退款</p>"
        '<div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>发件人:</b> 客服</div>'
        "<div>退款审核通过后原路退回</div><script>alert(1)</script></body></html>"
    )
    for html, expected in (
        (gmail, "It arrived broken.\nPhoto attached."),
        (outlook, "还是没收到 退款"),
    ):
        raw = _mail(html.encode(), charset="utf-8", subject="x", content_type="text/html")
        parsed = parse_mail(raw)
        assert parsed.text == expected
        assert "alert" not in parsed.full_text and "color" not in parsed.full_text
    assert html_to_text("<ul><li>one</li><li>two</li></ul>") == "- one\n\n- two"


@pytest.mark.parametrize(
    ("subject", "topic"),
    [
        ("Re: RE: Fwd: Broken phone", "broken phone"),
        ("回复：答复: 转发：退款问题", "退款问题"),
        ("Re[2]: AW: Refund [#42]", "refund"),
        ("[shop] Re: Where is my order", "where is my order"),
        ("  ", ""),
    ],
)
def test_subjects_normalise_for_threading(subject: str, topic: str) -> None:
    assert normalise_subject(subject) == topic
