"""The gap scan: what it keeps is what the gap report would have found by reading every
message, it is kept once whoever scans, and a conversation that changes is read again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.base import ChannelAddress
from knowledge import Matcher, Normaliser, load_folder, load_synonyms
from router.conversations import AuthorKind, Direction, Priority
from router.reporting.kb_gaps import find_gaps, keep_gaps_current, scan_gaps
from router.storage import Database, ReportFilter
from tests.support.service import DEMO_KB

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MONTH = ReportFilter(start=NOW - timedelta(days=30), end=NOW)


def matcher() -> Matcher:
    return Matcher(load_folder(DEMO_KB), normaliser=Normaliser(load_synonyms(DEMO_KB)))


async def chat(
    db: Database, who: str, when: datetime, turns: list[tuple[str, str, dict[str, Any]]]
) -> int:
    """A conversation: (author, text, extras) in order, a minute apart."""
    async with db.write() as repo:
        contact = await repo.create_contact(
            channel="webchat", external_id=who, display_name=None, email=None, now=when
        )
        conversation = await repo.create_conversation(
            contact_id=contact, address=ChannelAddress("webchat", who), subject=None, now=when
        )
        for n, (author, text, extras) in enumerate(turns):
            customer = author == "customer"
            await repo.add_message(
                conversation_id=conversation.id,
                direction=Direction.IN if customer else Direction.OUT,
                author_kind=AuthorKind(author),
                text=text,
                channel="webchat",
                now=when + timedelta(minutes=n),
                kind=extras.pop("kind", None),
                extras=extras or None,
            )
        await repo.touch_conversation(
            conversation.id,
            reply_to=ChannelAddress("webchat", who),
            language=None,
            now=when + timedelta(minutes=len(turns)),
        )
        return conversation.id


ANSWER = {"kind": "answer", "reason": "match"}


async def history(db: Database) -> dict[str, int]:
    day = NOW - timedelta(days=3)
    return {
        "asked_again": await chat(
            db,
            "amy",
            day,
            [
                ("customer", "can I buy a gift card for my friend", {}),
                ("bot", "Our returns policy…", dict(ANSWER)),
                ("customer", "how do I buy a gift card for my friend", {}),
            ],
        ),
        "unpicked": await chat(
            db,
            "ben",
            day + timedelta(hours=1),
            [
                ("customer", "维修", {}),
                ("bot", "Which one?", {"kind": "clarify", "reason": "close"}),
                ("customer", "我家猫把遥控器咬坏了", {}),
            ],
        ),
        "helped": await chat(
            db,
            "cat",
            day + timedelta(hours=2),
            [
                ("customer", "How long is the warranty?", {}),
                ("bot", "Two years.", dict(ANSWER)),
                ("customer", "thanks", {}),
            ],
        ),
    }


def shape(clusters: list[Any]) -> list[tuple[int, list[str], list[int]]]:
    return sorted(
        (
            c.size,
            sorted(q.text for q in c.questions),
            sorted(q.conversation_id for q in c.questions),
        )
        for c in clusters
    )


async def test_what_the_scan_keeps_is_what_reading_every_message_finds(
    database: Database,
) -> None:
    ids = await history(database)
    read_through = await find_gaps(database, matcher(), MONTH)
    assert await scan_gaps(database, now=NOW) == 3
    async with database.read() as repo:
        kept = await repo.scanned_gaps(MONTH)
        assert await repo.gap_scan_due(NOW, 10) == []  # nothing left to scan
    assert [q.source for q in kept[ids["asked_again"]]] == ["asked_again"]
    assert [q.text for q in kept[ids["unpicked"]]] == ["维修"]
    assert ids["helped"] not in kept
    assert shape(await find_gaps(database, matcher(), MONTH)) == shape(read_through)
    assert {q.conversation_id for c in read_through for q in c.questions} == {
        ids["asked_again"],
        ids["unpicked"],
    }


async def test_a_conversation_that_changes_after_its_scan_is_read_again(
    database: Database,
) -> None:
    ids = await history(database)
    await scan_gaps(database, now=NOW)
    later = NOW - timedelta(days=1)
    async with database.write() as repo:
        for n, (author, text) in enumerate(
            [
                ("customer", "how long is the warranty on batteries"),
                ("bot", "Two years."),
                ("customer", "how long is the warranty on the batteries then"),
            ]
        ):
            await repo.add_message(
                conversation_id=ids["helped"],
                direction=Direction.IN if author == "customer" else Direction.OUT,
                author_kind=AuthorKind(author),
                text=text,
                channel="webchat",
                now=later + timedelta(minutes=n),
                **({"kind": "answer", "extras": {"reason": "match"}} if author == "bot" else {}),
            )
        await repo.touch_conversation(
            ids["helped"],
            reply_to=ChannelAddress("webchat", "cat"),
            language=None,
            now=later + timedelta(minutes=2),
        )
    # Not scanned since: the report reads it itself.
    found = await find_gaps(database, matcher(), MONTH)
    assert ids["helped"] in {q.conversation_id for c in found for q in c.questions}
    assert await scan_gaps(database, now=NOW) == 1
    async with database.read() as repo:
        assert [q.source for q in (await repo.scanned_gaps(MONTH))[ids["helped"]]] == [
            "asked_again"
        ]
    assert shape(await find_gaps(database, matcher(), MONTH)) == shape(found)


async def test_a_conversation_still_being_written_is_not_scanned_yet(database: Database) -> None:
    await chat(database, "dan", NOW - timedelta(minutes=3), [("customer", "hello", {})])
    assert await scan_gaps(database, now=NOW) == 0  # quiet for less than ten minutes
    assert await scan_gaps(database, now=NOW + timedelta(minutes=15)) == 1


async def test_two_scans_of_one_conversation_keep_its_questions_once(database: Database) -> None:
    ids = await history(database)
    async with database.read() as repo:
        due = await repo.gap_scan_due(NOW, 10)
    first, second = await asyncio.gather(scan_gaps(database, now=NOW), scan_gaps(database, now=NOW))
    assert first + second >= 3
    async with database.write() as repo:
        kept = await repo.scanned_gaps(MONTH)
        # A scan of a conversation another scan kept already is refused.
        assert not await repo.store_gap_scan(due[0], [])
    assert len(kept[ids["asked_again"]]) == 1 and len(kept[ids["unpicked"]]) == 1


async def test_questions_of_unsure_handoffs_and_low_ratings_follow_the_handoff_and_rating(
    database: Database,
) -> None:
    ids = await history(database)
    await keep_gaps_current(database, lambda: NOW)
    async with database.write() as repo:
        assert await repo.hand_off(
            ids["helped"], priority=Priority.NORMAL, sla_due_at=None, now=NOW
        )
        await repo.add_handoff(
            conversation_id=ids["helped"],
            message_id=None,
            reason="low_confidence",
            language=None,
            priority=Priority.NORMAL,
            candidates=[{"id": "warranty", "score": 60.0}],
            context={},
            sla_due_at=None,
            now=NOW,
        )
    found = await find_gaps(database, matcher(), MONTH)
    unsure = [q for c in found for q in c.questions if q.source == "unsure"]
    assert [(q.conversation_id, q.text, q.closest) for q in unsure] == [
        (ids["helped"], "thanks", "warranty")
    ]
    # Once the handed-off conversation has settled, the scan keeps its question: the
    # report no longer reads its messages, and finds the same.
    assert await scan_gaps(database, now=NOW + timedelta(minutes=15)) == 1
    async with database.read() as repo:
        assert [(q.source, q.text) for q in (await repo.scanned_gaps(MONTH))[ids["helped"]]] == [
            ("unsure", "thanks")
        ]
        assert await repo.unkept_turns(MONTH, low_rating=2) == {}
    assert shape(await find_gaps(database, matcher(), MONTH)) == shape(found)
    # A low rating changes nothing the scan sees; the report finds the rated
    # conversation's first question all the same.
    async with database.write() as repo:
        await repo.set_promise_fields(ids["asked_again"], survey_asked_at=NOW)
        assert await repo.record_rating(ids["asked_again"], score=1, comment=None, now=NOW)
    rated = [
        (q.conversation_id, q.text)
        for c in await find_gaps(database, matcher(), MONTH)
        for q in c.questions
        if q.source == "rated_low"
    ]
    assert rated == [(ids["asked_again"], "can I buy a gift card for my friend")]
