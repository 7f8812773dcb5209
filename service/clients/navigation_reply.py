"""A goto's reply, assembled from what its events recorded: the final response's status, headers,
cookies and redirect chain (``navigation_record``), its raw body from the data collector
(``Body``), and the errors a failed navigation reports (``raise_failed``): the egress gateway's
own answers become errors, not pages.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING

from service import errors, redirects
from service.clients.navigation_record import Track, chain_and_cookies, location_of
from service.deadline import Deadline
from service.headers import header_value, media_type, reportable
from service.model import GotoResult

if TYPE_CHECKING:
    from service.clients.bidi import Bidi
    from service.clients.browser_options import BrowserSettings
    from service.clients.navigation_events import NavigationEvents
    from service.model import Egress

logger = logging.getLogger(__name__)

EMPTY_STATUSES = frozenset({204, 205, 304})


class Body:
    """The final response's body, from the goto's data collector. ``ask`` sends the
    ``network.getData`` ahead (when the response completed, or with the settle probe); ``read``
    takes its answer, or asks again when the final response turned out to be another one."""

    def __init__(self, bidi: Bidi, collector: str, max_bytes: int):
        self.bidi = bidi
        self.collector = collector
        self.max_bytes = max_bytes
        self.early: tuple[str, int] | None = None  # (request id, getData command) sent ahead

    def ask(self, request_id: str) -> None:
        if self.early is not None:
            if self.early[0] == request_id:
                return  # asked already, when its response completed
            self.bidi.forget(self.early[1])
        ident = self.bidi.send(
            "network.getData", {"dataType": "response", "collector": self.collector, "request": request_id}
        )
        self.early = (request_id, ident)

    def forget(self) -> None:
        if self.early is not None:
            self.bidi.forget(self.early[1])
            self.early = None

    def read(self, request_id: str, deadline: Deadline) -> bytes | None:
        from service.clients.bidi import BidiError

        early, self.early = self.early, None
        try:
            if early is not None and early[0] == request_id:
                data = self._reply_of(early[1], deadline)
            else:
                if early is not None:
                    self.bidi.forget(early[1])
                data = self.bidi.command(
                    "network.getData",
                    {"dataType": "response", "collector": self.collector, "request": request_id},
                    deadline,
                )
        except BidiError as exc:
            logger.debug("no body for the final response: %s", exc)
            return None
        value = data.get("bytes") or {}
        raw = (
            base64.b64decode(value.get("value", ""))
            if value.get("type") == "base64"
            else value.get("value", "").encode()
        )
        if len(raw) > self.max_bytes:
            raise errors.TooLarge(f"response body is over {self.max_bytes} bytes")
        return raw

    def _reply_of(self, ident: int, deadline: Deadline) -> dict:
        bidi = self.bidi
        with bidi.cond:
            arrived = bidi.wait(lambda: bidi.has_reply(ident), deadline)
        if not arrived:
            bidi.forget(ident)
            raise TimeoutError("BiDi network.getData got no answer in time")
        return bidi.take_reply(ident) or {}


def goto_result(
    events: NavigationEvents,
    final: Track,
    body: Body,
    settings: BrowserSettings,
    egress: Egress | None,
    deadline: Deadline,
) -> GotoResult:
    chain, cookies = chain_and_cookies(
        [t for t in events.tracks.values() if t.hops], events.extra, list(events.client_hops), final
    )
    raise_undecodable(final, final.error)
    last = final.hops[-1]
    status = last.status or 0
    if status in (400, 403, 502, 503):
        raise_gateway_answer(egress, last.url)
    if status and not 100 <= status <= 999:  # browsers take "HTTP/1.1 099" as 99; no HTTP status is
        raise errors.BadAnswer(f"{last.url} answered an invalid status code {status}")
    cut = egress.answered(last.url) if egress is not None else None
    if cut is not None and cut[0] == 413:  # the gateway cut the body short: never a truncated page
        raise errors.TooLarge(cut[1].removeprefix("inndx egress gateway: "))
    raw = None
    if status not in EMPTY_STATUSES and last.method != "HEAD" and final.request:
        raw = body.read(final.request, deadline)
        length = header_value(last.headers, "content-length") or ""
        declared = max(last.size or 0, int(length) if length.isdigit() else 0)
        if raw is None and declared > settings.max_body_bytes:  # Firefox does not keep it
            raise errors.TooLarge(f"response body is over {settings.max_body_bytes} bytes")
    return GotoResult(
        url=last.url,
        status_code=status,
        headers=reportable(last.headers),
        cookies=cookies,
        body=raw or None,
        redirects=chain,
        content_type=media_type(last.headers),
    )


def raise_failed(events: NavigationEvents, track: Track, reply_error: str, egress: Egress | None) -> None:
    """A navigation that ended without a final response: the error that says why (returns when
    the track did get a final response, such as a 204 or a download, which is reported)."""
    last = track.hops[-1] if track.hops else None
    reason = track.error or reply_error
    raise_undecodable(track, reason)
    if last is not None and (last.status or 0) > 0 and last.status not in redirects.REDIRECT_STATUSES:
        return
    url = last.url if last else events.request.url
    raise_gateway_answer(egress, url)
    location = location_of(track, events.extra) if last is not None else None
    if location is not None:
        # the browser would not follow it (a bad port, host, scheme): not worth a retry
        raise errors.BadAnswer(f"fetching {url} failed: {reason}: invalid Location {location[:200]!r}")
    if "INVALID_REDIRECT" in reason or "UNSAFE_REDIRECT" in reason:
        # Chrome reports neither the response nor its Location for these
        raise errors.BadAnswer(f"fetching {url} failed: {reason}: the server's Location is not one to follow")
    raise errors.UpstreamError(f"fetching {url} failed: {reason}")


# How each browser says that a complete body does not decode for its Content-Encoding.
UNDECODABLE = ("ERR_CONTENT_DECODING_FAILED", "NS_ERROR_INVALID_CONTENT_ENCODING")


def raise_undecodable(track: Track, reason: str | None) -> None:
    """A complete answer whose body does not decode (``Content-Encoding: gzip`` on a body that
    is not gzip) is the server's fault and would come again: ``BadAnswer`` (502, not retried),
    as from the standard client, never a page with an empty body."""
    if reason and any(marker in reason for marker in UNDECODABLE):
        last = track.hops[-1] if track.hops else None
        coding = header_value(last.headers, "content-encoding") if last is not None else None
        url = last.url if last is not None else "the page"
        raise errors.BadAnswer(f"{url} sent a body that does not decode as {coding or 'its Content-Encoding'}: {reason}")


def raise_gateway_answer(egress: Egress | None, url: str) -> None:
    """When the egress gateway answered ``url`` itself (a refusal, an unreachable target or
    upstream proxy), the goto reports that as an error, not as the server's page."""
    answer = egress.answered(url) if egress is not None else None
    if answer is None:
        return
    code, message = answer
    message = message.removeprefix("inndx egress gateway: ")
    if code == 403:
        raise errors.Forbidden(message)
    raise errors.UpstreamError(message)
