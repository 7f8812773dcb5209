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
- ``Launched.shutdown()``: quit with bounded waits, then end the session's processes and temp
  dir (``browser_process.SessionProcesses``: the driver starts with a death signal, a marker and
  a temp dir of its own).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.firefox.service import Service as FirefoxService

from service import errors
from service.clients.base import ClientOptions, Viewport
from service.clients.browser_process import SessionProcesses
from service.deadline import Deadline

logger = logging.getLogger(__name__)

DEFAULT_VIEWPORT = Viewport(1280, 720)
WEBSOCKET_INTERVAL = 0.002  # Selenium polls its BiDi socket this often (default 0.1 s)
QUIT_BOUND = 1.5  # seconds quit() may take before we kill the processes (Firefox sometimes stalls 5 s+)

CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-features=Translate,OptimizationHints,MediaRouter,NetworkTimeServiceQuerying,WebRtcHideLocalIpsWithMdns",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--no-pings",
    # Side doors around the egress gateway (the proxy), shut: QUIC, WebRTC's own UDP, and any
    # name resolution of the browser's own (DNS prefetch, preconnect): with a fixed proxy the
    # browser never needs one, so every name but the gateway's resolves to nothing.
    "--disable-quic",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--enforce-webrtc-ip-permission-check",
)

# WebRTC may use no UDP of its own: only what goes through the proxy (the command-line switch for
# this is not honoured by Chromium 156; the profile preferences are).
CHROME_PREFS: dict[str, Any] = {
    "webrtc.ip_handling_policy": "disable_non_proxied_udp",
    "webrtc.multiple_routes_enabled": False,
    "webrtc.nonproxied_udp_enabled": False,
}

FIREFOX_PREFS: dict[str, Any] = {
    "devtools.jsonview.enabled": False,
    "app.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "extensions.update.enabled": False,
    "browser.download.open_pdf_attachments_inline": True,
    # Side doors around the egress gateway, shut: no direct fallback, no DNS of its own (prefetch,
    # DNS over HTTPS, speculative connections), no HTTP/3, WebRTC only through the proxy.
    "network.proxy.failover_direct": False,
    "network.trr.mode": 5,
    "network.dns.disablePrefetch": True,
    "network.dns.disablePrefetchFromHTTPS": True,
    "network.prefetch-next": False,
    "network.predictor.enabled": False,
    "network.http.speculative-parallel-limit": 0,
    "network.http.http3.enable": False,
    "media.peerconnection.ice.proxy_only": True,
    "media.peerconnection.ice.no_host": True,
}


@dataclass(frozen=True)
class BrowserSettings:
    chrome_binary: str = "/usr/bin/chromium"
    chromedriver: str = "/usr/bin/chromedriver"
    firefox_binary: str = "/usr/bin/firefox-esr"
    geckodriver: str = os.path.join(sys.prefix, "bin", "geckodriver")  # the venv's, where setup puts it
    remote_url: str | None = None  # a Selenium Grid; then webdriver.Remote
    new_session_timeout: float = 30.0  # bound on starting a browser / getting a Grid session
    client_redirect_settle: float = 0.4  # window after load to catch meta refresh / script redirects
    max_body_bytes: int = 50 * 1024 * 1024
    element_wait: float = 5.0  # click/fill wait this long (at most) for the selector to match


class BidiError(Exception):
    """A BiDi command answered with an error."""

    def __init__(self, error: str, message: str):
        super().__init__(f"{error}: {message}")
        self.error = error
        self.message = message


class BidiClosed(Exception):
    """The BiDi socket is gone (browser or node died)."""


