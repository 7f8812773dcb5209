"""The standard fetch client: plain HTTP with httpx, no browser.

Redirects are followed by our own loop, so that every hop is recorded, checked against the
network policy and bounded by ``max_redirects``. The session's cookie jar is the httpx client's
own (one client per session, never shared). Bodies are the decoded bytes (gzip, deflate
undone), as a browser reports them.
"""

from __future__ import annotations

import http.cookiejar
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from service import network_policy
from service.clients.base import ClientOptions, FetchClient, GotoRequest, GotoResult
from service.cookies import cookies_from_headers
from service.deadline import Deadline
from service.errors import (
    BadRequest,
    Conflict,
    GatewayTimeout,
    NotSupported,
    TooLarge,
    TooManyRedirects,
    UpstreamError,
)
from service.headers import media_type
from service.redirects import REDIRECT_STATUSES, keeps_body, method_after, server_hop

ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
_BODY_HEADERS = {"content-type", "content-length", "content-encoding", "transfer-encoding"}


class _PolicyBackend(httpcore.SyncBackend):
    """Connects only to addresses the network policy allows, checked when connecting: the address
    checked is the one connected to, so a host cannot resolve to a public address for the check
    and to a private one for the connection (DNS rebinding)."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = network_policy.allowed_addresses(host, port)
        error: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


class StandardClient(FetchClient):
    kind = "standard"

    def __init__(self, options: ClientOptions, max_body_bytes: int = 64 * 1024 * 1024):
        self.options = options
        self.max_body_bytes = max_body_bytes
        self._clients: dict[str | None, httpx.Client] = {}
        self._jar = http.cookiejar.CookieJar()  # the session's jar, shared by its httpx clients
        self._proxy_turn = 0
        self._last_body: bytes | None = None
        self._loaded = False

    def _client(self) -> httpx.Client:
        """The httpx client for the next attempt: one per proxy, all sharing one cookie jar.
        With several proxies, each attempt (and so each retry) takes the next one."""
        proxy = None
        if self.options.proxies:
            proxy = self.options.proxies[self._proxy_turn % len(self.options.proxies)].url
            self._proxy_turn += 1
        client = self._clients.get(proxy)
        if client is None:
            client = httpx.Client(proxy=proxy, cookies=self._jar, follow_redirects=False, trust_env=False)
            if proxy is None and not self.options.allow_private_networks:
                # the transport's connection pool is httpcore's; its backend opens the sockets
                client._transport._pool._network_backend = _PolicyBackend()
            self._clients[proxy] = client
        return client

    # ---------------------------------------------------------------------------------- goto

    def goto(self, request: GotoRequest, deadline: Deadline) -> GotoResult:
        client = self._client()
        jar = httpx.Cookies(self._jar)
        for cookie in request.cookies:
            host = urlsplit(request.url).hostname or ""
            jar.set(cookie.name, cookie.value, domain=cookie.domain or host, path=cookie.path or "/")
        url, method, body = request.url, request.method, request.body
        headers = self._request_headers(request)
        redirects, cookies = [], []
        while True:
            network_policy.check_url(url, self.options.allow_private_networks)
            response_headers, status, content = self._send(client, method, url, headers, body, deadline)
            cookies.extend(cookies_from_headers(response_headers, url))
            location = next((v for k, v in response_headers if k.lower() == "location"), None)
            if status not in REDIRECT_STATUSES or location is None:
                break
            hop = server_hop(url, status, location)
            if len(redirects) >= self.options.max_redirects:
                raise TooManyRedirects(f"more than {self.options.max_redirects} redirects (max_redirects)")
            redirects.append(hop)
            if urlsplit(hop.location).scheme not in ("http", "https"):
                raise BadRequest(f"redirect to a non-http(s) URL: {hop.location[:200]!r}")
            next_method = method_after(status, method)
            if not keeps_body(status) and next_method != method:
                body = None
                headers = [(k, v) for k, v in headers if k.lower() not in _BODY_HEADERS]
            if _origin(hop.location) != _origin(url):
                headers = [(k, v) for k, v in headers if k.lower() != "authorization"]
            url, method = hop.location, next_method
        self._last_body = content
        self._loaded = True
        return GotoResult(
            url=url,
            status_code=status,
            headers=response_headers,
            cookies=cookies,
            body=content or None,
            redirects=redirects,
            content_type=media_type(response_headers),
        )

    @staticmethod
    def _request_headers(request: GotoRequest) -> list[tuple[str, bytes]]:
        """The request's headers; values as UTF-8 bytes (what browsers send for a non-ASCII
        value), since HTTP itself has no text encoding for them."""
        own = {name.lower() for name, _ in request.headers}
        headers = [("User-Agent", request.user_agent), ("Accept", ACCEPT)]
        headers = [(k, v) for k, v in headers if k.lower() not in own]
        if request.referrer and "referer" not in own:
            headers.append(("Referer", request.referrer))
        return [(name, value.encode("utf-8")) for name, value in headers + list(request.headers)]

    def _send(
        self, client: httpx.Client, method: str, url: str, headers: list, body: bytes | None, deadline: Deadline
    ) -> tuple[list[tuple[str, str]], int, bytes]:
        """One request: (headers in received order, status, decoded body)."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise GatewayTimeout(f"timed out after {deadline.seconds:g}s")
        try:
            prepared = client.build_request(
                method, url, headers=headers, content=body, timeout=httpx.Timeout(remaining)
            )
            response = client.send(prepared, stream=True)
        except httpx.TimeoutException as exc:
            raise GatewayTimeout(f"timed out after {deadline.seconds:g}s fetching {_brief(url)}") from exc
        except httpx.ProxyError as exc:
            raise UpstreamError(f"proxy failed for {_brief(url)}: {exc}") from exc
        except httpx.TransportError as exc:
            raise UpstreamError(f"fetching {_brief(url)} failed: {type(exc).__name__}: {exc}") from exc
        except httpx.InvalidURL as exc:
            raise BadRequest(f"invalid url {_brief(url)}: {exc}") from exc
        try:
            content = self._read_body(response, deadline, url)
        finally:
            response.close()
        headers_received = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
        return headers_received, response.status_code, content

    def _read_body(self, response: httpx.Response, deadline: Deadline, url: str) -> bytes:
        chunks, size = [], 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise TooLarge(f"the response body is over the {self.max_body_bytes}-byte limit")
                if deadline.expired():
                    raise GatewayTimeout(f"timed out after {deadline.seconds:g}s reading {_brief(url)}")
                chunks.append(chunk)
        except httpx.TimeoutException as exc:
            raise GatewayTimeout(f"timed out after {deadline.seconds:g}s reading {_brief(url)}") from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise UpstreamError(f"reading {_brief(url)} failed: {type(exc).__name__}: {exc}") from exc
        return b"".join(chunks)

    # ---------------------------------------------------------------------------------- actions

    def content(self, deadline: Deadline) -> bytes:
        if not self._loaded:
            raise Conflict("nothing loaded yet: goto a page first")
        return self._last_body or b""

    def click(self, selector: str, deadline: Deadline) -> None:
        raise NotSupported("click needs a browser: open the session with client chrome or firefox")

    def fill(self, selector: str, value: str, deadline: Deadline) -> None:
        raise NotSupported("fill needs a browser: open the session with client chrome or firefox")

    def evaluate(self, script: str, deadline: Deadline) -> Any:
        raise NotSupported("evaluate needs a browser: open the session with client chrome or firefox")

    def screenshot(self, deadline: Deadline) -> None:
        return None

    def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()


def _brief(url: str) -> str:
    """A URL for an error message: scheme, host and path, never the query (it may hold secrets)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"[:200]
