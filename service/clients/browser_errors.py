"""Third-party exceptions of a browser call, translated to ours (``service.errors``), in one place.

``means_lost(exc)``: the exception says the browser, its driver or the connection is gone (the
session's end: 503, fatal). ``translate(exc, action, kind)``: any other exception as the error
frame it gives; a BiDi error from a live browser is never fatal (``bidi_refusal``). The caller
(``browser._boundary``) decides loss first, since it can also ask the browser whether it lives.
"""

from __future__ import annotations

import logging

import urllib3
from selenium.common import exceptions as sel

from service import errors
from service.clients.bidi import BidiError

logger = logging.getLogger(__name__)

_LOST_BIDI_ERRORS = ("no such frame", "invalid session id")

_BIDI_CODES: dict[str, type[errors.ServiceError]] = {
    "invalid argument": errors.BadRequest,
    "invalid selector": errors.BadRequest,
    "unable to set cookie": errors.BadRequest,
    "no such element": errors.NotFound,
    "no such node": errors.NotFound,
    "unsupported operation": errors.NotSupported,
    "unknown command": errors.NotSupported,
    "timeout": errors.GatewayTimeout,
}


def timed_out(exc: Exception) -> bool:
    """A bound passed: the browser, its driver or the Grid is slow, which says nothing of its life."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and isinstance(exc.reason, Exception):
        return timed_out(exc.reason)
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return False  # a refused connection, which urllib3 files under its timeouts
    return isinstance(exc, (TimeoutError, sel.TimeoutException, urllib3.exceptions.TimeoutError))


def means_lost(exc: Exception) -> bool:
    if timed_out(exc):
        return False
    if isinstance(exc, (sel.InvalidSessionIdException, sel.NoSuchWindowException, ConnectionError)):
        return True
    if isinstance(exc, BidiError):
        return exc.error in _LOST_BIDI_ERRORS
    module = type(exc).__module__
    return module.startswith(("urllib3", "websocket")) and "ReadTimeout" not in type(exc).__name__


def translate(exc: Exception, action: str, kind: str) -> errors.ServiceError:
    """``exc`` (not a loss) as our error."""
    if timed_out(exc):
        return errors.GatewayTimeout(f"{action} timed out: {first_line(exc)}")
    if isinstance(exc, sel.InvalidSelectorException):
        return errors.BadRequest(f"invalid selector: {first_line(exc)}")
    if isinstance(exc, sel.NoSuchElementException):
        return errors.NotFound(f"no element matches: {first_line(exc)}")
    if isinstance(
        exc,
        (
            sel.ElementNotInteractableException,
            sel.ElementClickInterceptedException,
            sel.InvalidElementStateException,
            sel.StaleElementReferenceException,
        ),
    ):
        return errors.Conflict(f"element not interactable: {first_line(exc)}")
    if isinstance(exc, sel.JavascriptException):
        return errors.ScriptError(f"script threw: {first_line(exc)}")
    if isinstance(exc, BidiError):  # the browser is alive and said no: never fatal
        return bidi_refusal(exc, action)
    if type(exc).__module__.startswith(("urllib3", "websocket")):  # a read timeout (the rest is a loss)
        return errors.GatewayTimeout(f"{action} timed out waiting for the browser")
    logger.error("%s %s failed unexpectedly", kind, action, exc_info=exc)
    return errors.InternalError(f"{action} failed: {first_line(exc)}")


def bidi_refusal(exc: BidiError, action: str) -> errors.ServiceError:
    """A BiDi error from a live browser that no call site expected: a non-fatal error frame (the
    browser, like an upstream server, refused: 502 unless the error names a better code)."""
    logger.warning("%s: the browser answered %s", action, exc.error)
    kind = _BIDI_CODES.get(exc.error, errors.BadAnswer)
    return kind(f"{action}: the browser answered {exc.error}: {exc.message[:200]}", fatal=False)


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "msg", None) or exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
