"""What the inbox pages show: the queue rows and the conversation, as template data."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.signals import says_nothing
from router.calendars import BusinessCalendar
from router.conversations import AuthorKind, ConversationStatus, Direction
from router.desk.actions import ConversationDetail
from router.errors import DeskError, page_error
from router.inbox.i18n import texts
from router.inbox.presenters import handoff, message
from router.inbox.session import (
    CHANNELS,
    TABS,
    Viewer,
    conversation_id_of,
)
from router.keys import AFTERCARE, CLOCK, DATABASE, DESK, ROUTING_SETTINGS, TIMEZONE
from router.reporting.kb_gaps import without_greeting
from router.storage import Contact, Conversation, Message, QueueFilter, SlaTimer

__all__ = ["conversation_view", "queue_view"]

# -- time and SLA for the views -----------------------------------------------------


def _ago(since: datetime, now: datetime, t: dict[str, str]) -> str:
    """How long ago, in the agent's words (``t``): 5m, 1h 3m, 2d."""
    seconds = max(int((now - since).total_seconds()), 0)
    if seconds < 3600:
        return t["ago_m"].format(m=seconds // 60)
    if seconds < 86400:
        return t["ago_hm"].format(h=seconds // 3600, m=seconds % 3600 // 60)
    return t["ago_d"].format(d=seconds // 86400)


def _sla(c: Conversation, now: datetime) -> dict[str, Any]:
    """Countdown data: green while more than a quarter of the promise is left, amber
    in the last quarter, red once it is past."""
    if c.sla_due_at is None or c.status in (ConversationStatus.RESOLVED, ConversationStatus.BOT):
        return {"due": None}
    start = c.handed_off_at or c.created_at
    total = max((c.sla_due_at - start).total_seconds(), 1.0)
    left = (c.sla_due_at - now).total_seconds()
    sla_class = "sla-late" if left < 0 else ("sla-near" if left < total / 4 else "sla-ok")
    minutes = int(abs(left) // 60)
    due_text = f"{'-' if left < 0 else ''}{minutes // 60}:{minutes % 60:02d}"
    return {
        "due": c.sla_due_at.isoformat(),
        "start": start.isoformat(),
        "sla_class": sla_class,
        "due_text": due_text,
    }


def _filters(request: web.Request) -> dict[str, Any]:
    agent = request.query.get("agent", "")
    return {
        # A team's key, "mine" (the viewer's teams) or nothing (every queue).
        "team": request.query.get("team", "").strip()[:60] or None,
        "q": request.query.get("q", "").strip()[:200] or None,
        "channel": request.query.get("channel") or None,
        "language": request.query.get("language") or None,
        "tag": request.query.get("tag", "").strip()[:40] or None,
        "agent": int(agent) if agent.isdigit() else None,
        "risk": request.query.get("risk") == "1",
    }


async def queue_view(request: web.Request, viewer: Viewer) -> dict[str, Any]:
    tab = request.query.get("tab", "unassigned")
    if tab not in TABS:
        tab = "unassigned"
    f = _filters(request)
    now = request.app[CLOCK]().astimezone(request.app[TIMEZONE])
    routing = request.app[ROUTING_SETTINGS].routing
    mine = routing.teams_of(viewer.agent.name)
    teams: list[str] | None = None
    if f["team"] == "mine":
        teams = mine
    elif f["team"] is not None:
        teams = [f["team"]]
    seen_by = request.app[DESK].seen_by(viewer.agent)
    async with request.app[DATABASE].read() as repo:
        ids = await repo.search(f["q"]) if f["q"] else None

        def where(name: str) -> QueueFilter:
            return QueueFilter(
                statuses=TABS[name],
                unassigned=name == "unassigned",
                assignee_id=viewer.agent.id if name == "mine" else f["agent"],
                channel=f["channel"],
                language=f["language"],
                tag=f["tag"],
                conversation_ids=ids,
                at_risk=f["risk"],
                teams=teams,
                seen_by=seen_by,
            )

        conversations = await repo.queue_page(where(tab), limit=200)
        counts = {name: await repo.queue_count(where(name)) for name in TABS}
        ids_shown = [c.id for c in conversations]
        last = await repo.last_messages(ids_shown)
        asked = await repo.last_messages(ids_shown, direction=Direction.IN)
        contacts = await repo.contacts([c.contact_id for c in conversations])
        dead = await repo.dead_counts(ids_shown)
        alerts = await repo.alert_levels(ids_shown)
        agents = await repo.agents()
    names = {a.id: a.name for a in agents}
    rows = [
        _queue_row(
            c,
            last=last.get(c.id),
            question=asked.get(c.id),
            contact=contacts.get(c.contact_id),
            assignee=names.get(c.assignee_id) if c.assignee_id else None,
            team=routing.team_name(c.team),
            undelivered=dead.get(c.id, 0),
            alert=alerts.get(c.id),
            now=now,
            viewer=viewer,
        )
        for c in conversations
    ]
    return {
        "tab": tab,
        "rows": rows,
        "counts": counts,
        "filters": f,
        "channels": CHANNELS,
        "agents": [a for a in agents if a.active],
        # The team tabs: the viewer's teams first.
        "teams": sorted(routing.teams.values(), key=lambda t: (t.key not in mine, t.name)),
        "my_teams": mine,
    }


def _queue_row(
    c: Conversation,
    *,
    last: Message | None,
    question: Message | None,
    contact: Contact | None,
    assignee: str | None,
    team: str | None,
    undelivered: int,
    alert: str | None,
    now: datetime,
    viewer: Viewer,
) -> dict[str, Any]:
    """One conversation's row in the queue: who, what they asked, how long they wait."""
    since = last.created_at if last else c.created_at
    customer = ""
    if contact is not None:
        customer = contact.display_name or contact.email or visitor_name(c.contact_id, viewer)
    return {
        "id": c.id,
        "channel": c.channel,
        "customer": customer,
        "first_line": (question.text.strip().splitlines() or [""])[0][:120] if question else "",
        "language": c.language,
        "since": since.isoformat(),
        "waiting": _ago(since, now, texts(viewer.lang)),
        "awaiting": last is not None and last.direction is Direction.IN,
        "assignee": assignee,
        "team": team,
        "undelivered": undelivered,
        "alert": alert,
        "waiting_on_customer": c.waiting_since is not None,
        **_sla(c, now),
    }


def visitor_name(contact_id: int, viewer: Viewer) -> str:
    """A customer who never said who they are, as peers name them ("Visitor 7f3a"): a
    short code of their own, never the ticket's number."""
    code = hashlib.blake2b(f"contact:{contact_id}".encode(), digest_size=2).hexdigest()
    return f"{texts(viewer.lang)['visitor']} {code}"


def _brought_to_people(detail: ConversationDetail) -> str | None:
    """The question that brought the customer to people: their last message up to the
    latest handoff that says something of the matter (not "转人工", "hello" or a
    thank-you); the handoff's own text where there is none."""
    if not detail.handoffs:
        return None
    handoff = detail.handoffs[-1]
    asked = [
        m.text.strip()
        for m in detail.messages
        if m.author_kind is AuthorKind.CUSTOMER
        and m.created_at <= handoff.created_at
        and not says_nothing(m.text.strip())
    ]
    if asked:
        return asked[-1]
    text = handoff.context.get("customer_text")
    return text if isinstance(text, str) else None


async def conversation_view(request: web.Request, viewer: Viewer) -> dict[str, Any]:
    conversation_id = conversation_id_of(request)
    try:
        detail = await request.app[DESK].detail(conversation_id, viewer.agent)
    except DeskError as exc:
        raise page_error(exc) from exc
    now = request.app[CLOCK]().astimezone(request.app[TIMEZONE])
    names = dict(detail.agent_names)
    async with request.app[DATABASE].read() as repo:
        agents = [a for a in await repo.agents() if a.active]
    names.update({a.id: a.name for a in agents})
    contact = detail.contact
    contact_name = (
        (contact.display_name or contact.email or "") if contact else ""
    ) or visitor_name(detail.conversation.contact_id, viewer)
    messages = _transcript(detail, names, contact_name, now, texts(viewer.lang))
    c = detail.conversation
    zone = now.tzinfo
    routing = request.app[ROUTING_SETTINGS].routing

    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%m-%d %H:%M") if moment else ""

    promises = [_promise(t, local) for t in detail.timers]
    later = _later(detail, request.app[AFTERCARE].promises.policy_of(c).calendar, local)
    seen = max((m.id for m in detail.messages if m.direction is not Direction.NOTE), default=0)
    return {
        "c": {
            "id": c.id,
            "status": c.status.value,
            "channel": c.channel,
            "language": c.language,
            "subject": c.subject,
            "assignee_id": c.assignee_id,
            "assignee": names.get(c.assignee_id) if c.assignee_id else None,
            "tags": list(c.tags),
            "priority": c.priority.label,
            "team": c.team,
            "team_name": routing.team_name(c.team),
            **_sla(c, now),
        },
        "conversation_id": c.id,
        "messages": messages,
        "seen": seen,
        "handoffs": [handoff(h) for h in detail.handoffs],
        "contact": contact,
        "contact_name": contact_name,
        "identities": detail.identities,
        "others": detail.other_conversations,
        "agents": agents,
        "teams": list(routing.teams.values()),
        "promises": promises,
        "later": later,
        "satisfaction": {
            "score": c.csat_score,
            "comment": c.csat_comment,
            "asked": c.survey_asked_at is not None,
        },
        "waiting_on_customer": c.waiting_since is not None,
    }


def _transcript(
    detail: ConversationDetail,
    names: dict[int, str],
    contact_name: str,
    now: datetime,
    t: dict[str, str],
) -> list[dict[str, Any]]:
    """The messages as the page shows them: who, when, what failed, and for an agent's
    answer, the Save-as-FAQ pair."""
    deliveries = {d.message_id: d for d in detail.deliveries}
    failed = {i: d for i, d in deliveries.items() if d.status == "dead"}
    messages: list[dict[str, Any]] = []
    previous_customer: Message | None = None
    question = _brought_to_people(detail)
    for m in detail.messages:
        shown = message(m, names, deliveries.get(m.id))
        # Agents in the inbox download files with their session, not an API token.
        for a in shown["attachments"]:
            if a["url"]:
                a["url"] = a["url"].replace("/api/agent/attachments/", "/inbox/attachments/", 1)
        who = {
            "customer": contact_name,
            "bot": t["who_bot"],
            "system": "RelayDesk",
            "agent": names.get(m.author_agent_id or 0, t["code_agent"]),
        }[m.author_kind.value]
        messages.append(
            {
                # What the API shows of a message, and what the page adds for people.
                **shown,
                "who": who,
                "time": m.created_at.astimezone(now.tzinfo).strftime("%m-%d %H:%M"),
                "subject": m.extras.get("subject") if m.direction is Direction.IN else None,
                "joined": m.extras.get("joined"),
                "claimed": m.extras.get("claimed_conversation"),
                "flag": m.extras.get("flag"),
                "failed": failed[m.id].last_error if m.id in failed else None,
                "delivery_id": failed[m.id].id if m.id in failed else None,
                # An agent's answer to a customer's question can teach the bot: the
                # question that brought the customer to people (not their last line),
                # and the answer without the greeting, both for the agent to edit.
                "faq_question": (question or previous_customer.text)[:300]
                if m.author_kind.value == "agent"
                and m.direction is Direction.OUT
                and previous_customer is not None
                else None,
                "faq_answer": without_greeting(m.text),
            }
        )
        if m.direction is Direction.IN:
            previous_customer = m
    return messages


def _promise(t: SlaTimer, local: Callable[[datetime | None], str]) -> dict[str, Any]:
    state = (
        t.outcome
        if t.outcome
        else "paused"
        if t.due_at is None
        else "breach"
        if t.breached_at
        else "warning"
        if t.warned_at
        else "running"
    )
    return {
        "metric": t.metric,
        "policy": t.policy,
        "state": state,
        "due": local(t.due_at),
        "late_minutes": round((t.late_seconds or 0) / 60),
    }


def _later(
    detail: ConversationDetail,
    calendar: BusinessCalendar,
    local: Callable[[datetime | None], str],
) -> list[dict[str, Any]]:
    """Follow-ups and reminders; one due when the desk is closed says when it goes out."""
    later = []
    for i in detail.scheduled:
        goes_out = None
        if i.kind == "follow_up" and i.status == "pending" and not calendar.is_open(i.due_at):
            goes_out = local(calendar.next_open(i.due_at))
        later.append(
            {
                "id": i.id,
                "kind": i.kind,
                "due": local(i.due_at),
                "status": i.status,
                "text": i.text or "",
                "goes_out": goes_out,
            }
        )
    return later
