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
    deadline = Deadline(action.args.get("timeout", open_frame.timeout))  # the action's, from its start
    value = _run(client, action, open_frame, chain, rng, interrupt)
    if action.name in action_frames.NO_DOWNLOADS:
        return value
    found = client.downloads(deadline)
    return replies.WithDownloads(value, found) if found else value


def _run(
    client: FetchClient,
    action: protocol.Action,
    open_frame: protocol.OpenFrame,
    chain: Chain,
    rng: random.Random,
    interrupt: threading.Event,
) -> Any:
    args = action.args
    timeout = args.get("timeout", open_frame.timeout)  # the action's own, else the session's
    if action.name == "goto":
        request = goto_request(args, chain, rng)
        attempt = lambda: client.goto(request, Deadline(timeout))  # noqa: E731
        # middleware: status retries (sharing max_retries), the standard client's blocks
        return chain.goto(request.url, attempt, open_frame.max_retries, timeout, interrupt)
    if action.name == "content":
        return client.content(Deadline(timeout))
    if action.name == "click":
        return client.click(args["selector"], Deadline(timeout))
    if action.name == "fill":
        return client.fill(args["selector"], args["value"], Deadline(timeout))
    if action.name == "evaluate":
        return client.evaluate(args["script"], Deadline(timeout))
    if action.name == "screenshot":
        return client.screenshot(Deadline(timeout), args)
    if action.name == "pdf":
        return client.pdf(args, Deadline(timeout))
    if action.name == "wait_for":
        started = time.monotonic()
        client.wait_for(args, Deadline(timeout))
        return {"elapsed_ms": int((time.monotonic() - started) * 1000)}
    if action.name == "press":
        return client.press(args["key_values"], args.get("selector"), Deadline(timeout))
    if action.name == "hover":
        return client.hover(args["selector"], Deadline(timeout))
    if action.name == "select":
        return client.select(args["selector"], args["values"], Deadline(timeout))
    if action.name == "scroll":
        return client.scroll(args, Deadline(timeout))
    if action.name == "upload":
        return client.upload(args["selector"], args["files"], Deadline(timeout))
    if action.name == "cookies":
        return {"cookies": [replies.cookie_frame(cookie) for cookie in client.cookies(Deadline(timeout))]}
    if action.name == "set_cookies":
        return client.set_cookies(args["cookies"], Deadline(timeout))
    if action.name == "clear_cookies":
        return client.clear_cookies(Deadline(timeout))
    if action.name == "storage_state":
        cookies, origins = client.storage_state(Deadline(timeout))
        state = {
            "cookies": [replies.cookie_frame(cookie) for cookie in cookies],
            "origins": [{"origin": origin, "local_storage": [list(pair) for pair in pairs]} for origin, pairs in origins],
        }
        return {"state": state}
    if action.name == "har":
        return {"har": client.har(Deadline(timeout))}
    if action.name == "download":
        return client.download(args["download_id"], Deadline(timeout))
    if action.name == "close":
        return None
    raise Conflict(f"unhandled action {action.name}")  # unreachable: the schema lists actions


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
