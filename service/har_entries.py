"""One HAR 1.2 entry as JSON, from an ``Exchange`` of ``service.har`` (sans I/O): the request and
response with their cookies, query and headers, the content (a body as base64, with
``_truncated``), HAR's timings, and our ``_error`` and ``_refusal``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from service.har import Exchange


def header_of(headers: list[tuple[str, str]], name: str) -> str:
    return next((value for key, value in headers if key.lower() == name), "")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cookies(headers: list[tuple[str, str]], response: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, value in headers:
        if response and name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            cookie_name, _, cookie_value = pair.partition("=")
            out.append({"name": cookie_name.strip(), "value": cookie_value.strip()})
        elif not response and name.lower() == "cookie":
            for pair in value.split(";"):
                if pair.strip():
                    cookie_name, _, cookie_value = pair.partition("=")
                    out.append({"name": cookie_name.strip(), "value": cookie_value.strip()})
    return out


def _query(url: str) -> list[dict[str, str]]:
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    return [{"name": name, "value": value} for name, value in parse_qsl(query, keep_blank_values=True)]


def _headers(headers: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers]


def timings_of(timings: dict[str, float], total_ms: float) -> dict[str, float]:
    """HAR's timings from a fetch's timing facts (milliseconds on one clock; 0 or absent: not
    measured). ``send``, ``wait`` and ``receive`` are never negative; the phases that were not
    measured are -1, as HAR says."""

    def span(start: str, end: str) -> float:
        a, b = timings.get(start) or 0.0, timings.get(end) or 0.0
        return round(b - a, 3) if a > 0 and b >= a else -1.0

    out = {"blocked": -1.0, "dns": span("dnsStart", "dnsEnd"), "connect": span("connectStart", "connectEnd"),
           "ssl": span("tlsStart", "connectEnd") if timings.get("tlsStart") else -1.0, "send": 0.0}
    wait, receive = span("requestStart", "responseStart"), span("responseStart", "responseEnd")
    if wait < 0 and receive < 0:
        wait, receive = max(0.0, round(total_ms, 3)), 0.0
    out["wait"], out["receive"] = max(0.0, wait), max(0.0, receive)
    return out


def entry_of(exchange: Exchange) -> dict[str, Any]:
    total_ms = max(0.0, ((exchange.ended or exchange.started) - exchange.started) * 1000)
    timings = timings_of(exchange.timings, total_ms)
    content: dict[str, Any] = {"size": max(exchange.size, 0), "mimeType": exchange.mime_type}
    if exchange.body is not None:
        content["text"], content["encoding"] = base64.b64encode(exchange.body).decode("ascii"), "base64"
        if exchange.truncated:
            content["_truncated"] = True
    request: dict[str, Any] = {
        "method": exchange.method,
        "url": exchange.url,
        "httpVersion": exchange.http_version,
        "cookies": _cookies(exchange.request_headers, response=False),
        "headers": _headers(exchange.request_headers),
        "queryString": _query(exchange.url),
        "headersSize": -1,
        "bodySize": -1 if exchange.request_body is None else len(exchange.request_body),
    }
    if exchange.request_body is not None:
        request["postData"] = {
            "mimeType": header_of(exchange.request_headers, "content-type"),
            "text": base64.b64encode(exchange.request_body).decode("ascii"),
            "encoding": "base64",
        }
    entry: dict[str, Any] = {
        "startedDateTime": _iso(exchange.started),
        "time": round(sum(value for value in timings.values() if value > 0), 3),
        "request": request,
        "response": {
            "status": exchange.status,
            "statusText": exchange.status_text,
            "httpVersion": exchange.http_version,
            "cookies": _cookies(exchange.response_headers, response=True),
            "headers": _headers(exchange.response_headers),
            "content": content,
            "redirectURL": header_of(exchange.response_headers, "location"),
            "headersSize": -1,
            "bodySize": exchange.transferred,
        },
        "cache": {},
        "timings": timings,
    }
    if exchange.error is not None or (exchange.status == 0 and exchange.ended is None):
        entry["_error"] = exchange.error or "no answer yet"
    if exchange.refusal is not None:
        entry["_refusal"] = exchange.refusal
    return entry
