"""An action frame carried out on a session's fetch client: the one place that maps the
protocol's actions onto ``FetchClient`` calls, each under the session's timeout.

A goto is built here from the frame's fields (the user agent resolved, then the middleware's
headers and cookies applied in order) and run through the middleware chain, which retries listed
statuses within ``max_retries`` and refuses the standard client's blocked URLs. Called by the
session's own thread only.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from service import action_frames, protocol, replies, user_agents
from service.clients.base import FetchClient, GotoRequest
from service.deadline import Deadline
from service.errors import Conflict, NotSupported
from service.middleware import Chain


def perform(
    client: FetchClient,
    action: protocol.Action,
    open_frame: protocol.OpenFrame,
    chain: Chain,
    rng: random.Random,
    interrupt: threading.Event,
) -> Any:
    """The action's result (what its reply frame carries); errors are ``ServiceError``s. With
    the downloads finished since the last reply listed them (``replies.WithDownloads``), if any:
    those still being written are waited for, never past the action's timeout counted from its
    start (``client.downloads``; a goto's retries may have spent it all: then no wait)."""
    args = action.args
    timeout = args.get("timeout", open_frame.timeout)  # the action's own, else the session's
    deadline = Deadline(timeout)  # from the action's start
    if action.name == "goto":
        request = goto_request(args, chain, rng)
        attempt = lambda: client.goto(request, Deadline(timeout))  # noqa: E731
        # middleware: status retries (sharing max_retries), the standard client's blocks
        value = chain.goto(request.url, attempt, open_frame.max_retries, timeout, interrupt)
    else:
        call = CALLS.get(action.name)
        if call is None:
            raise Conflict(f"unhandled action {action.name}")  # unreachable: a test holds CALLS to the schemas
        value = call(client, args, deadline)
    if action.name in action_frames.NO_DOWNLOADS:
        return value
    found = client.downloads(deadline)
    return replies.WithDownloads(value, found) if found else value


def _wait_for(client: FetchClient, args: dict[str, Any], deadline: Deadline) -> dict[str, int]:
    started = time.monotonic()
    client.wait_for(args, deadline)
    return {"elapsed_ms": int((time.monotonic() - started) * 1000)}


def _storage_state(client: FetchClient, args: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
    cookies, origins = client.storage_state(deadline)
    state = {
        "cookies": [replies.cookie_frame(cookie) for cookie in cookies],
        "origins": [{"origin": origin, "local_storage": [list(pair) for pair in pairs]} for origin, pairs in origins],
    }
    return {"state": state}


Call = Callable[[FetchClient, dict[str, Any], Deadline], Any]

# Every action but goto (the middleware's loop, above): the client's method it calls, with the
# frame's parsed fields (``action_frames.parse_args``), under the action's deadline. What it
# returns is what ``replies.reply`` builds the reply from. A client that cannot do an action
# answers 501 from ``FetchClient``'s default method.
CALLS: dict[str, Call] = {
    "click": lambda client, args, deadline: client.click(args["selector"], deadline),
    "fill": lambda client, args, deadline: client.fill(args["selector"], args["value"], deadline),
    "content": lambda client, args, deadline: client.content(deadline),
    "evaluate": lambda client, args, deadline: client.evaluate(args["script"], deadline),
    "screenshot": lambda client, args, deadline: client.screenshot(deadline, args),
    "pdf": lambda client, args, deadline: client.pdf(args, deadline),
    "wait_for": _wait_for,
    "press": lambda client, args, deadline: client.press(args["key_values"], args.get("selector"), deadline),
    "hover": lambda client, args, deadline: client.hover(args["selector"], deadline),
    "select": lambda client, args, deadline: client.select(args["selector"], args["values"], deadline),
    "scroll": lambda client, args, deadline: client.scroll(args, deadline),
    "upload": lambda client, args, deadline: client.upload(args["selector"], args["files"], deadline),
    "cookies": lambda client, args, deadline: {"cookies": [replies.cookie_frame(c) for c in client.cookies(deadline)]},
    "set_cookies": lambda client, args, deadline: client.set_cookies(args["cookies"], deadline),
    "clear_cookies": lambda client, args, deadline: client.clear_cookies(deadline),
    "storage_state": _storage_state,
    "har": lambda client, args, deadline: {"har": client.har(deadline)},
    "download": lambda client, args, deadline: client.download(args["download_id"], deadline),
    "close": lambda client, args, deadline: None,  # the session's loop closes the client itself
}


def goto_request(args: dict[str, Any], chain: Chain, rng: random.Random) -> GotoRequest:
    if args["method"] == "CONNECT":
        raise NotSupported("CONNECT opens a proxy tunnel, not a page: no client can goto with it")
    request = GotoRequest(
        url=args["url"],
        method=args["method"],
        referrer=args["referrer"],
        user_agent=user_agents.resolve(args["user_agent"], rng),
        headers=args["headers"],
        cookies=args["cookies"],
        body=args["body"],
    )
    return chain.apply(request)  # middleware: headers and cookies, in order
