"""The shared vocabulary: the plain data the protocol, the hub, the sessions and the clients speak.

At the bottom of the house: imports nothing of ours but ``policy`` (itself only on ``errors``).
``service.clients.base`` re-exports every name here, so older imports keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from typing import Protocol as TypingProtocol

from service.policy import Policy

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.blocking import BlockRules

__all__ = [
    "ClientOptions",
    "Cookie",
    "Egress",
    "GotoRequest",
    "GotoResult",
    "Proxy",
    "Redirect",
    "UploadFile",
    "Viewport",
]


class Egress(TypingProtocol):
    """A browser session's road out (``service.egress.Listener``): the proxy URL the browser is
    given, and what the gateway answered itself instead of a server."""

    @property
    def proxy_url(self) -> str: ...

    def answered(self, url: str) -> tuple[int, str] | None: ...


@dataclass(frozen=True)
class Cookie:
    """The seed's Cookie shape. ``None`` fields are left out of the frame."""

    name: str
    value: str
    domain: str | None = None
    path: str | None = None
    expires: str | None = None  # ISO 8601 UTC, "2026-12-01T10:00:00Z"
    http_only: bool | None = None
    secure: bool | None = None
    same_site: str | None = None  # "Lax" | "Strict" | "None"


@dataclass(frozen=True)
class StorageState:
    """A portable session state: cookies (each naming its domain) and, per origin, localStorage
    pairs, as the open frame's ``storage_state`` brings them."""

    cookies: tuple[Cookie, ...] = ()
    origins: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()


@dataclass(frozen=True)
class UploadFile:
    """One file of an upload frame: its name as the client gave it (made safe where it is
    written, ``browser_upload.safe_names``), its media type (lower case; None: the browser's
    own, by the extension), and its bytes (decoded)."""

    name: str
    content: bytes = field(repr=False)
    mime_type: str | None = None


@dataclass(frozen=True)
class Redirect:
    url: str  # the URL that issued the redirect
    location: str  # the absolute URL it pointed to
    side: str  # "server" | "client"
    type: str  # "permanent" | "temporary"


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int


@dataclass(frozen=True)
class Proxy:
    """An operator-configured proxy: ``url`` like ``http://user:pass@127.0.0.1:3128``."""

    id: str
    url: str


@dataclass(frozen=True)
class ClientOptions:
    """What the open frame (and the operator) decided for one session's client."""

    timeout: float = 30.0  # seconds, bounds every navigation attempt and every action
    max_redirects: int = 10
    policy: Policy = field(default_factory=Policy)  # the network policy every connection obeys
    proxies: tuple[Proxy, ...] = ()  # the open frame's proxies, in order
    viewport: Viewport | None = None
    middleware: BlockRules | None = None  # the open frame's middleware (browsers: the block rules)
    egress: Egress | None = None  # browsers: the session's listener on the egress gateway
    on_fresh_tab: Callable[[str], None] | None = None  # browsers: told (the kind) when the session moves to a fresh tab
    on_fresh_browser: Callable[[str], None] | None = None  # ... and to a fresh browser (its memory bound)
    storage_state: StorageState | None = None  # the open frame's state to start from

    @property
    def proxy(self) -> Proxy | None:
        """The first proxy: a browser is bound to one proxy for its whole life."""
        return self.proxies[0] if self.proxies else None


@dataclass(frozen=True)
class GotoRequest:
    url: str
    method: str = "GET"
    referrer: str | None = None
    user_agent: str = ""  # already resolved from the keyword to the exact string to send
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[Cookie, ...] = ()
    body: bytes | None = None


@dataclass
class GotoResult:
    url: str
    status_code: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    cookies: list[Cookie] = field(default_factory=list)
    body: bytes | None = None
    redirects: list[Redirect] = field(default_factory=list)
    content_type: str | None = None
    blocked: int = 0  # sub-resource requests the block middleware failed (not on the wire)


class RawJson(str):
    """A JSON text already checked to be one (an evaluate result, checked in the browser), put
    into a frame as it is: a result is never built into Python objects, which for many tiny
    values (``[{},{},...]``) would take 20 times the text's bytes."""
