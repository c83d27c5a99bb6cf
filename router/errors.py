"""What can be refused, and how HTTP says so, in one place: the desk's refusals (each
with a ``code`` API clients can rely on), the one mapping from a refusal to an HTTP
status (used by the API and the inbox pages), the API's JSON errors and their middleware.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

__all__ = [
    "AlreadyClaimed",
    "AlreadyResolved",
    "ApiError",
    "CannedNotFound",
    "ContactNotFound",
    "ConversationNotFound",
    "DeskError",
    "MessageNotFound",
    "NotAllowed",
    "NotYours",
    "StaleView",
    "TeamNotFound",
    "desk_status",
    "error_middleware",
    "page_error",
]

logger = logging.getLogger(__name__)


class DeskError(Exception):
    """An agent action that cannot be done; ``code`` is stable for API clients."""

    code = "conflict"


class ConversationNotFound(DeskError):
    code = "not_found"


class MessageNotFound(DeskError):
    code = "message_not_found"


class ContactNotFound(DeskError):
    code = "contact_not_found"


class CannedNotFound(DeskError):
    code = "canned_not_found"


class TeamNotFound(DeskError):
    code = "team_not_found"


class NotYours(DeskError):
    code = "not_assigned_to_you"


class AlreadyClaimed(DeskError):
    code = "already_claimed"


class AlreadyResolved(DeskError):
    code = "already_resolved"


class StaleView(DeskError):
    """Something happened since the agent opened the conversation: look before answering."""

    code = "stale"


class NotAllowed(DeskError):
    code = "forbidden"


# What went wrong → what HTTP says: missing is 404, not allowed 403, the rest is a
# conflict with the conversation's state (409).
_DESK_STATUS: Mapping[type[DeskError], int] = {
    ConversationNotFound: 404,
    MessageNotFound: 404,
    ContactNotFound: 404,
    TeamNotFound: 404,
    CannedNotFound: 404,
    NotAllowed: 403,
    NotYours: 409,
    AlreadyClaimed: 409,
    AlreadyResolved: 409,
    StaleView: 409,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
}


def desk_status(error: DeskError) -> int:
    return _DESK_STATUS.get(type(error), 409)


def page_error(error: DeskError) -> web.HTTPException:
    """A desk refusal as a plain-text HTTP error for the inbox's pages."""
    status = desk_status(error)
    cls: type[web.HTTPException] = {
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
    }.get(status, web.HTTPConflict)
    return cls(text=str(error))


class ApiError(web.HTTPException):
    """An HTTP error with our JSON body."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status_code = status
        self.message = message
        super().__init__(
            headers=headers,
            text=json.dumps({"error": {"code": code, "message": message}}),
            content_type="application/json",
        )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """API paths answer every error as JSON, and never with a stack trace."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError:
        raise
    except DeskError as exc:
        raise ApiError(desk_status(exc), exc.code, str(exc)) from exc
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        # A 405 says which methods would do (RFC 9110 §15.5.6).
        keep = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        raise ApiError(exc.status, code, exc.reason, headers=keep) from exc
    except Exception as exc:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        raise ApiError(500, "internal_error", "something went wrong on our side") from exc
