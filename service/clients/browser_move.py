"""A session's move to a fresh browser when its browser passes a memory bound: the last line.

Growth that nothing else bounds (a page that leaks for hours, a browser's own) must not end as an
out-of-memory kill of the host. ``MemoryWatch.over(launched)``, before an action, sums the
proportional set size of every process of a local session's browser (the driver's tree:
``tree_memory``) at most every ``INNDX_BROWSER_MEMORY_CHECK`` (10 s); past
``INNDX_BROWSER_MEMORY_MIB`` (0: never), ``move`` starts a fresh browser and carries to it what
the session set:

- its cookies (every one the browser holds), and the open page's localStorage plus whatever a
  ``storage_state`` given at the open still had to write (the preload script of
  ``browser_state.Restore``, origin by origin);
- its viewport, and a goto's ``user_agent`` (applied again by the next goto, as after a fresh tab);
- its current URL: before a goto nothing is loaded (the goto replaces the page anyway, so the move
  is invisible); before any other action the page is loaded again there (with the user agent it
  had), which keeps no in-page state (a form half filled, a script's variables).

Then the old browser ends, every process of it (the HAR bodies its tab held were read before).
What does not move: downloads not yet fetched
(they lived in the old browser's dir), sessionStorage and the tab's history (a goto never
exposed them), and a Grid browser (its processes are out of sight: it is never measured). The
metric ``inndx_fresh_browsers`` counts the moves. Before the new browser is ready the session
holds two: the instance's browser bound may be passed by one for that moment.
"""

from __future__ import annotations

import logging
import time

import psutil

from service.clients import browser_state
from service.clients.browser_launch import Launched, prepare
from service.clients.browser_options import BrowserSettings
from service.deadline import Deadline
from service.model import ClientOptions, StorageState

logger = logging.getLogger(__name__)

MOVE_BOUND = 30.0  # seconds a move may take, at most (a fresh browser's start within it)
HAR_BOUND = 2.0  # seconds to read the HAR bodies the old tab holds, or to collect the new one's
MIB = 1024 * 1024


def tree_memory(root_pid: int) -> int:
    """Proportional set size of a process and every process under it (shared pages split)."""
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_full_info().pss
        except psutil.Error:
            continue
    return total


class MemoryWatch:
    """When a local browser's memory is due for a look, and whether it is over the bound."""

    def __init__(self, limit_bytes: int, every: float):
        self.limit = limit_bytes
        self.every = every
        self._due = time.monotonic() + every

    def over(self, launched: Launched) -> int | None:
        """The browser's bytes, when they are over the bound (measured now); else None."""
        processes = launched.processes
        if not self.limit or processes is None or processes.driver_pid is None or time.monotonic() < self._due:
            return None
        self._due = time.monotonic() + self.every
        used = tree_memory(processes.driver_pid)
        return used if used > self.limit else None


def move(
    old: Launched,
    kind: str,
    options: ClientOptions,
    settings: BrowserSettings,
    pending: dict[str, list[list[str]]],
    reload_with: str | None,
) -> tuple[Launched, browser_state.Restore]:
    """A fresh browser carrying the old one's state; the old one ended. ``pending``: localStorage
    a restore still had to write; ``reload_with``: load the current URL again, with this user
    agent ("" none), or None to load nothing."""
    deadline = Deadline(min(MOVE_BOUND, settings.new_session_timeout + 5.0))
    jar, origins = browser_state.storage_state(old.bidi, old.context, settings.max_reply_bytes, deadline)
    carried = {origin.rstrip("/"): [list(pair) for pair in pairs] for origin, pairs in origins}
    state = StorageState(
        cookies=tuple(jar),
        origins=tuple((origin, tuple(tuple(p) for p in pairs)) for origin, pairs in {**pending, **carried}.items()),
    )
    tree = old.bidi.command("browsingContext.getTree", {"root": old.context, "maxDepth": 0}, deadline)
    url = (tree.get("contexts") or [{}])[0].get("url", "")
    new = prepare(kind, options, settings, deadline)
    try:
        new.fit_viewport(old.viewport, deadline)
        restore = browser_state.Restore(new.bidi, new.context, state, deadline)
        if reload_with is not None and url.startswith(("http://", "https://")):
            if reload_with:
                new.bidi.command(
                    "emulation.setUserAgentOverride", {"userAgent": reload_with, "contexts": [new.context]}, deadline
                )
            new.bidi.command("browsingContext.navigate", {"context": new.context, "url": url, "wait": "complete"}, deadline)
            restore.landed(url, deadline)
    except BaseException:
        new.shutdown()
        raise
    try:
        old.shutdown()
    except Exception as exc:  # noqa: BLE001 - the session is on the new one; the reaper ends what is left
        logger.warning("the old %s browser did not shut down cleanly: %r", kind, exc)
    return new, restore
