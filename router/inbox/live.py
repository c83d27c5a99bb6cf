"""The inbox's websocket: store events and presence out to agents; viewing and typing in."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web

from router.delivery.events import (
    AgentTyping,
    Event,
    FrameStored,
    KnowledgeReloaded,
    PresenceChanged,
)
from router.errors import DeskError
from router.inbox import presenters
from router.inbox.keys import LIVE_SOCKETS, PRESENCE
from router.inbox.session import (
    current_viewer,
    require_same_origin,
)
from router.keys import DESK, EVENT_BUS
from router.storage import Agent

__all__ = ["live"]

# The customer hears "a person is typing" at most this often while the owner types
# (the web chat shows it for a few seconds after each).
CUSTOMER_TYPING_EVERY = 4.0


def _frame(event: Event) -> dict[str, Any] | None:
    """What agents' screens hear of: everything but typing (for customers), knowledge
    reloads (for operators) and presence changes (``Presence`` sends the snapshots)."""
    if isinstance(event, AgentTyping | KnowledgeReloaded | FrameStored | PresenceChanged):
        return None
    return presenters.event_frame(event)


async def _send_out(
    app: web.Application,
    ws: web.WebSocketResponse,
    agent: Agent,
    outgoing: asyncio.Queue[dict[str, Any]],
) -> None:
    """Store events the agent may hear of, and presence frames, out to their screen; the
    socket closing under a send (the agent left, the service stops) ends it."""
    desk = app[DESK]
    with contextlib.suppress(ConnectionError):
        async with app[EVENT_BUS].subscribe() as events:
            getter = asyncio.ensure_future(events.get())
            waiter = asyncio.ensure_future(outgoing.get())
            try:
                while True:
                    done, _ = await asyncio.wait(
                        {getter, waiter}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter in done:
                        event = getter.result()
                        frame = _frame(event)
                        getter = asyncio.ensure_future(events.get())
                        if frame is not None and await desk.hears(agent, event):
                            await ws.send_json(frame)
                    if waiter in done:
                        await ws.send_json(waiter.result())
                        waiter = asyncio.ensure_future(outgoing.get())
            finally:
                getter.cancel()
                waiter.cancel()


async def live(request: web.Request) -> web.WebSocketResponse:
    """The inbox's websocket: store events and presence out; viewing/typing in."""
    # A page on another origin (even a same-site one) must not read an agent's events.
    require_same_origin(request)
    viewer = await current_viewer(request)
    if viewer is None:
        raise web.HTTPUnauthorized()
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    request.app[LIVE_SOCKETS].add(ws)
    outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)

    def send(frame: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            outgoing.put_nowait(frame)

    presence = request.app[PRESENCE]
    handle = await presence.connect(viewer.agent.id, viewer.agent.name, send)

    task = asyncio.ensure_future(_send_out(request.app, ws, viewer.agent, outgoing))
    loop = asyncio.get_running_loop()
    viewing: int | None = None
    told_customer = -CUSTOMER_TYPING_EVERY
    try:
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(message.data)
            except (ValueError, RecursionError):
                continue
            if not isinstance(frame, dict):
                continue
            if frame.get("type") == "viewing":
                conversation = frame.get("conversation_id")
                viewing = conversation if isinstance(conversation, int) else None
                await presence.view(handle, viewing)
                if isinstance(conversation, int):
                    send(await presence.snapshot(conversation))
            elif frame.get("type") == "typing":
                await presence.typing(handle)
                # The customer sees it too, when this agent owns the conversation.
                if viewing is not None and loop.time() - told_customer >= CUSTOMER_TYPING_EVERY:
                    try:
                        await request.app[DESK].typing(viewing, viewer.agent)
                    except DeskError:
                        pass  # not theirs (or resolved): only the owner's typing shows
                    else:
                        told_customer = loop.time()
    finally:
        await presence.disconnect(handle)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await task
    return ws