class Bidi:
    """Commands and events over Selenium's BiDi websocket, in wire order.

    ``send`` returns a command id at once; ``wait_reply`` waits for it under a deadline. Events
    of subscribed names are appended to ``events`` (a deque the owner drains) and wake waiters.
    Only the session thread sends; the socket thread only records and notifies.
    """

    def __init__(self, conn: Any):
        self._conn = conn
        self.cond = threading.Condition()
        self._replies: dict[int, dict] = {}
        self._pending: set[int] = set()
        self.events: deque[tuple[str, dict]] = deque(maxlen=50000)
        self.listening = False
        self.liveness: Callable[[], bool] | None = None  # extra check while waiting (processes)
        self._original = conn._process_message
        conn._process_message = self._on_message
        # websocket-client validates UTF-8 of every frame in pure Python (seconds for a 10 MB
        # body); the text is decoded by bytes.decode right after anyway, which still rejects bad
        # UTF-8, so the slow pass is skipped.
        sock = getattr(getattr(conn, "_ws", None), "sock", None)
        for part in (
            getattr(sock, "frame_buffer", None),
            getattr(sock, "cont_frame", None),
        ):
            if part is not None and hasattr(part, "skip_utf8_validation"):
                part.skip_utf8_validation = True

    def _quickack(self) -> None:
        """Acknowledge at once. Firefox's BiDi server writes small frames without TCP_NODELAY, so
        a frame sent right after another waits for our ACK, which Linux delays up to 40 ms:
        re-arming TCP_QUICKACK after every message removes that stall."""
        raw = getattr(getattr(getattr(self._conn, "_ws", None), "sock", None), "sock", None)
        if raw is not None and hasattr(socket, "TCP_QUICKACK"):
            try:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                pass

    def _on_message(self, message: str) -> None:
        self._quickack()
        try:
            data = json.loads(message)
        except ValueError:
            return
        with self.cond:
            ident = data.get("id")
            if ident in self._pending:
                self._pending.discard(ident)
                self._replies[ident] = data
                self.cond.notify_all()
                return
            method = data.get("method")
            if method and self.listening:
                self.events.append((method, data.get("params") or {}))
                self.cond.notify_all()
        if ident is not None or (method and self._conn.callbacks.get(method)):
            self._original(message)

    def alive(self) -> bool:
        ws = getattr(self._conn, "_ws", None)
        sock = getattr(ws, "sock", None)
        return bool(sock is not None and getattr(sock, "connected", False))

    def send(self, method: str, params: dict) -> int:
        conn = self._conn
        with conn._id_lock:
            conn._id += 1
            ident = conn._id
        payload = {"id": ident, "method": method, "params": params}
        with self.cond:
            self._pending.add(ident)
        try:
            conn._ws.send(json.dumps(payload))
        except Exception as exc:
            with self.cond:
                self._pending.discard(ident)
            raise BidiClosed(f"BiDi socket closed: {exc}") from exc
        return ident

    def forget(self, ident: int) -> None:
        """Drop a command whose reply we no longer want."""
        with self.cond:
            self._pending.discard(ident)
            self._replies.pop(ident, None)

    def take_reply(self, ident: int) -> dict | None:
        """The reply if it has arrived (raises BidiError for an error reply), else None."""
        with self.cond:
            data = self._replies.pop(ident, None)
        if data is None:
            return None
        if "error" in data:
            raise BidiError(str(data.get("error")), str(data.get("message", "")))
        return data.get("result") or {}

    def wait(self, predicate: Callable[[], bool], deadline: Deadline | float) -> bool:
        """Wait under the condition until ``predicate()`` or the deadline; raise BidiClosed when
        the socket dies meanwhile. Call with the condition held."""
        end = time.monotonic() + deadline if isinstance(deadline, (int, float)) else None
        while not predicate():
            left = (end - time.monotonic()) if end is not None else deadline.remaining()
            if left <= 0:
                return False
            self.cond.wait(min(left, 0.5))
            if not predicate() and not self.alive():
                raise BidiClosed("BiDi socket closed: the browser went away")
            if not predicate() and self.liveness is not None and not self.liveness():
                raise BidiClosed("the browser or driver process died")
        return True

    def command(self, method: str, params: dict, timeout: Deadline | float) -> dict:
        ident = self.send(method, params)
        with self.cond:
            arrived = self.wait(lambda: ident in self._replies, timeout)
        if not arrived:
            self.forget(ident)
            raise TimeoutError(f"BiDi {method} got no answer in time")
        result = self.take_reply(ident)
        assert result is not None
        return result

    def has_reply(self, ident: int) -> bool:
        return ident in self._replies  # read under self.cond by callers


@dataclass
class Launched:
    kind: str
    driver: Any
    bidi: Bidi
    context: str
    remote: bool
    processes: SessionProcesses | None = None  # local browsers only
    _closed: bool = False

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
        if self.processes is not None:
            self.processes.record_tree()
        self._quit_bounded()
        if self.processes is not None:
            self.processes.end()

    def _quit_bounded(self) -> None:
        conn = getattr(self.driver, "_websocket_connection", None)
        if conn is not None:
            # Close the BiDi socket ourselves with a short wait: Firefox may never answer the
            # close frame (websocket-client waits 3 s for it, Selenium's join up to 30 s more).
            conn.response_wait_timeout = 0.2
            ws = getattr(conn, "_ws", None)
            try:
                if ws is not None:
                    ws.keep_running = False
                    if ws.sock is not None:
                        ws.sock.close(timeout=0.2)
            except Exception as exc:  # noqa: BLE001 - closing a dead socket fails in many ways
                logger.debug("closing the BiDi socket failed: %r", exc)
            thread = getattr(conn, "_ws_thread", None)
            if thread is not None:
                thread.join(0.3)
            self.driver._websocket_connection = None
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


