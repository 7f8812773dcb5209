"""The browser fetch client: Chrome or Firefox through Selenium with WebDriver BiDi.

``BrowserClient(kind, options, settings)``; ``start`` launches (``browser_launch``), ``goto`` runs
a ``navigation.Navigation``, the actions use BiDi ``script.callFunction`` in a sandbox of ours to
find and check elements (fast, and in-page waits instead of sleeps), classic WebDriver to click
the element found there, and BiDi key actions to type; the page questions live in
``browser_page``. Third-party exceptions are translated in one place, ``_boundary`` (the table:
``browser_errors``); a browser or driver that died surfaces from any call as ``Unavailable``
(503, fatal). Only the session thread calls in. The actions beyond the seed's have modules of
their own: ``browser_waits`` (wait_for), ``browser_input`` (press, hover, select, scroll),
``browser_capture`` (screenshot, pdf), ``browser_upload`` (upload) and ``browser_state`` (cookies,
storage_state, a state restored at start).

Decisions where the protocol is silent:
- click/fill wait for the element to appear up to ``settings.element_wait`` (bounded by the action
  deadline), then 404.
- a click that starts a navigation (within ``client_redirect_settle``) waits for its load (504).
- fill on a select without an option of that value: 404, naming the select and the value.
- click or fill on a file input: 400, naming the upload action (which gives it the client's bytes,
  never a host file); fill on a field that will not take focus: 409.
- evaluate: the result goes through ``JSON.stringify`` in the page (``undefined`` -> null); a DOM
  node, a cycle or a BigInt is a 422 naming the problem, not a conversion. The script is compiled
  alone first (a 422 when it is no function body), and the result is checked in the page against
  ``max_reply_bytes`` and for being JSON text, then passed on unbuilt (``RawJson``).
- content and a screenshot's size (``browser_capture``) are read in our BiDi sandbox realm (``page_scripts.SANDBOX``),
  where the page's redefinitions do not reach; replies past ``max_reply_bytes`` are 413
  (``service.reply_bound``).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Mapping
from typing import Any

from selenium.webdriver.remote.webelement import WebElement

from service import errors, reply_bound
from service.clients import browser_capture, browser_input, browser_live, browser_state, browser_upload, browser_waits
from service.clients import browser_download_files as browser_download
from service.clients import browser_move as move
from service.clients import browser_page as page
from service.clients.base import ClientOptions, Cookie, FetchClient, GotoRequest, GotoResult
from service.clients.bidi import PROBE, PROBE_BOUND, Bidi, BidiClosed, BidiError, BrowserUnresponsive
from service.clients.browser_errors import first_line, means_lost, translate
from service.clients.browser_har import BrowserHar
from service.clients.browser_health import RemoteHeartbeat, still_there
from service.clients.browser_launch import Launched, fresh_tab, prepare
from service.clients.browser_move import MIB, MemoryWatch
from service.clients.browser_options import BrowserSettings
from service.clients.navigation import Navigation, leave_document
from service.clients.navigation_record import cookie_params
from service.clients.page_scripts import CONTENT, SANDBOX
from service.deadline import Deadline
from service.har import HarLog
from service.model import UploadFile

logger = logging.getLogger(__name__)

def _boundary(method):
    """Translate every third-party exception of a public method, once, here."""

    @functools.wraps(method)
    def wrapper(self: BrowserClient, *args, **kwargs):
        if self._closed:
            raise errors.Unavailable(f"{self.kind} session is closed")
        if self._dead is not None:
            raise errors.Unavailable(f"{self.kind} browser lost: {self._dead}")
        if self._launched is None and method.__name__ != "start":
            raise errors.Unavailable(f"{self.kind} browser not started")
        if self._launched is not None and self._launched.bidi.unresponsive_for():
            self._recover()
        try:
            if self._launched is not None and method.__name__ not in ("start", "downloads", "download", "har"):
                self._mind_memory(method.__name__ == "goto")
            return method(self, *args, **kwargs)
        except errors.ServiceError as exc:
            if isinstance(exc, (errors.GatewayTimeout, errors.InternalError)) and not self._alive():
                raise self._lost(exc) from exc
            raise
        except Exception as exc:
            raise self._translate(exc, method.__name__) from exc
        finally:
            if self._launched is not None and self._launched.memory is not None:
                self._launched.memory.tidy(self._launched.context)

    return wrapper


class BrowserClient(FetchClient):
    def __init__(self, kind: str, options: ClientOptions, settings: BrowserSettings, unit: Launched | None = None):
        if kind not in ("chrome", "firefox"):
            raise errors.BadRequest(f"unknown browser kind {kind!r}")
        if options.egress is None:  # nothing a browser does may bypass the egress gateway
            raise errors.InternalError("a browser session needs its listener on the egress gateway")
        self.kind = kind
        self.options = options
        self.settings = settings
        self._launched: Launched | None = None
        self._closed = False
        self._lifecycle = threading.Lock()  # start() publishing its browser vs close()
        self._dead: str | None = None
        self._user_agent: str | None = None  # the override now applied ("" = none)
        self._gotos_in_tab = 0  # gotos since the session's tab was fresh (settings.tab_gotos)
        self._unit = unit  # a warm browser from the pool, handed to this session alone
        self._restore: browser_state.Restore | None = None  # a state's localStorage still to write
        self._memory = MemoryWatch(settings.browser_memory_mib * MIB, settings.browser_memory_check)  # browser_move
        self._har = BrowserHar(HarLog(settings.har_body_bytes, settings.max_reply_bytes // 2), kind, settings.max_body_bytes)

    # ----- lifecycle ------------------------------------------------------------------------
    @_boundary
    def start(self, deadline: Deadline) -> None:
        if self._launched is not None:
            return
        with self._lifecycle:
            launched, self._unit = self._unit, None
        if launched is None:
            launched = prepare(self.kind, self.options, self.settings, deadline)
        with self._lifecycle:  # a close() that came while launching must not miss this browser
            closed = self._closed
            if not closed:
                self._launched = launched
        if closed:
            launched.shutdown()
            raise errors.Unavailable(f"{self.kind} session closed while its browser was starting")
        self._wire(launched, deadline)
        launched.fit_viewport(self.options.viewport, deadline)  # a pooled unit: one command, if any
        if self.options.storage_state is not None:
            self._restore = browser_state.Restore(launched.bidi, launched.context, self.options.storage_state, deadline)

    def close(self) -> None:
        with self._lifecycle:
            if self._closed:
                return
            self._closed = True
            launched, self._launched = self._launched or self._unit, None
            self._unit = None
        if launched is not None:
            launched.shutdown()

    # ----- goto -----------------------------------------------------------------------------
    @_boundary
    def goto(self, request: GotoRequest, deadline: Deadline) -> GotoResult:
        if self.kind == "chrome" and request.method.upper() == "TRACE":
            raise errors.NotSupported("Chrome cannot send a TRACE request: use the standard or firefox client")
        bidi, context = self._bidi, self._context
        self._launched.unsettled.settle(bidi, deadline)  # a failed goto's navigations, first
        if self.settings.tab_gotos and self._gotos_in_tab >= self.settings.tab_gotos:
            fresh_tab(self._launched, deadline, self._har.move)  # (the archive's bodies, if any, move too)
            bidi, context = self._bidi, self._context
            self._gotos_in_tab, self._user_agent = 0, None
            if self.options.on_fresh_tab is not None:
                self.options.on_fresh_tab(self.kind)
        self._gotos_in_tab += 1
        wanted = request.user_agent or ""
        if wanted != (self._user_agent or ""):
            bidi.command(
                "emulation.setUserAgentOverride",
                {"userAgent": wanted or None, "contexts": [context]},
                deadline,
            )
            self._user_agent = wanted
        for cookie in request.cookies:
            try:
                bidi.command("storage.setCookie", {"cookie": cookie_params(cookie, request.url)}, deadline)
            except BidiError as exc:  # the client's cookie (a NUL in its domain, say)
                raise errors.BadRequest(
                    f"the browser refused cookie {cookie.name[:100]!r}: {exc.error}: {exc.message[:200]}"
                ) from exc
        self._har.before_goto(deadline)  # (Chrome: the archive's bodies of the page it replaces, if any)
        if "#" in request.url:
            leave_document(bidi, context, request.url, deadline)
        navigation = Navigation(
            self._launched,
            self.settings,
            self.options.max_redirects,
            self.options.policy,
            self.options.egress,
            self.options.middleware,
        )
        result = navigation.run(request, deadline)
        if self._restore is not None and self._restore.pending:
            self._restore.landed(result.url, deadline)
        return result

    # ----- actions --------------------------------------------------------------------------
    @_boundary
    def content(self, deadline: Deadline) -> bytes:
        bound = self.settings.max_reply_bytes
        answer = page.call(self._bidi, self._context, CONTENT, [bound], deadline, activation=False, sandbox=SANDBOX)
        try:
            return reply_bound.unwrap(answer, "content", bound, "T").encode("utf-8")
        except ValueError as exc:
            raise errors.InternalError(str(exc)) from exc

    @_boundary
    def click(self, selector: str, deadline: Deadline) -> None:
        found = page.find(self._bidi, self._context, selector, self.settings.element_wait, deadline, "click")
        launched = self._launched
        assert launched is not None
        if not isinstance(found.get("el"), str):
            raise errors.InternalError(f"the browser gave no reference to the element {selector!r} found")
        element = WebElement(launched.driver, found["el"])  # the element our sandbox checked
        bidi = self._bidi
        with bidi.cond:
            bidi.events.clear()
            bidi.listening = True
        try:
            self._classic(deadline, element.click)
            page.wait_for_navigation(bidi, self._context, self.settings.client_redirect_settle, deadline)
        finally:
            with bidi.cond:
                bidi.listening = False
                bidi.events.clear()

    @_boundary
    def fill(self, selector: str, value: str, deadline: Deadline) -> None:
        bidi, context = self._bidi, self._context
        if page.fill(bidi, context, selector, value, self.settings.element_wait, deadline) and value:
            page.type_text(bidi, context, value, deadline)

    @_boundary
    def evaluate(self, script: str, deadline: Deadline) -> Any:
        return page.evaluate(self._bidi, self._context, script, self.settings.max_reply_bytes, deadline)

    @_boundary
    def screenshot(self, deadline: Deadline, options: Mapping[str, Any] | None = None) -> bytes:
        """What it would hold is measured before it is taken; what arrives before it is decoded."""
        bound, wait = self.settings.max_reply_bytes, self.settings.element_wait
        return browser_capture.screenshot(self._bidi, self._context, options or {}, wait, bound, deadline)

    @_boundary
    def pdf(self, options: Mapping[str, Any], deadline: Deadline) -> bytes:
        return browser_capture.pdf(self._bidi, self._context, options, self.settings.max_reply_bytes, deadline)

    @_boundary
    def wait_for(self, args: Mapping[str, Any], deadline: Deadline) -> None:
        browser_waits.wait_for(self._bidi, self._context, args, deadline)

    @_boundary
    def press(self, keys: list[str], selector: str | None, deadline: Deadline) -> None:
        browser_input.press(self._bidi, self._context, keys, selector, self.settings.element_wait, deadline)

    @_boundary
    def hover(self, selector: str, deadline: Deadline) -> None:
        browser_input.hover(self._bidi, self._context, selector, self.settings.element_wait, deadline)

    @_boundary
    def select(self, selector: str, values: list[str], deadline: Deadline) -> None:
        browser_input.select(self._bidi, self._context, selector, values, self.settings.element_wait, deadline)

    @_boundary
    def scroll(self, args: Mapping[str, Any], deadline: Deadline) -> dict[str, float]:
        return browser_input.scroll(self._bidi, self._context, args, self.settings.element_wait, deadline)

    @_boundary
    def upload(self, selector: str, files: tuple[UploadFile, ...], deadline: Deadline) -> None:
        browser_upload.upload(self._launched, selector, files, self.settings.element_wait, deadline)

    @_boundary
    def cookies(self, deadline: Deadline) -> list[Cookie]:
        return browser_state.cookies(self._bidi, self._context, deadline)

    @_boundary
    def set_cookies(self, cookies: tuple[Cookie, ...], deadline: Deadline) -> None:
        browser_state.set_cookies(self._bidi, self._context, cookies, deadline)

    @_boundary
    def clear_cookies(self, deadline: Deadline) -> None:
        browser_state.clear_cookies(self._bidi, self._context, deadline)

    @_boundary
    def downloads(self, deadline: Deadline) -> list[dict[str, Any]]:
        return browser_download.take(self._launched.download_log, deadline)

    @_boundary
    def download(self, ident: str, deadline: Deadline) -> dict[str, Any]:
        return browser_download.reply(self._launched.download_log, ident, self.settings.max_reply_bytes, deadline)

    @_boundary
    def storage_state(self, deadline: Deadline):
        return browser_state.storage_state(self._bidi, self._context, self.settings.max_reply_bytes, deadline)

    @_boundary
    def har(self, deadline: Deadline) -> dict[str, Any]:
        return self._har.take(self.options.egress, deadline)

    def live_frame(self, timeout: float) -> bytes:
        """For the live view's thread (``browser_live``): the BiDi channel alone, never the driver."""
        return browser_live.frame(None if self._closed else self._launched, timeout, self.settings.max_reply_bytes)

    # ----- helpers --------------------------------------------------------------------------
    @property
    def _bidi(self) -> Bidi:
        assert self._launched is not None
        return self._launched.bidi

    @property
    def _context(self) -> str:
        assert self._launched is not None
        return self._launched.context

    def _classic(self, deadline: Deadline, call):
        launched = self._launched
        assert launched is not None
        launched.set_http_timeout(deadline.remaining() + 1.0)
        return call()

    def _wire(self, launched: Launched, deadline: Deadline) -> None:
        """What watches a browser of this session: liveness, CPU time, the HAR taps (and bodies)."""
        launched.bidi.liveness = RemoteHeartbeat(launched) if launched.remote else self._alive_local
        self._har.install(launched.bidi, launched.context, deadline)
        if launched.processes is not None:
            launched.bidi.cpu_seconds = launched.processes.cpu_seconds

    def _mind_memory(self, before_goto: bool) -> None:
        """A local browser over ``INNDX_BROWSER_MEMORY_MIB``: the session moves to a fresh one
        (``browser_move``); a move that fails leaves it where it was, to try again later."""
        old = self._launched
        used = self._memory.over(old)
        if used is None:
            return
        logger.warning("%s browser at %d MiB, over its bound: the session moves to a fresh browser", self.kind, used // MIB)
        pending = self._restore.pending if self._restore is not None else {}
        reload_with = None if before_goto else (self._user_agent or "")
        try:
            self._har.leave(old.context, Deadline(move.HAR_BOUND))  # (bodies the old tab holds, if any)
            new, restore = move.move(old, self.kind, self.options, self.settings, pending, reload_with)
        except Exception as exc:  # noqa: BLE001 - the old browser still serves; the next check tries again
            logger.warning("the move to a fresh %s browser failed: %s", self.kind, first_line(exc))
            self._har.watch(old.bidi, old.context, Deadline(move.HAR_BOUND))  # (raises when it is gone too)
            return
        with self._lifecycle:  # a close() meanwhile ended the old browser and must not miss this one
            closed = self._closed
            if not closed:
                self._launched, self._restore = new, restore
        if closed:
            new.shutdown()
            raise errors.Unavailable(f"{self.kind} session closed while it moved to a fresh browser")
        self._wire(new, Deadline(move.HAR_BOUND))
        self._gotos_in_tab = 0
        self._user_agent = None if before_goto else self._user_agent
        if self.options.on_fresh_browser is not None:
            self.options.on_fresh_browser(self.kind)

    # ----- liveness and translation ---------------------------------------------------------
    def _alive_local(self) -> bool:
        launched = self._launched
        return launched is None or launched.alive()

    def _alive(self) -> bool:
        launched = self._launched
        return launched is not None and still_there(launched)

    def _recover(self) -> None:
        """A browser that answered nothing, not even a probe: the next action asks it again
        (bounded). An answer: the session goes on, on the same browser. None: a non-fatal 504,
        until the silence passes ``unresponsive_limit``; then the session ends (fatal 503: a
        browser that answers nothing cannot give its cookies and storage to a fresh one)."""
        bidi = self._bidi
        try:
            bidi.command(*PROBE, PROBE_BOUND)
        except BidiError:
            pass  # an answer all the same
        except TimeoutError:
            silent = bidi.unresponsive_for()
            limit = self.settings.unresponsive_limit
            if silent >= limit:
                raise self._lost(BrowserUnresponsive(silent)) from None
            raise errors.GatewayTimeout(
                f"the {self.kind} browser still answers nothing ({silent:.0f}s); the session ends if "
                f"it has not answered after {limit:g}s"
            ) from None
        except Exception as exc:
            raise self._translate(exc, "probe") from exc
        logger.info("%s browser answers again", self.kind)

    def _lost(self, exc: BaseException | None) -> errors.Unavailable:
        why = first_line(exc) if exc is not None else "process or connection gone"
        self._dead = why
        logger.error("%s browser lost: %s", self.kind, why)
        return errors.Unavailable(f"{self.kind} browser lost: {why}")

    def _translate(self, exc: Exception, action: str) -> errors.ServiceError:
        launched = self._launched
        if isinstance(exc, BrowserUnresponsive) and launched is not None and (launched.remote or self._alive_local()):
            logger.warning("%s browser unresponsive during %s: %s", self.kind, action, exc)
            return errors.GatewayTimeout(f"{action}: {exc}; the session goes on if it answers again")
        if isinstance(exc, BidiClosed) or not self._alive() or means_lost(exc):
            return self._lost(exc)
        return translate(exc, action, self.kind)
