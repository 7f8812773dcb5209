"""The exceptions: one class per family of the service's error codes.

Every error frame (``{"type": "error" | "fatal", "message", "code"}``) and every refused
WebSocket upgrade (an HTTP error with the same JSON body) becomes an ``Error`` carrying the
service's ``code``; the family subclasses let callers catch what they can act on.
"""

from __future__ import annotations

from typing import Any


class Error(Exception):
    """An error the service reported, or a connection that ended without a reply.

    ``code`` is the service's code (400, 404, 504...), or the WebSocket close code for
    ``ConnectionClosed``. ``fatal`` is true when the session is over (a fatal frame, a refused
    upgrade, a closed socket). ``id`` is the correlation id of the action it answers, if any.
    """

    def __init__(self, message: str, code: int | None = None, *, fatal: bool = False, id: Any = None) -> None:
        super().__init__(f"{code}: {message}" if code is not None else message)
        self.message = message
        self.code = code
        self.fatal = fatal
        self.id = id


class NotFound(Error):
    """404: no element matches the selector."""


class Timeout(Error):
    """504 (navigation, script or element wait timed out) or 408 (no open frame in time)."""


class PolicyError(Error):
    """401 / 403: not authenticated, not allowed (tenant, proxy, a URL the network policy blocks)."""


class CapacityError(Error):
    """429 (tenant quota, too many pending actions) or 503 (no browser, shutting down, browser lost)."""


class ConnectionClosed(Error):
    """The socket closed while a reply was awaited; ``code`` is the WebSocket close code."""


_FAMILIES: dict[int, type[Error]] = {
    404: NotFound,
    408: Timeout,
    504: Timeout,
    401: PolicyError,
    403: PolicyError,
    429: CapacityError,
    503: CapacityError,
}


def error_for(code: int | None, message: str, *, fatal: bool = False, id: Any = None) -> Error:
    """The exception for a service error code (its family's class, else ``Error``)."""
    cls = _FAMILIES.get(code, Error) if isinstance(code, int) else Error
    return cls(message, code, fatal=fatal, id=id)
