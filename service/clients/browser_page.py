"""Questions put to the page over BiDi for the actions: run one of our helpers (``page_scripts``)
or the user's script (``call``), find an element and say whether it can be acted on (``find``),
and after a click, wait for the navigation it started, if any (``wait_for_navigation``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service import errors
from service.clients.bidi import from_remote, local_value
from service.clients.page_scripts import FIND
from service.deadline import Deadline

if TYPE_CHECKING:
    from service.clients.bidi import Bidi


def call(
    bidi: Bidi,
    context: str,
    function: str,
    args: list,
    deadline: Deadline,
    user_error: bool = False,
    activation: bool = True,
    sandbox: str | None = None,
) -> Any:
    """``script.callFunction`` in the page; returns the primitive result. An exception thrown
    by the script is a ScriptError (user code) or an InternalError (our helpers). Reading the
    DOM needs no user gesture (``activation=False``: the browser then simulates none). With
    ``sandbox``, the function runs in that BiDi sandbox realm: the same DOM, the browser's own
    globals and prototypes, none of the page's."""
    target: dict[str, str] = {"context": context}
    if sandbox is not None:
        target["sandbox"] = sandbox
    params = {
        "functionDeclaration": function,
        "arguments": [local_value(a) for a in args],
        "target": target,
        "awaitPromise": True,
        "userActivation": activation,
        "resultOwnership": "none",
    }
    try:
        result = bidi.command("script.callFunction", params, deadline)
    except TimeoutError as exc:
        raise errors.GatewayTimeout(f"script did not finish within {deadline.seconds:g}s") from exc
    if result.get("type") == "exception":
        details = result.get("exceptionDetails") or {}
        message = details.get("text") or "script threw"
        if user_error:
            raise errors.ScriptError(f"script threw: {message}")
        raise errors.InternalError(f"page helper failed: {message}")
    return from_remote(result.get("result") or {})


def find(bidi: Bidi, context: str, selector: str, wait: float, deadline: Deadline, action: str) -> dict:
    """Wait in the page (up to ``wait`` s, within the deadline) for ``selector``; its state, or
    the error saying why ``action`` cannot be done on it."""
    wait_ms = int(1000 * min(wait, max(0.0, deadline.remaining() - 0.2)))
    found = call(bidi, context, FIND, [selector, wait_ms], deadline) or {}
    state = found.get("state")
    if state == "invalid":
        raise errors.BadRequest(f"invalid CSS selector {selector!r}: {found.get('why')}")
    if state == "missing":
        raise errors.NotFound(f"no element matches {selector!r}")
    if state == "disabled":
        raise errors.Conflict(f"cannot {action} {selector!r}: the <{found.get('tag')}> is disabled")
    if state == "hidden":
        raise errors.Conflict(f"cannot {action} {selector!r}: the <{found.get('tag')}> is not visible")
    if state == "covered":
        raise errors.Conflict(f"cannot {action} {selector!r}: it is covered by <{found.get('by')}>")
    return found


def wait_for_navigation(bidi: Bidi, context: str, settle: float, deadline: Deadline) -> None:
    """After a click (events being recorded): a navigation starting within ``settle`` seconds is
    waited for until it loads or fails."""
    window = Deadline(min(settle, deadline.remaining()))
    started: dict[str, str] = {}

    def scan() -> None:
        for method, params in list(bidi.events):
            if params.get("context") != context or not params.get("navigation"):
                continue
            if method == "network.beforeRequestSent":
                started.setdefault(params["navigation"], "started")
            elif method in ("browsingContext.load", "browsingContext.navigationFailed"):
                started[params["navigation"]] = "done"
        bidi.events.clear()

    with bidi.cond:
        bidi.wait(lambda: (scan(), bool(started))[1], window)
        if not started:
            return
        if not bidi.wait(lambda: (scan(), all(v == "done" for v in started.values()))[1], deadline):
            raise errors.GatewayTimeout(
                f"the navigation started by the click did not finish within {deadline.seconds:g}s"
            )
