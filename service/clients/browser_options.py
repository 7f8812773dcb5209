"""What a browser is started with: the operator's settings and the Chrome/Firefox options.

- ``BrowserSettings.from_settings(settings)``: the one place browser settings are derived from
  the service's ``Settings``.
- ``chrome_options`` / ``firefox_options``: flags and prefs, the viewport, the egress gateway
  as the only proxy (loopback included; the browser resolves no name of its own), and (local
  browsers) the session's own downloads directory.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from selenium import webdriver

from service import errors
from service.clients import chrome_blocking
from service.model import ClientOptions, Viewport

if TYPE_CHECKING:
    from service.config import Settings

DEFAULT_VIEWPORT = Viewport(1280, 720)

CHROME_ARGS = (
    "--headless=new",
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

# Given only to a Chrome that runs as root (Chromium refuses to start as root with its sandbox):
# an operator who names root as INNDX_BROWSER_USER, or a Grid (whose nodes' users we cannot see).
NO_SANDBOX = "--no-sandbox"

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
    # a download touches nothing in the service user's home (GTK's recently-used.xbel)
    "browser.download.manager.addToRecentDocs": False,
    # No tab icon: Firefox fetches /favicon.ico after every load, a request of its own to the site
    # (Chrome headless makes none), and it met the next goto's intercept.
    "browser.chrome.site_icons": False,
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
    browser_user: str = ""  # local browsers run as this user ("": browser_user.DEFAULT_USER when root)
    max_download_bytes: int = 64 * 1024 * 1024  # a session's downloads on disk (browser_downloads)
    downloads_tmpfs: bool = True  # as root, a tmpfs of the bound on each downloads dir
    grid_downloads: bool = True  # a Grid browser asks for the node's managed downloads (grid_downloads)
    max_reply_bytes: int = 32 * 1024 * 1024  # an evaluate result, content, a screenshot: beyond, 413
    element_wait: float = 5.0  # click/fill wait this long (at most) for the selector to match
    unresponsive_limit: float = 60.0  # a browser answering nothing this long ends its session (503)
    tab_gotos: int = 25  # gotos in one tab before the session moves to a fresh one (0: never)
    browser_memory_mib: int = 1536  # a local browser's memory bound: past it, a fresh browser (browser_move; 0: never)
    browser_memory_check: float = 10.0  # seconds between two looks at that memory, at most
    har_body_bytes: int = 0  # bytes of each body the har action gives (0: none, and no collector)

    @classmethod
    def from_settings(cls, settings: Settings) -> BrowserSettings:
        """The browser settings of the service's ``Settings``: derived here and nowhere else."""
        return cls(
            chrome_binary=settings.chrome_binary,
            chromedriver=settings.chromedriver,
            firefox_binary=settings.firefox_binary,
            geckodriver=settings.geckodriver,
            remote_url=settings.selenium_remote_url,
            new_session_timeout=settings.new_session_timeout,
            client_redirect_settle=settings.client_redirect_settle,
            max_body_bytes=settings.max_body_bytes,
            browser_user=settings.browser_user,
            max_download_bytes=settings.max_download_bytes,
            downloads_tmpfs=settings.downloads_tmpfs,
            grid_downloads=settings.grid_downloads,
            max_reply_bytes=settings.max_reply_bytes,
            unresponsive_limit=settings.unresponsive_limit,
            tab_gotos=settings.tab_gotos,
            browser_memory_mib=settings.browser_memory_mib,
            browser_memory_check=settings.browser_memory_check,
            har_body_bytes=settings.har_body_bytes,
        )


def proxy_parts(url: str) -> tuple[str, int, str | None, str | None]:
    """host, port, user, password of a proxy URL."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise errors.BadRequest(f"proxy url has no host: {parts.scheme}://...")
    port = parts.port or (443 if parts.scheme == "https" else 8080)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, port, user, password


def download_prefs(kind: str, directory: str) -> dict[str, Any]:
    """Profile preferences that send every download into ``directory``, without a prompt (BiDi
    ``browser.setDownloadBehavior`` says the same after the start: see browser_downloads)."""
    if kind == "chrome":
        return {
            "download.default_directory": directory,
            "download.prompt_for_download": False,
            "download.directory_upgrade": True,
            "savefile.default_directory": directory,
        }
    return {
        "browser.download.folderList": 2,  # 2: the directory below, not ~/Downloads
        "browser.download.dir": directory,
        "browser.download.useDownloadDir": True,
        "browser.download.always_ask_before_handling_new_types": False,
        "browser.download.manager.showWhenStarting": False,
        "browser.download.start_downloads_in_tmp_dir": False,
        "browser.download.lastDir.savePerSite": False,
    }


def chrome_options(
    settings: BrowserSettings, options: ClientOptions, sandboxed: bool, downloads: str | None = None
) -> webdriver.ChromeOptions:
    """``sandboxed``: the browser does not run as root and keeps Chromium's sandbox."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = settings.chrome_binary
    for arg in CHROME_ARGS:
        opts.add_argument(arg)
    if not sandboxed:
        opts.add_argument(NO_SANDBOX)
    viewport = options.viewport or DEFAULT_VIEWPORT
    opts.add_argument(f"--window-size={viewport.width},{viewport.height}")
    if options.egress is not None:
        host, _, _, _ = proxy_parts(options.egress.proxy_url)
        opts.add_argument(f"--proxy-server={options.egress.proxy_url}")
        opts.add_argument("--proxy-bypass-list=<-loopback>")
        opts.add_argument(f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {host}")
    prefs = dict(CHROME_PREFS)
    if downloads is not None:
        prefs.update(download_prefs("chrome", downloads))
    opts.add_experimental_option("prefs", prefs)
    if options.middleware is not None and options.middleware.blocks:
        # the block rules as an extension of this browser alone (see chrome_blocking)
        opts.add_encoded_extension(chrome_blocking.extension(options.middleware.blocks))
    opts.enable_bidi = True
    opts.page_load_strategy = "normal"
    opts.unhandled_prompt_behavior = "accept"
    return opts


def firefox_options(
    settings: BrowserSettings, options: ClientOptions, downloads: str | None = None
) -> webdriver.FirefoxOptions:
    opts = webdriver.FirefoxOptions()
    opts.binary_location = settings.firefox_binary
    opts.add_argument("-headless")
    viewport = options.viewport or DEFAULT_VIEWPORT
    opts.add_argument(f"--width={viewport.width}")
    opts.add_argument(f"--height={viewport.height}")
    prefs = dict(FIREFOX_PREFS)
    if downloads is not None:
        prefs.update(download_prefs("firefox", downloads))
    for name, value in prefs.items():
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
