"""Starting and ending one browser for one session, and the BiDi channel to it.

- ``BrowserSettings``: operator choices (binaries, drivers, Grid URL, bounds).
- ``launch(kind, options, settings, deadline) -> Launched``: a local Chrome/Firefox through its
  driver (explicit paths only: Selenium Manager never runs), or ``webdriver.Remote`` on a Grid,
  with BiDi on. Raises ``Unavailable`` with a message naming what failed.
- ``Bidi``: our own thin channel over Selenium's BiDi websocket. Selenium's connection delivers
  each event on a new thread (arrival order lost) and waits for replies by polling; ``Bidi``
  hooks the connection's message handler so that our replies and events are recorded in wire
  order, under one condition variable, and commands can be sent without waiting (the goto loop
  answers blocked requests while its ``navigate`` is pending).
- A tab's set-up and the move to a fresh tab: ``browser_tabs``; Chrome's BiDi mapper tab kept from
  logging every message into its own page, garbage collected: ``chrome_memory``.
- ``Launched.shutdown()``: quit with bounded waits, then end the session's processes and temp
  dir (``browser_process.SessionProcesses``: the driver starts with a death signal, a marker and
  a temp dir of its own).
- Downloads: a local browser writes them only into ``<temp dir>/downloads``, bounded and watched
  (``browser_downloads``), and replies list them (``browser_download_files``); a Grid browser's
  stay on its node (managed downloads, ``grid_downloads``), or are denied (``INNDX_GRID_DOWNLOADS=0``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.firefox.service import Service as FirefoxService
from selenium.webdriver.remote.file_detector import UselessFileDetector

from service import errors
from service.clients import bidi as channel
from service.clients import browser_user
from service.clients.bidi import Bidi, BidiClosed, BidiError  # noqa: F401 - re-exported
from service.clients.browser_download_files import DownloadLog, tapped_log
from service.clients.browser_downloads import DENIED, Downloads
from service.clients.browser_downloads import EVENTS as DOWNLOAD_EVENTS
from service.clients.browser_options import (  # noqa: F401 - re-exported
    CHROME_ARGS,
    DEFAULT_VIEWPORT,
    BrowserSettings,
    chrome_options,
    firefox_options,
    proxy_parts,
)
from service.clients.browser_process import SessionProcesses
from service.clients.browser_tabs import context_calls, fresh_tab  # noqa: F401 - fresh_tab re-exported
from service.clients.chrome_memory import ChromeMemory
from service.clients.grid_downloads import CAPABILITY as GRID_DOWNLOADS
from service.clients.grid_downloads import GridFiles
from service.clients.navigation_cleanup import Unsettled
from service.deadline import Deadline
from service.model import ClientOptions, Viewport

logger = logging.getLogger(__name__)

QUIT_BOUND = 1.5  # seconds quit() may take before we kill the processes (Firefox sometimes stalls 5 s+)


@dataclass
class Launched:
    kind: str
    driver: Any
    bidi: Bidi
    context: str
    remote: bool
    processes: SessionProcesses | None = None  # local browsers only
    downloads: Downloads | None = None  # local browsers only: their own dir, bound and watcher
    download_log: DownloadLog | None = None  # what replies list, from the download events
    viewport: Viewport = DEFAULT_VIEWPORT
    unsettled: Unsettled = field(default_factory=Unsettled)  # a failed goto's navigations in flight
    memory: ChromeMemory | None = None  # Chrome: its mapper tab's log stopped, garbage collected (chrome_memory)
    _closed: bool = False

    def fit_viewport(self, wanted: Viewport | None, deadline: Deadline | float) -> None:
        """Set the page's viewport when it differs from the one set at launch (a pooled unit)."""
        wanted = wanted or DEFAULT_VIEWPORT
        if wanted == self.viewport:
            return
        self.bidi.command(
            "browsingContext.setViewport",
            {"context": self.context, "viewport": {"width": wanted.width, "height": wanted.height}},
            deadline,
        )
        self.viewport = wanted

    def set_http_timeout(self, seconds: float) -> None:
        """Bound the next classic (HTTP) WebDriver command."""
        self.driver.command_executor.client_config.timeout = max(0.5, seconds)

    def alive(self) -> bool:
        """Local: the driver and a browser process run. Remote: not known here (True)."""
        return self.processes is None or self.processes.alive()

    def shutdown(self) -> None:
        """Quit (bounded), then make sure no process or file of ours survives. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.downloads is not None:
            self.downloads.stop()
        if self.download_log is not None:
            self.download_log.close()
        if self.processes is None:
            self._quit_bounded()
            return
        # A local browser keeps nothing worth a graceful quit (its profile is in the session's temp
        # dir, which goes with it): its whole tree is killed at once, so its slot is free by the
        # time a client could reconnect (a Firefox quit took 1-3 s, often force-killed anyway).
        self.processes.record_tree()
        self.processes.end(grace=0)
        channel.disconnect(self.driver)  # its socket is dead now: the reader ends at once
        _forget_local_driver(self.driver)

    def _quit_bounded(self) -> None:
        channel.disconnect(self.driver)
        self.set_http_timeout(QUIT_BOUND)
        service = getattr(self.driver, "service", None)

        def quit_driver() -> None:
            try:
                self.driver.quit()
            except Exception as exc:  # noqa: BLE001 - a dying browser fails in many ways
                logger.debug("quit failed: %r", exc)

        thread = threading.Thread(target=quit_driver, name="browser-quit", daemon=True)
        thread.start()
        thread.join(QUIT_BOUND + 0.2)
        if thread.is_alive():
            logger.warning("browser quit did not finish in %.1fs; killing it", QUIT_BOUND)
            if service is not None and getattr(service, "process", None) is not None:
                try:
                    service.process.kill()
                except OSError:
                    pass


def _forget_local_driver(driver: Any) -> None:
    """After its processes were killed: close the driver object's HTTP connections and reap the
    driver process, so nothing of it lingers in the worker (sockets, a zombie)."""
    try:
        driver.command_executor.close()
    except Exception as exc:  # noqa: BLE001 - best effort on a driver that is gone
        logger.debug("closing the driver's connections failed: %r", exc)
    process = getattr(getattr(driver, "service", None), "process", None)
    if process is not None:
        try:
            process.wait(timeout=1.0)
        except Exception as exc:  # noqa: BLE001 - already reaped, or still dying: the kernel's now
            logger.debug("reaping the driver failed: %r", exc)


def _require_file(path: str, what: str) -> None:
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise errors.Unavailable(f"{what} not found or not executable at {path}")


def remote_config(remote_url: str, bound: float) -> Any:
    """How a Grid is asked: every classic command once. urllib3 retries a GET that timed out
    three more times by default, so a bound of 2 s became 8 s, and the error that finally came
    was a MaxRetryError, which says "lost", not the ReadTimeoutError that says "slow" (the Grid
    heartbeat took a navigation Chrome was still finishing for a dead node). The doubled key is
    how Selenium reads it (``channel.check_assumptions`` checks that it still does)."""
    from selenium.webdriver.remote.client_config import ClientConfig

    return ClientConfig(
        remote_server_addr=remote_url,
        timeout=bound,
        websocket_interval=channel.WEBSOCKET_INTERVAL,
        init_args_for_pool_manager={"init_args_for_pool_manager": {"retries": False}},
    )


def new_driver(kind: str, opts: Any, service: Any, remote_url: str | None, bound: float) -> Any:
    """A WebDriver session: local through ``service``, or on the Grid at ``remote_url``. Never
    with Selenium's default file detector, the local one, which makes ``WebElement.send_keys``
    upload a file of this host to the Grid node when the keys name one: ``UselessFileDetector``
    reads no file (given to the Grid's driver before its first command; we never send keys to an
    element anyway, see ``browser_page``)."""
    if service is None:
        return webdriver.Remote(
            command_executor=remote_url,
            options=opts,
            client_config=remote_config(remote_url, bound),
            file_detector=UselessFileDetector(),
        )
    local = webdriver.Chrome if kind == "chrome" else webdriver.Firefox
    driver = local(options=opts, service=service)
    driver.file_detector = UselessFileDetector()
    return driver


def launch(kind: str, options: ClientOptions, settings: BrowserSettings, deadline: Deadline) -> Launched:
    """Start a browser (or get a Grid session) within ``settings.new_session_timeout``."""
    if kind not in ("chrome", "firefox"):
        raise errors.BadRequest(f"unknown browser kind {kind!r}")
    remote = settings.remote_url is not None
    user = None if remote else browser_user.resolve(settings.browser_user)
    bound = min(settings.new_session_timeout, max(deadline.remaining(), 0.1))
    service = None
    processes: SessionProcesses | None = None
    downloads: Downloads | None = None
    if settings.remote_url is None:
        binary, driver_path = (
            (settings.chrome_binary, settings.chromedriver)
            if kind == "chrome"
            else (settings.firefox_binary, settings.geckodriver)
        )
        _require_file(binary, f"{kind} binary")
        _require_file(driver_path, f"{kind} driver")
        try:
            processes = SessionProcesses(user=user)
        except OSError as exc:
            raise errors.Unavailable(f"could not make a temp dir for the browser: {exc}") from exc
        try:
            downloads = Downloads(processes.temp_dir, settings.max_download_bytes, settings.downloads_tmpfs, user)
            launcher = processes.wrap_binary(binary)
        except OSError as exc:
            processes.end()
            raise errors.Unavailable(f"could not prepare the browser's temp dir: {exc}") from exc
    folder = downloads.dir if downloads is not None else None
    try:
        if kind == "chrome":  # a Grid node's user is out of sight: its Chrome gets what a root one needs
            opts = chrome_options(settings, options, sandboxed=user is not None and not user.is_root, downloads=folder)
        else:
            opts = firefox_options(settings, options, folder)
    except BaseException:
        if processes is not None:
            processes.end()
        raise
    if remote:
        opts.binary_location = ""  # the Grid node's stereotype names its own binary
        if settings.grid_downloads:
            opts.set_capability(GRID_DOWNLOADS, True)
    if processes is not None:
        opts.binary_location = launcher
        service_class = ChromeService if kind == "chrome" else FirefoxService
        service = service_class(
            executable_path=driver_path, env=processes.driver_env(), popen_kw=processes.popen_kw()
        )

    box: dict[str, Any] = {}

    def create() -> None:
        try:
            box["driver"] = new_driver(kind, opts, service, settings.remote_url, bound)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            box["error"] = exc

    started = time.monotonic()
    done = threading.Event()

    def create_then_signal() -> None:
        try:
            create()
        finally:
            done.set()

    if processes is not None:  # the thread that starts the driver lives as long as it does
        processes.keeper.run(create_then_signal)
    else:
        threading.Thread(target=create_then_signal, name=f"{kind}-launch", daemon=True).start()
    done.wait(bound)
    where = f"Selenium Grid at {settings.remote_url}" if service is None else f"local {kind}"
    if not done.is_set() or "driver" not in box:
        _abandon_launch(service, processes, box, done)
        exc = box.get("error")
        if exc is None:
            raise errors.Unavailable(
                f"no browser capacity: could not start a browser ({where}) within {bound:.1f}s"
            )
        text = _first_line(exc)
        if service is None and (
            "Failed to establish a new connection" in text or "Connection refused" in text
        ):
            raise errors.Unavailable(
                f"Selenium Grid at {settings.remote_url} is unreachable (connection refused)"
            ) from exc
        if service is None and "timed out" in text.lower():
            raise errors.Unavailable(
                f"no browser capacity: {where} gave no session within {bound:.1f}s"
            ) from exc
        raise errors.Unavailable(f"could not start a browser ({where}): {text}") from exc
    driver = box["driver"]
    launched = Launched(
        kind=kind, driver=driver, bidi=None, context="", remote=service is None,  # type: ignore[arg-type]
        processes=processes, downloads=downloads,
    )
    if processes is not None and service is not None and service.process is not None:
        processes.attach(service.process.pid)
        processes.watch_browsers()
    try:
        launched.bidi = channel.connect(driver)
        tree = launched.bidi.command("browsingContext.getTree", {"maxDepth": 0}, 10.0)
        launched.context = tree["contexts"][0]["context"]
        viewport = launched.viewport = options.viewport or DEFAULT_VIEWPORT
        launched.bidi.command(
            "browsingContext.setViewport",
            {
                "context": launched.context,
                "viewport": {"width": viewport.width, "height": viewport.height},
            },
            10.0,
        )
    except Exception as exc:
        launched.shutdown()
        raise errors.Unavailable(
            f"browser started ({where}) but its BiDi channel failed: {_first_line(exc)}"
        ) from exc
    logger.info("%s started (%s) in %.2fs", kind, where, time.monotonic() - started)
    return launched


def prepare(kind: str, options: ClientOptions, settings: BrowserSettings, deadline: Deadline) -> Launched:
    """A browser ready for a session: launched, BiDi connected, the goto events subscribed and
    (Firefox) the settle signal in place. What a cold open does, and what the pool does ahead of
    time."""
    launched = launch(kind, options, settings, deadline)
    calls = context_calls(kind, launched.context)
    downloads = launched.downloads
    grid_files = launched.remote and settings.grid_downloads  # the node's managed downloads
    if not grid_files:  # (there, the node's own preferences name its dir)
        calls.append(("browser.setDownloadBehavior", downloads.behavior() if downloads is not None else DENIED))
    grid = GridFiles(settings.remote_url or "", launched.driver.session_id, settings.max_download_bytes) if grid_files else None
    launched.download_log = tapped_log(launched.bidi.taps, downloads, grid)  # (Chrome cancels by the events' ids)
    # every context (popups too); a click that starts a download waits for no load (browser_page)
    calls.append(("session.subscribe", {"events": list(DOWNLOAD_EVENTS)}))
    try:
        for (method, _), reply in zip(calls, launched.bidi.pipeline(calls, min(10.0, deadline.remaining())), strict=True):
            if isinstance(reply, Exception) and method == "browser.setDownloadBehavior" and launched.remote:
                # a Grid browser without the command: its node's downloads are out of our reach
                logger.warning("the Grid's %s cannot deny downloads: %s", kind, _first_line(reply))
            elif isinstance(reply, Exception):
                raise reply
    except Exception as exc:
        launched.shutdown()
        raise errors.Unavailable(f"browser started but its BiDi subscription failed: {_first_line(exc)}") from exc
    if kind == "chrome":
        launched.memory = ChromeMemory.attach(launched.bidi, deadline)
    if downloads is not None:
        downloads.start(_canceller(launched) if kind == "chrome" else None)
    return launched


def _canceller(launched: Launched):
    """Cancel one Chrome download by its id: CDP through BiDi, no reply awaited. Called from the
    download watcher's thread, the one sender besides the session's (the socket's send is locked)."""

    def cancel(ident: str) -> None:
        launched.bidi.post("goog:cdp.sendCommand", {"method": "Browser.cancelDownload", "params": {"guid": ident}})

    return cancel


def _abandon_launch(
    service: Any, processes: SessionProcesses | None, box: dict, done: threading.Event
) -> None:
    """A launch that failed or overran: end whatever it started."""
    if processes is not None:
        if service is not None and getattr(service, "process", None) is not None:
            processes.attach(service.process.pid)
        processes.end()
    done.wait(2.0)
    driver = box.get("driver")
    if driver is not None and processes is None:  # a Grid session that arrived too late
        try:
            driver.command_executor.client_config.timeout = QUIT_BOUND
            driver.quit()
        except Exception as exc:  # noqa: BLE001 - best effort on a session nobody will use
            logger.debug("quitting a late Grid session failed: %r", exc)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "msg", None) or exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
