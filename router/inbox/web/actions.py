"""What an agent does on a conversation's page: claim, reply, note, resolve, reopen,
assign, tags and priority, later, split, merge, resend; each re-renders the page."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from router.conversations import Priority
from router.delivery.files import Upload, UploadRefused, read_form_with_files
from router.desk.actions import HumanDesk
from router.errors import DeskError, NotYours, StaleView, page_error
from router.inbox.i18n import texts
from router.inbox.session import (
    MAX_TEXT,
    Viewer,
    back_to,
    check_csrf,
    conversation_id_of,
    form_text,
    posted_form,
    posting_viewer,
    render,
)
from router.inbox.views import conversation_view
from router.inbox.web.pages import composer
from router.keys import (
    CANNED,
    CLOCK,
    DATABASE,
    DESK,
    FILES,
)
from router.storage import Agent

__all__ = [
    "assign",
    "cancel_scheduled",
    "claim",
    "merge",
    "note",
    "reopen",
    "reply",
    "rerender",
    "resend",
    "resolve",
    "schedule",
    "split",
    "update",
]

logger = logging.getLogger(__name__)


async def rerender(
    request: web.Request, viewer: Viewer, status: int, **context: Any
) -> web.Response:
    data = await conversation_view(request, viewer)
    return render(
        request,
        "conversation.html",
        viewer,
        status=status,
        **data,
        **composer(request),
        **context,
    )


async def _act(
    request: web.Request, action: Callable[[HumanDesk, int, Agent], Awaitable[object]]
) -> web.Response:
    """Do ``action`` and go back to the conversation, or show it with why not."""
    viewer, _ = await posted_form(request)
    conversation_id = conversation_id_of(request)
    try:
        await action(request.app[DESK], conversation_id, viewer.agent)
    except DeskError as exc:
        return await rerender(request, viewer, 409, notice=str(exc), notice_kind="error")
    raise back_to(conversation_id)


async def claim(request: web.Request) -> web.Response:
    return await _act(request, lambda desk, c, agent: desk.claim(c, agent))


async def reply(request: web.Request) -> web.Response:
    """The reply box: text, and files when the agent attached any (multipart)."""
    files = request.app[FILES]
    uploads: list[Upload] = []
    if request.content_type.startswith("multipart/"):
        viewer = await posting_viewer(request)
        try:
            form, uploads = await read_form_with_files(
                request, max_bytes=files.max_bytes, max_files=files.max_files
            )
        except UploadRefused as exc:
            return await rerender(
                request, viewer, exc.status, notice=str(exc), notice_kind="error", draft=""
            )
        check_csrf(request, viewer, form)
        text = form.get("text", "").strip()[:MAX_TEXT]
        if not text and not uploads:
            raise web.HTTPBadRequest(text="text is empty")
    else:
        viewer, form = await posted_form(request)
        text = form_text(form)
    conversation_id = conversation_id_of(request)
    seen = form.get("seen", "")
    macro_id = form.get("macro", "")
    t = texts(viewer.lang)
    kept = await files.keep(conversation_id, uploads)
    try:
        macro = (
            await request.app[CANNED].get(viewer.agent, int(macro_id))
            if macro_id.isascii() and macro_id.isdigit() and len(macro_id) <= 18
            else None
        )
        await request.app[DESK].reply(
            conversation_id,
            viewer.agent,
            text,
            seen_message_id=int(seen) if seen.isdigit() else None,
            # Ticked: waiting on the customer; unticked: the reply's own question mark says.
            wait_for_customer=True if form.get("wait") == "1" else None,
            macro=macro,
            attachments=kept,
        )
    except DeskError as exc:
        files.forget(kept)
        notice, kind = (
            (t["stale"], "stale")
            if isinstance(exc, StaleView)
            else (t["not_yours"] if isinstance(exc, NotYours) else str(exc), "error")
        )
        return await rerender(request, viewer, 409, notice=notice, notice_kind=kind, draft=text)
    except BaseException:
        files.forget(kept)
        raise
    raise back_to(conversation_id)


async def note(request: web.Request) -> web.Response:
    viewer, form = await posted_form(request)
    conversation_id = conversation_id_of(request)
    try:
        await request.app[DESK].note(conversation_id, viewer.agent, form_text(form))
    except DeskError as exc:
        raise page_error(exc) from exc
    raise back_to(conversation_id)


async def resolve(request: web.Request) -> web.Response:
    return await _act(request, lambda desk, c, agent: desk.resolve(c, agent))


async def reopen(request: web.Request) -> web.Response:
    return await _act(request, lambda desk, c, agent: desk.reopen(c, agent, assignee=agent))


async def assign(request: web.Request) -> web.Response:
    viewer, form = await posted_form(request)
    conversation_id = conversation_id_of(request)
    target: Agent | None = None
    if form.get("agent_id", "").isdigit():
        async with request.app[DATABASE].read() as repo:
            target = await repo.agent(int(form["agent_id"]))
        if target is None:
            raise web.HTTPBadRequest(text="no such agent")
    desk = request.app[DESK]
    try:
        if "team" in form and form["team"] != form.get("current_team", ""):
            await desk.transfer(conversation_id, viewer.agent, form["team"] or None, target)
        else:
            await desk.assign(conversation_id, viewer.agent, target)
    except DeskError as exc:
        return await rerender(request, viewer, 409, notice=str(exc), notice_kind="error")
    raise back_to(conversation_id)


async def update(request: web.Request) -> web.Response:
    viewer, form = await posted_form(request)
    conversation_id = conversation_id_of(request)
    priority = form.get("priority")
    try:
        await request.app[DESK].update(
            conversation_id,
            viewer.agent,
            tags=form["tags"].replace("，", ",").split(",") if "tags" in form else None,
            priority=Priority.parse(priority)
            if priority in ("low", "normal", "high", "urgent")
            else None,
        )
    except DeskError as exc:
        raise page_error(exc) from exc
    raise back_to(conversation_id)


_LATER_MINUTES = {"30", "60", "120", "1440", "4320"}


async def schedule(request: web.Request) -> web.Response:
    """A reminder for the agent, or a follow-up to the customer, in a while."""
    viewer, form = await posted_form(request)
    conversation_id = conversation_id_of(request)
    kind, minutes = form.get("kind", ""), form.get("minutes", "")
    if kind not in ("reminder", "follow_up") or minutes not in _LATER_MINUTES:
        raise web.HTTPBadRequest(text="choose what and when")
    text = form.get("text", "").strip()[:2000] or None
    try:
        await request.app[DESK].schedule(
            conversation_id,
            viewer.agent,
            kind=kind,
            due_at=request.app[CLOCK]() + timedelta(minutes=int(minutes)),
            text=text,
        )
    except DeskError as exc:
        raise page_error(exc) from exc
    raise back_to(conversation_id)


async def cancel_scheduled(request: web.Request) -> web.Response:
    async def act(desk: HumanDesk, conversation: int, item: int, agent: Agent) -> int:
        await desk.cancel_scheduled(conversation, item, agent)
        return conversation

    return await _on_item(request, "item_id", act)


async def _on_item(
    request: web.Request,
    field: str,
    action: Callable[[HumanDesk, int, int, Agent], Awaitable[int]],
) -> web.Response:
    """Do ``action`` on the item named by the form's ``field`` (a message, a delivery),
    then show the conversation it returns."""
    viewer, form = await posted_form(request)
    conversation_id = conversation_id_of(request)
    item = form.get(field, "")
    if not item.isdigit():
        raise web.HTTPBadRequest(text=f"{field} is missing")
    try:
        shown = await action(request.app[DESK], conversation_id, int(item), viewer.agent)
    except DeskError as exc:
        raise page_error(exc) from exc
    raise back_to(shown)


async def split(request: web.Request) -> web.Response:
    """A customer message threaded into the wrong conversation gets its own."""

    async def act(desk: HumanDesk, conversation: int, message: int, agent: Agent) -> int:
        return (await desk.split(conversation, message, agent)).id

    return await _on_item(request, "message_id", act)


async def merge(request: web.Request) -> web.Response:
    """A mail that named a conversation its sender is not on joins it: an agent's call."""

    async def act(desk: HumanDesk, conversation: int, message: int, agent: Agent) -> int:
        return (await desk.merge(conversation, message, agent)).id

    return await _on_item(request, "message_id", act)


async def resend(request: web.Request) -> web.Response:
    """A dead reply goes out again."""

    async def act(desk: HumanDesk, conversation: int, delivery: int, agent: Agent) -> int:
        await desk.resend(conversation, delivery, agent)
        return conversation

    return await _on_item(request, "delivery_id", act)