def proxy_parts(url: str) -> tuple[str, int, str | None, str | None]:
    """host, port, user, password of a proxy URL."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise errors.BadRequest(f"proxy url has no host: {parts.scheme}://...")
    port = parts.port or (443 if parts.scheme == "https" else 8080)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, port, user, password


def _chrome_options(settings: BrowserSettings, options: ClientOptions) -> webdriver.ChromeOptions:
    opts = webdriver.ChromeOptions()
    opts.binary_location = settings.chrome_binary
    for arg in CHROME_ARGS:
        opts.add_argument(arg)
    viewport = options.viewport or DEFAULT_VIEWPORT
    opts.add_argument(f"--window-size={viewport.width},{viewport.height}")
    if options.egress is not None:
        host, _, _, _ = proxy_parts(options.egress.proxy_url)
        opts.add_argument(f"--proxy-server={options.egress.proxy_url}")
        opts.add_argument("--proxy-bypass-list=<-loopback>")
        opts.add_argument(f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {host}")
    opts.add_experimental_option("prefs", CHROME_PREFS)
    opts.enable_bidi = True
    opts.page_load_strategy = "normal"
    opts.unhandled_prompt_behavior = "accept"
    return opts


def _firefox_options(settings: BrowserSettings, options: ClientOptions) -> webdriver.FirefoxOptions:
    opts = webdriver.FirefoxOptions()
    opts.binary_location = settings.firefox_binary
    opts.add_argument("-headless")
    viewport = options.viewport or DEFAULT_VIEWPORT
    opts.add_argument(f"--width={viewport.width}")
    opts.add_argument(f"--height={viewport.height}")
    for name, value in FIREFOX_PREFS.items():
        opts.set_preference(name, value)
    if options.egress is not None:
        host, port, _, _ = proxy_parts(options.egress.proxy_url)
        for scheme in ("http", "ssl"):
            opts.set_preference(f"network.proxy.{scheme}", host)
            opts.set_preference(f"network.proxy.{scheme}_port", port)
        opts.set_preference("network.proxy.type", 1)
        opts.set_preference("network.proxy.no_proxies_on", "")
        opts.set_preference("network.proxy.allow_hijacking_localhost", True)
    opts.enable_bidi = True
    opts.page_load_strategy = "normal"
    opts.unhandled_prompt_behavior = "accept"
    return opts


def _require_file(path: str, what: str) -> None:
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise errors.Unavailable(f"{what} not found or not executable at {path}")


def launch(kind: str, options: ClientOptions, settings: BrowserSettings, deadline: Deadline) -> Launched:
    """Start a browser (or get a Grid session) within ``settings.new_session_timeout``."""
    if kind not in ("chrome", "firefox"):
        raise errors.BadRequest(f"unknown browser kind {kind!r}")
    opts = _chrome_options(settings, options) if kind == "chrome" else _firefox_options(settings, options)
    if settings.remote_url is not None:
        opts.binary_location = ""  # the Grid node's stereotype names its own binary
    bound = min(settings.new_session_timeout, max(deadline.remaining(), 0.1))
    service = None
    processes: SessionProcesses | None = None
    if settings.remote_url is None:
        binary, driver_path = (
            (settings.chrome_binary, settings.chromedriver)
            if kind == "chrome"
            else (settings.firefox_binary, settings.geckodriver)
        )
        _require_file(binary, f"{kind} binary")
        _require_file(driver_path, f"{kind} driver")
        try:
            processes = SessionProcesses()
        except OSError as exc:
            raise errors.Unavailable(f"could not make a temp dir for the browser: {exc}") from exc
        service_class = ChromeService if kind == "chrome" else FirefoxService
        service = service_class(
            executable_path=driver_path, env=processes.driver_env(), popen_kw=processes.popen_kw()
        )

    box: dict[str, Any] = {}

    def create() -> None:
        try:
            if service is None:
                from selenium.webdriver.remote.client_config import ClientConfig

                config = ClientConfig(
                    remote_server_addr=settings.remote_url,
                    timeout=bound,
                    websocket_interval=WEBSOCKET_INTERVAL,
                )
                box["driver"] = webdriver.Remote(
                    command_executor=settings.remote_url,
                    options=opts,
                    client_config=config,
                )
            elif kind == "chrome":
                box["driver"] = webdriver.Chrome(options=opts, service=service)
            else:
                box["driver"] = webdriver.Firefox(options=opts, service=service)
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
    launched = Launched(kind=kind, driver=driver, bidi=None, context="", remote=service is None, processes=processes)  # type: ignore[arg-type]
    if processes is not None and service is not None and service.process is not None:
        processes.attach(service.process.pid)
        processes.watch_browsers()
    try:
        driver.command_executor.client_config.websocket_interval = WEBSOCKET_INTERVAL
        driver._start_bidi()
        launched.bidi = Bidi(driver._websocket_connection)
        tree = launched.bidi.command("browsingContext.getTree", {"maxDepth": 0}, 10.0)
        launched.context = tree["contexts"][0]["context"]
        viewport = options.viewport or DEFAULT_VIEWPORT
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
