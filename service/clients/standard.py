"""The standard fetch client: plain HTTP with httpx, no browser.

Redirects are followed by our own loop, so that every hop is recorded, checked against the
network policy and bounded by ``max_redirects``. The session's cookie jar is the httpx client's
own (one client per session, never shared). Bodies are the decoded bytes (gzip, deflate, br, zstd
undone), as a browser reports them.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from service import hosts, reply_bound, request_headers
from service.clients import standard_cookies, standard_transport
from service.clients.base import ClientOptions, FetchClient, GotoRequest, GotoResult
from service.clients.body_decoding import BodyDecoder, DecodeError, content_encodings
from service.cookies import BrowserCookiePolicy, cookies_from_headers, jar_cookie
from service.deadline import Deadline
from service.errors import (
    BadAnswer,
    BadRequest,
    Conflict,
    Forbidden,
    GatewayTimeout,
    NotSupported,
    ServiceError,
    TooLarge,
    TooManyRedirects,
    UpstreamError,
)
from service.har import HarLog
from service.headers import media_type
from service.model import Cookie
from service.redirects import REDIRECT_STATUSES, keeps_body, method_after, server_hop

ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ACCEPT_ENCODING = "gzip, deflate"  # what body_decoding undoes
_BODY_HEADERS = {"content-type", "content-length", "content-encoding", "transfer-encoding"}


class StandardClient(FetchClient):
    kind = "standard"

    def __init__(
        self,
        options: ClientOptions,
        max_body_bytes: int = 64 * 1024 * 1024,
        max_reply_bytes: int = 32 * 1024 * 1024,
        har_body_bytes: int = 0,
    ):
        self.options = options
        self.max_body_bytes = max_body_bytes
        self.max_reply_bytes = max_reply_bytes  # content is the last body: past this, 413
        self._clients: dict[str | None, httpx.Client] = {}
        self._jar = http.cookiejar.CookieJar(BrowserCookiePolicy())  # the session's, shared by its httpx clients
        self._proxy_turn = 0
        self._last_body: bytes | None = None
        self._loaded = False
        self._location: str | None = None
        self._deadline: Deadline | None = None  # the running goto's (read by _DeadlineStream)
        self.har_log = HarLog(har_body_bytes, max_reply_bytes // 2)  # every request of the session's gotos (the har action)
        if options.storage_state is not None:  # the cookies of a state; localStorage means nothing here
            standard_cookies.put(self._jar, options.storage_state.cookies)

    def _client(self) -> httpx.Client:
        """The httpx client for the next attempt: one per proxy, all sharing one cookie jar.
        With several proxies, each attempt (and so each retry) takes the next one."""
        proxy = None
        if self.options.proxies:
            proxy = self.options.proxies[self._proxy_turn % len(self.options.proxies)].url
            self._proxy_turn += 1
        client = self._clients.get(proxy)
        if client is None:
            client = httpx.Client(
                proxy=proxy,
                cookies=self._jar,
                follow_redirects=False,
                trust_env=False,
                verify=standard_transport.tls_context(),
                event_hooks={"response": [self._remember_location]},
            )
            standard_transport.install(client, None if proxy is not None else self.options.policy, self)
            self._clients[proxy] = client
        return client

    def _remember_location(self, response: httpx.Response) -> None:
        """Runs before httpx looks at the Location, so an error about it can quote it."""
        self._location = response.headers.get("location")

    # ---------------------------------------------------------------------------------- goto

    def goto(self, request: GotoRequest, deadline: Deadline) -> GotoResult:
        self._deadline = deadline
        client = self._client()
        for cookie in request.cookies:
            self._set_cookie(cookie, urlsplit(request.url).hostname or "")
        url, method, body = request.url, request.method, request.body
        headers = self._request_headers(request)
        left = dropped = False  # left the goto's origin (its headers stay behind); body dropped
        redirects, cookies = [], []
        while True:
            key = self.har_log.key()
            try:
                self.options.policy.check_url(url)
            except ServiceError as exc:  # a refusal before any byte was sent: in the HAR all the same
                self.har_log.begin(key, method, url, [(k, v.decode("latin-1")) for k, v in headers], body)
                self.har_log.fail(key, str(exc), refusal=str(exc) if isinstance(exc, Forbidden) else None)
                raise
            response_headers, status, content = self._send(client, method, url, headers, body, deadline, bool(redirects), key)
            cookies.extend(cookies_from_headers(response_headers, url))
            location = next((v for k, v in response_headers if k.lower() == "location"), "").strip()
            if status not in REDIRECT_STATUSES or not location:  # an empty Location: no redirect (as browsers)
                break
            hop = _checked_hop(url, status, location)
            if len(redirects) >= self.options.max_redirects:
                raise TooManyRedirects(f"more than {self.options.max_redirects} redirects (max_redirects)")
            redirects.append(hop)
            next_method = method_after(status, method)
            if not keeps_body(status) and next_method != method:
                body, dropped = None, True
            left = left or request_headers.cross_origin(request.url, hop.location)
            headers = self._request_headers(request, left)
            if dropped:
                headers = [(k, v) for k, v in headers if k.lower() not in _BODY_HEADERS]
            # a Location without a fragment inherits the request's (RFC 9110 10.2.2), as in browsers
            fragment = urlsplit(url).fragment if "#" in url else None
            url, method = hop.location, next_method
            if fragment is not None and "#" not in url:
                url = f"{url}#{fragment}"
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

    def _set_cookie(self, cookie: Cookie, host: str) -> None:
        """A goto's cookie into the session's jar with its attributes (``cookies.jar_cookie``);
        one whose ``expires`` is past removes the jar's cookie of that name instead."""
        try:
            made = jar_cookie(cookie, host)
        except ValueError as exc:
            raise BadRequest(f"cookie {cookie.name[:100]!r} has an invalid expires {cookie.expires[:100]!r}") from exc
        if made.is_expired():
            for key in (made.domain, "." + made.domain):
                with contextlib.suppress(KeyError):
                    self._jar.clear(key, made.path, made.name)
            return
        self._jar.set_cookie(made)

    @staticmethod
    def _request_headers(request: GotoRequest, left: bool = False) -> list[tuple[str, bytes]]:
        """The request's headers (``service.request_headers``'s rules; ``left``: this hop is past
        the chain's first move to another origin); values as UTF-8 bytes (what browsers send for
        a non-ASCII value), since HTTP itself has no text encoding for them."""
        given = request_headers.frame_headers(request.headers, request.referrer)
        if left:
            given = request_headers.on_other_origin(given)
        own = {name.lower() for name, _ in given}
        headers = [("User-Agent", request.user_agent), ("Accept", ACCEPT), ("Accept-Encoding", ACCEPT_ENCODING)]
        headers = [(k, v) for k, v in headers if k.lower() not in own]
        return [(name, value.encode("utf-8")) for name, value in headers + given]

    def _send(
        self,
        client: httpx.Client,
        method: str,
        url: str,
        headers: list,
        body: bytes | None,
        deadline: Deadline,
        hop: bool = False,
        key: int = 0,
    ) -> tuple[list[tuple[str, str]], int, bytes]:
        """One request: (headers in received order, status, decoded body), recorded in the HAR
        under ``key``. ``hop``: the URL came from a server's Location, so a URL httpx cannot use
        is the server's fault (502)."""
        try:
            return self._exchange(client, method, url, headers, body, deadline, hop, key)
        except ServiceError as exc:
            self.har_log.fail(key, str(exc), refusal=str(exc) if isinstance(exc, Forbidden) else None)
            raise

    def _exchange(
        self, client: httpx.Client, method: str, url: str, headers: list, body: bytes | None, deadline: Deadline,
        hop: bool, key: int,
    ) -> tuple[list[tuple[str, str]], int, bytes]:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise GatewayTimeout(f"timed out after {deadline.seconds:g}s")
        try:
            prepared = client.build_request(
                method, url, headers=headers, content=body, timeout=httpx.Timeout(remaining)
            )
        except httpx.InvalidURL as exc:
            if hop:
                raise BadAnswer(f"the server redirected to an invalid Location {url[:200]!r}: {exc}") from exc
            raise BadRequest(f"invalid url {_brief(url)}: {exc}") from exc
        if not any(name.lower() == "cookie" for name, _ in headers):
            # httpx builds the Cookie header from a copy of the jar under the default policy:
            # ours (BrowserCookiePolicy) decides instead. A frame's own Cookie header stands.
            prepared.headers.pop("cookie", None)
            httpx.Cookies(self._jar).set_cookie_header(prepared)
        self._location = None
        sent = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in prepared.headers.raw]
        self.har_log.begin(key, method, url, sent, body)
        try:
            response = client.send(prepared, stream=True)
        except httpx.InvalidURL as exc:
            # httpx builds the next request from a Location even when it does not follow it,
            # and raises here when the Location is unusable: the server's fault
            raise BadAnswer(
                f"{_brief(url)} answered with an invalid Location {(self._location or '')[:200]!r}: {exc}"
            ) from exc
        except httpx.TimeoutException as exc:
            raise GatewayTimeout(f"timed out after {deadline.seconds:g}s fetching {_brief(url)}") from exc
        except httpx.ProxyError as exc:
            raise UpstreamError(f"proxy failed for {_brief(url)}: {exc}") from exc
        except httpx.TransportError as exc:
            raise UpstreamError(f"fetching {_brief(url)} failed: {type(exc).__name__}: {exc}") from exc
        headers_received = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
        self.har_log.respond(key, response.status_code, headers_received, response.reason_phrase, response.http_version)
        try:
            content = self._read_body(response, deadline, url)
        finally:
            response.close()
        self.har_log.finish(key, content, transferred=response.num_bytes_downloaded)
        return headers_received, response.status_code, content

    def _read_body(self, response: httpx.Response, deadline: Deadline, url: str) -> bytes:
        """The body as received (``iter_raw``), decoded by our own bounded decoder: the limit
        holds for the raw and the decoded size, at every step, stacked encodings included."""
        decoder = BodyDecoder(content_encodings(response.headers.multi_items()), self.max_body_bytes)
        chunks, size = [], 0
        try:
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise TooLarge(f"the response body is over the {self.max_body_bytes}-byte limit")
                if deadline.expired():
                    raise GatewayTimeout(f"timed out after {deadline.seconds:g}s reading {_brief(url)}")
                chunks += decoder.feed(chunk)
            chunks += decoder.finish()
        except httpx.TimeoutException as exc:
            raise GatewayTimeout(f"timed out after {deadline.seconds:g}s reading {_brief(url)}") from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise UpstreamError(f"reading {_brief(url)} failed: {type(exc).__name__}: {exc}") from exc
        except DecodeError as exc:  # a complete answer that does not decode: the same would come again
            raise BadAnswer(f"{_brief(url)} sent a body that does not decode: {exc}") from exc
        return b"".join(chunks)

    # ---------------------------------------------------------------------------------- actions

    def har(self, deadline: Deadline) -> dict[str, Any]:
        return self.har_log.take()

    def content(self, deadline: Deadline) -> bytes:
        if not self._loaded:
            raise Conflict("nothing loaded yet: goto a page first")
        body = self._last_body or b""
        reply_bound.check("content", len(body), self.max_reply_bytes)
        return body

    def click(self, selector: str, deadline: Deadline) -> None:
        raise NotSupported("click needs a browser: open the session with client chrome or firefox")

    def fill(self, selector: str, value: str, deadline: Deadline) -> None:
        raise NotSupported("fill needs a browser: open the session with client chrome or firefox")

    def evaluate(self, script: str, deadline: Deadline) -> Any:
        raise NotSupported("evaluate needs a browser: open the session with client chrome or firefox")

    def screenshot(self, deadline: Deadline, options: Mapping[str, Any] | None = None) -> None:
        return None  # the seed's answer: no page to picture, a null screenshot

    # the jar: cookies, set_cookies, clear_cookies (storage_state: the base's, cookies and no origin)
    def cookies(self, deadline: Deadline) -> list[Cookie]:
        return standard_cookies.read(self._jar)

    def set_cookies(self, cookies: tuple[Cookie, ...], deadline: Deadline) -> None:
        standard_cookies.put(self._jar, cookies)

    def clear_cookies(self, deadline: Deadline) -> None:
        self._jar.clear()

    def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()


def _checked_hop(url: str, status: int, location: str):
    """The redirect a Location gives, or ``BadAnswer`` naming a Location no browser would follow
    (not http(s), no host, a host the protocol would refuse, a port out of range, an unparsable
    address)."""
    try:
        hop = server_hop(url, status, location)
        parts = urlsplit(hop.location)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        if usable:
            hosts.ascii_host(parts.hostname)  # the protocol's host rules (an empty label, say)
        if location.startswith("//") or "://" in location[:16]:  # names a host: it must have one
            usable = usable and bool(urlsplit(location).hostname)
    except ValueError:  # urljoin and .port raise it for "http://[x", "http://a:99999/"
        usable = False
    if not usable:
        raise BadAnswer(f"{_brief(url)} answered {status} with an invalid Location {location[:200]!r}")
    return hop


def _brief(url: str) -> str:
    """A URL for an error message: scheme, host and path, never the query (it may hold secrets)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"[:200]
