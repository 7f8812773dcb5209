"""Questions put to the page over BiDi for the actions: run one of our helpers (``page_scripts``)
or the user's script (``call``), find an element and say whether it can be acted on (``find``),
get a field ready for typing (``fill``) and type into it (``type_text``), and after a click, wait
for the navigation it started, if any (``wait_for_navigation``), and leave a document before a goto
to its own URL with another fragment (``leave_document``).

No frame can attach a host file to a page: ``find`` and ``fill`` run in our sandbox, so the page
cannot lie about what an element is, and refuse a file input (400: the ``upload`` action sends
the client's bytes); the value is typed with key actions (``input.performActions``), never with
WebDriver's Element Send Keys, which takes a file input's value as paths of host files to attach.
Key events give no element a file, even one the page turns into a file input as the keys arrive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service import errors, reply_bound
from service.clients.bidi import BrowserUnresponsive
from service.clients.bidi_values import from_remote, local_value
from service.clients.page_scripts import EVALUATE, FILL, FIND, SANDBOX, SYNTAX
from service.deadline import Deadline
from service.model import RawJson

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
    except BrowserUnresponsive:
        raise
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
    """Wait in our sandbox (up to ``wait`` s, within the deadline) for ``selector``; its state
    (``el``: the element's shared id, also its WebDriver reference), or the error saying why
    ``action`` cannot be done on it."""
    return _judged(_locate(bidi, context, FIND, [selector], wait, deadline), selector, action)


def fill(bidi: Bidi, context: str, selector: str, value: str, wait: float, deadline: Deadline) -> bool:
    """Wait for ``selector`` in our sandbox; pick a select's option (False: done), or clear and
    focus the field (True: type ``value`` now). Raises the error saying why it cannot be filled."""
    found = _judged(_locate(bidi, context, FILL, [selector, value], wait, deadline), selector, "fill")
    state, tag = found.get("state"), found.get("tag")
    if state == "selected":
        return False
    if state == "no option":
        raise errors.NotFound(f"select {selector!r} has no option with value {value!r}")
    if state == "unfocused":
        raise errors.Conflict(f"cannot fill {selector!r}: the <{tag}> does not take focus")
    if state != "focused":
        raise errors.Conflict(f"{selector!r} matches a <{tag}>, which cannot be filled")
    return True


ENTER = "\ue007"  # WebDriver's Enter key


def key_actions(value: str) -> list[dict]:
    """``value`` as key presses, one code point each (a line break, ``\\n``, ``\\r\\n`` or ``\\r``, is
    Enter, as Element Send Keys typed it)."""
    actions = []
    for char in value.replace("\r\n", "\n").replace("\r", "\n"):
        key = ENTER if char == "\n" else char
        actions += ({"type": "keyDown", "value": key}, {"type": "keyUp", "value": key})
    return actions


def type_text(bidi: Bidi, context: str, value: str, deadline: Deadline) -> None:
    """Type ``value`` into whatever has focus, as key presses: one ``input.performActions`` for
    the whole value, then ``input.releaseActions``, in one round trip."""
    perform = {"context": context, "actions": [{"type": "key", "id": "inndx-keys", "actions": key_actions(value)}]}
    for reply in bidi.pipeline([("input.performActions", perform), ("input.releaseActions", {"context": context})], deadline):
        if isinstance(reply, Exception):
            raise reply


def _locate(bidi: Bidi, context: str, helper: str, args: list, wait: float, deadline: Deadline) -> dict:
    wait_ms = int(1000 * min(wait, max(0.0, deadline.remaining() - 0.2)))
    args = [args[0], wait_ms, *args[1:]]
    return call(bidi, context, helper, args, deadline, activation=False, sandbox=SANDBOX) or {}


def _judged(found: dict, selector: str, action: str) -> dict:
    state = found.get("state")
    if state == "file":
        raise errors.BadRequest(
            f"cannot {action} {selector!r}: it is a file input, and no action gives a page a file of the"
            " service's host; send the file's bytes with the upload action"
        )
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


judged = _judged  # for the other actions' helpers (``browser_input``)


def wait_for_navigation(bidi: Bidi, context: str, settle: float, deadline: Deadline) -> None:
    """After a click (events being recorded): a navigation starting within ``settle`` seconds is
    waited for until it loads, fails, or turns out to be a download (no load ever comes)."""
    window = Deadline(min(settle, deadline.remaining()))
    started: dict[str, str] = {}

    def scan() -> None:
        for method, params in list(bidi.events):
            if params.get("context") != context or not params.get("navigation"):
                continue
            if method == "network.beforeRequestSent":
                started.setdefault(params["navigation"], "started")
            elif method in ("browsingContext.load", "browsingContext.navigationFailed", "browsingContext.downloadWillBegin"):
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


def evaluate(bidi: Bidi, context: str, script: str, bound: int, deadline: Deadline) -> RawJson:
    """The evaluate action: the script compiled alone first (422 when it is no function body),
    then run in the page, its result checked there against ``bound`` and for being JSON text."""
    syntax = call(bidi, context, SYNTAX, [script], deadline, activation=False, sandbox=SANDBOX)
    if isinstance(syntax, str) and syntax.startswith("S"):
        raise errors.ScriptError(f"the script is not a function body: {syntax[1:2000]}")
    if syntax != "":
        raise errors.ScriptError(f"the script's syntax could not be checked: {str(syntax)[1:2000]}")
    answer = call(bidi, context, EVALUATE % script, [bound], deadline, user_error=True)
    try:
        text = reply_bound.unwrap(answer, "evaluate result", bound, "J")
    except ValueError as exc:  # the page can break our wrapper (it runs in the page's world)
        raise errors.ScriptError(f"the script's result could not be read: {exc}") from exc
    return RawJson(text)  # checked to be JSON text in the browser: passed on as it is


def leave_document(bidi: Bidi, context: str, url: str, deadline: Deadline) -> None:
    """Before a goto: a URL differing from the current one only by its fragment would be a
    same-document navigation (no request, nothing to report): load about:blank first, so it is fetched."""
    tree = bidi.command("browsingContext.getTree", {"root": context, "maxDepth": 0}, deadline)
    current = (tree.get("contexts") or [{}])[0].get("url", "")
    if current.split("#", 1)[0] == url.split("#", 1)[0]:
        bidi.command("browsingContext.navigate", {"context": context, "url": "about:blank", "wait": "complete"}, deadline)
