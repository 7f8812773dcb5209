"""The same goto frame, the same request on the wire and the same reply from every client.

A table: each ``Row`` registers its answers on two raw-recording servers (``WireServer``: ``a``
and ``b``, two origins: same address, other ports), gives the goto frame, and checks the reply
and the requests the servers received byte for byte. A documented difference between clients
(README, "Where a browser cannot...") is written into its row, never skipped. Each row runs once
per selected client, on the module's shared session (paths carry the client's name, so rows and
clients never see each other's requests).
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.hostile import response
from tests.support.wire import Wire, WireServer, page, redirect

PAGE = b"<!doctype html><title>wire</title><p>wire page</p>"


@dataclass
class Ctx:
    client: str
    a: WireServer
    b: WireServer

    def path(self, name: str) -> str:
        return f"/{self.client}-{name}"

    def add(self, server: WireServer, name: str, answer) -> str:
        server.add(answer, self.path(name).lstrip("/"))
        return server.url(self.path(name).lstrip("/"))

    def sent(self, server: WireServer, name: str) -> list[Wire]:
        return server.requests_to(self.path(name))


@dataclass
class Row:
    name: str
    build: Callable[[Ctx], dict[str, Any]]  # registers the answers; the goto frame's fields
    check: Callable[[Ctx, dict[str, Any]], None]  # the reply (or error frame) and the wire
    open_fields: dict[str, Any] = field(default_factory=dict)  # a session of its own when given
    before: Callable[[Ctx], dict[str, Any]] | None = None  # a goto first, on the same session


def only(wires: list[Wire]) -> Wire:
    assert len(wires) == 1, [w.raw[:300] for w in wires]
    return wires[0]


def ok(reply: dict) -> dict:
    assert reply.get("type") is None, reply
    return reply


def body_of(reply: dict) -> bytes | None:
    return None if reply["body"] is None else base64.b64decode(reply["body"])


def cookie_line(wire: Wire) -> str:
    return "; ".join(wire.values("cookie"))


# ------------------------------------------------------------------------------- rows

CREDENTIALS = [
    ["Authorization", "Bearer t0ken"],
    ["Cookie", "framecookie=secret"],
    ["Proxy-Authorization", "Basic eDp5"],
    ["X-Custom", "mine"],
    ["Accept-Language", "x-frame"],
    ["User-Agent", "fidelity-agent/1"],
]


def _cross_origin(ctx: Ctx) -> dict:
    end = ctx.add(ctx.b, "cred-end", page())
    jar = {"name": f"jar{ctx.client}", "value": "j", "domain": "127.0.0.1", "path": ctx.path("cred")}
    jar_b = {**jar, "name": f"jarb{ctx.client}", "path": ctx.path("cred-end")}
    return {"url": ctx.add(ctx.a, "cred", redirect(end)), "headers": CREDENTIALS, "referrer": "http://ref.test/r",
            "cookies": [jar, jar_b]}


def _check_cross_origin(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    assert reply["status_code"] == 200 and reply["url"] == ctx.b.url(ctx.path("cred-end").lstrip("/"))
    first, hop = only(ctx.sent(ctx.a, "cred")), only(ctx.sent(ctx.b, "cred-end"))
    assert first.values("authorization") == ["Bearer t0ken"]
    assert first.values("cookie") == ["framecookie=secret"]  # a frame's Cookie header stands alone
    assert first.values("x-custom") == ["mine"] and first.values("accept-language") == ["x-frame"]
    assert first.values("proxy-authorization") == []  # never sent (README): the operator's alone
    assert hop.values("authorization") == [] and hop.values("proxy-authorization") == []
    assert hop.values("x-custom") == [] and "x-frame" not in hop.values("accept-language")
    assert "framecookie" not in cookie_line(hop)
    # the jar's own cookies still go where they belong (the frame's Cookie header replaced them on A)
    assert f"jarb{ctx.client}=j" in cookie_line(hop) and f"jar{ctx.client}=" not in cookie_line(hop)
    # the user agent and referrer apply to every hop
    assert first.values("user-agent") == hop.values("user-agent") == ["fidelity-agent/1"]
    assert first.values("referer") == hop.values("referer") == ["http://ref.test/r"]


def _same_origin(ctx: Ctx) -> dict:
    end = ctx.add(ctx.a, "same-end", page())
    return {"url": ctx.add(ctx.a, "same", redirect(end)), "headers": CREDENTIALS}


def _check_same_origin(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    for wire in (only(ctx.sent(ctx.a, "same")), only(ctx.sent(ctx.a, "same-end"))):
        assert wire.values("authorization") == ["Bearer t0ken"] and wire.values("x-custom") == ["mine"]
        assert "framecookie=secret" in cookie_line(wire)


def _there_and_back(ctx: Ctx) -> dict:
    end = ctx.add(ctx.a, "back-end", page())
    middle = ctx.add(ctx.b, "back-mid", redirect(end, 307))
    return {"url": ctx.add(ctx.a, "back", redirect(middle, 307)), "headers": CREDENTIALS}


def _check_there_and_back(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    assert len(reply["redirects"]) == 2
    assert only(ctx.sent(ctx.a, "back")).values("authorization") == ["Bearer t0ken"]
    for wire in (only(ctx.sent(ctx.b, "back-mid")), only(ctx.sent(ctx.a, "back-end"))):
        # once the chain left the goto's origin, its headers stay behind, back home too
        assert wire.values("authorization") == [] and wire.values("x-custom") == []
        assert wire.values("user-agent") == ["fidelity-agent/1"]


def _trace(ctx: Ctx) -> dict:
    return {"url": ctx.add(ctx.a, "trace", page(b"traced", ["Content-Type: message/http"])), "method": "TRACE"}


def _check_trace(ctx: Ctx, reply: dict) -> None:
    if ctx.client == "chrome":  # Chrome cannot send TRACE (README): refused up front, nothing sent
        assert reply["type"] == "error" and reply["code"] == 501 and "TRACE" in reply["message"]
        assert ctx.sent(ctx.a, "trace") == []
        return
    ok(reply)
    assert reply["status_code"] == 200 and body_of(reply) == b"traced"
    assert only(ctx.sent(ctx.a, "trace")).method == "TRACE"


def _expires_offset(ctx: Ctx) -> dict:
    host = "127.0.0.1"
    return {
        "url": ctx.add(ctx.a, "expires", page()),
        "cookies": [
            {"name": "off1", "value": "v1", "domain": host, "expires": "2030-01-01T00:00:00+00:00"},
            {"name": "off2", "value": "v2", "domain": host, "expires": "2030-01-01T02:00:00.5+02:00"},
            {"name": "off3", "value": "v3", "domain": host, "expires": "2030-01-01T00:00:00Z"},
        ],
    }


def _check_expires_offset(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    line = cookie_line(only(ctx.sent(ctx.a, "expires")))
    assert all(pair in line for pair in ("off1=v1", "off2=v2", "off3=v3")), line


def _fragment(ctx: Ctx) -> dict:
    ctx.add(ctx.a, "frag-end", page())
    return {"url": ctx.add(ctx.a, "frag", redirect(ctx.path("frag-end"))) + "#part"}


def _check_fragment(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    end = ctx.a.url(ctx.path("frag-end").lstrip("/"))
    assert reply["url"] == end + "#part"
    assert [r["location"] for r in reply["redirects"]] == [end]
    assert only(ctx.sent(ctx.a, "frag")).target == ctx.path("frag")  # a fragment is never sent
    assert only(ctx.sent(ctx.a, "frag-end")).target == ctx.path("frag-end")


def _referer(ctx: Ctx) -> dict:
    return {
        "url": ctx.add(ctx.a, "referer", page()),
        "referrer": "http://ref.test/field",
        "headers": [["Referer", "http://ref.test/header"]],
    }


def _check_referer(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    assert only(ctx.sent(ctx.a, "referer")).values("referer") == ["http://ref.test/header"]


def _repeated(ctx: Ctx) -> dict:
    return {
        "url": ctx.add(ctx.a, "repeated", page()),
        "headers": [["X-Rep", "a"], ["X-Other", "o"], ["x-rep", "b"], ["Cookie", "r1=1"], ["Cookie", "r2=2"]],
    }


def _check_repeated(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    wire = only(ctx.sent(ctx.a, "repeated"))
    assert wire.values("x-rep") == ["a, b"] and wire.values("x-other") == ["o"]
    assert "r1=1; r2=2" in cookie_line(wire)


def _cookie_attributes(ctx: Ctx) -> dict:
    host = "127.0.0.1"
    return {
        "url": ctx.add(ctx.a, "attrs", page()),
        "cookies": [
            {"name": "plain", "value": "p", "domain": host},
            {"name": "expired", "value": "x", "domain": host, "expires": "2001-01-01T00:00:00Z"},
            {"name": "elsewhere", "value": "x", "domain": host, "path": "/elsewhere"},
            {"name": "scoped", "value": "s", "domain": host, "path": ctx.path("attrs")},
        ],
    }


def _check_cookie_attributes(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    line = cookie_line(only(ctx.sent(ctx.a, "attrs")))
    assert "plain=p" in line and "scoped=s" in line
    assert "expired=" not in line and "elsewhere=" not in line


def _set_then_expire(expires: str):
    def build(ctx: Ctx) -> dict:
        cookie = {"name": f"gone{ctx.client}", "value": "1", "domain": "127.0.0.1", "path": ctx.path("expire")}
        return {"url": ctx.add(ctx.a, "expire", page()), "cookies": [{**cookie, "expires": expires}]}

    return build


def _check_expired_removes(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    first, second = ctx.sent(ctx.a, "expire")
    assert f"gone{ctx.client}=1" in cookie_line(first) and f"gone{ctx.client}=" not in cookie_line(second)


def _secure_cookie(ctx: Ctx) -> dict:
    return {
        "url": ctx.add(ctx.a, "secure", page()),
        "cookies": [{"name": "sec", "value": "s", "domain": "127.0.0.1", "secure": True, "path": ctx.path("secure")}],
    }


def _check_secure_cookie(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    # plain HTTP to a loopback address is a secure context in browsers, and so in the standard
    # client's jar; to any other http: host a Secure cookie is never sent (unit-tested)
    assert "sec=s" in cookie_line(only(ctx.sent(ctx.a, "secure")))


BAD_GZIP = b"this is not gzip at all"


def _bad_gzip(ctx: Ctx) -> dict:
    answer = page(BAD_GZIP, ["Content-Type: text/plain", "Content-Encoding: gzip"])
    return {"url": ctx.add(ctx.a, "badgzip", answer), "method": "POST", "body": base64.b64encode(b"once").decode()}


def _check_bad_gzip(ctx: Ctx, reply: dict) -> None:
    assert reply["type"] == "error" and reply["code"] == 502, reply
    assert "gzip" in reply["message"] or "decod" in reply["message"].lower(), reply
    assert len(ctx.sent(ctx.a, "badgzip")) == 1  # a complete answer: never sent again


def _brotli(ctx: Ctx) -> dict:
    import brotli

    answer = page(brotli.compress(PAGE), ["Content-Type: text/html", "Content-Encoding: br"])
    return {"url": ctx.add(ctx.a, "br", answer)}


def _check_brotli(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    assert body_of(reply) == PAGE


def _zstd(ctx: Ctx) -> dict:
    from backports.zstd import compress

    answer = page(compress(PAGE), ["Content-Type: text/html", "Content-Encoding: zstd"])
    return {"url": ctx.add(ctx.a, "zstd", answer)}


def _header_bytes(ctx: Ctx) -> dict:
    answer = response("HTTP/1.1 200 OK", [b"X-Bin: caf\xe9 \xff", b"X-Next: ok", b"X-Utf: caf\xc3\xa9", b"X-End: \xe9",
                                          b"X-After: yes",
                                          "Content-Type: text/plain", "Content-Length: 2", "Connection: close"], b"ok")
    return {"url": ctx.add(ctx.a, "hbytes", answer)}


def _check_header_bytes(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    headers = [(k.lower(), v) for k, v in reply["headers"]]
    assert ("x-next", "ok") in headers and ("x-after", "yes") in headers, headers
    assert ("x-utf", "caf\u00c3\u00a9") in headers  # each byte one character: Latin-1, lossless
    assert ("x-bin", "caf\u00e9 \u00ff") in headers and ("x-end", "\u00e9") in headers
    assert [k for k, _ in headers[:6]] == ["x-bin", "x-next", "x-utf", "x-end", "x-after", "content-type"]


# the current goto cases, on the same wire


def _plain(ctx: Ctx) -> dict:
    return {"url": ctx.add(ctx.a, "plain", page(PAGE, ["Content-Type: text/html; charset=utf-8", "X-One: 1"]))}


def _check_plain(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    assert reply["status_code"] == 200 and body_of(reply) == PAGE and reply["redirects"] == []
    assert reply["content_type"] == "text/html" and ["X-One", "1"] in reply["headers"]
    wire = only(ctx.sent(ctx.a, "plain"))
    assert wire.method == "GET" and wire.body == b""


def _post_307(ctx: Ctx) -> dict:
    end = ctx.add(ctx.a, "p307-end", page())
    return {"url": ctx.add(ctx.a, "p307", redirect(end, 307)), "method": "POST",
            "body": base64.b64encode(b"a=1&b=2").decode(),
            "headers": [["Content-Type", "application/x-www-form-urlencoded"]]}


def _check_post_307(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    for wire in (only(ctx.sent(ctx.a, "p307")), only(ctx.sent(ctx.a, "p307-end"))):
        assert wire.method == "POST" and wire.body == b"a=1&b=2"
        assert wire.values("content-type") == ["application/x-www-form-urlencoded"]
    assert [(r["type"], r["side"]) for r in reply["redirects"]] == [("temporary", "server")]


def _post_303(ctx: Ctx) -> dict:
    end = ctx.add(ctx.b, "p303-end", page())
    return {"url": ctx.add(ctx.a, "p303", redirect(end, 303)), "method": "POST",
            "body": base64.b64encode(b"x=1").decode(), "headers": [["Content-Type", "text/plain"]]}


def _check_post_303(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    wire = only(ctx.sent(ctx.b, "p303-end"))
    assert wire.method == "GET" and wire.body == b"" and wire.values("content-type") == []


def _head(ctx: Ctx) -> dict:
    return {"url": ctx.add(ctx.a, "head", page(b"", ["Content-Type: text/html"])), "method": "HEAD"}


def _check_head(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    assert reply["status_code"] == 200 and reply["body"] is None
    assert only(ctx.sent(ctx.a, "head")).method == "HEAD"


def _cookie_chain(ctx: Ctx) -> dict:
    end = ctx.add(ctx.a, "kc-end", page(PAGE, ["Content-Type: text/html", f"Set-Cookie: kend{ctx.client}=2; Path=/"]))
    return {"url": ctx.add(ctx.a, "kc", redirect(end, 302, [f"Set-Cookie: khop{ctx.client}=1; Path=/"]))}


def _check_cookie_chain(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    assert [c["name"] for c in reply["cookies"]] == [f"khop{ctx.client}", f"kend{ctx.client}"]
    assert f"khop{ctx.client}=1" in cookie_line(only(ctx.sent(ctx.a, "kc-end")))


def _gzip(ctx: Ctx) -> dict:
    answer = page(gzip.compress(PAGE, mtime=0), ["Content-Type: text/html", "Content-Encoding: gzip"])
    return {"url": ctx.add(ctx.a, "gzip", answer)}


def _check_gzip(ctx: Ctx, reply: dict) -> None:
    ok(reply)
    assert body_of(reply) == PAGE


ROWS = [
    Row("credentials_stay_on_their_origin", _cross_origin, _check_cross_origin),
    Row("headers_kept_on_the_same_origin", _same_origin, _check_same_origin),
    Row("headers_not_restored_back_on_the_origin", _there_and_back, _check_there_and_back),
    Row("trace", _trace, _check_trace),
    Row("cookie_expires_with_offset", _expires_offset, _check_expires_offset),
    Row("fragment_inherited_across_redirect", _fragment, _check_fragment),
    Row("referer_header_wins_over_field", _referer, _check_referer),
    Row("repeated_request_headers_joined", _repeated, _check_repeated),
    Row("goto_cookie_expires_and_path", _cookie_attributes, _check_cookie_attributes),
    Row("goto_cookie_secure", _secure_cookie, _check_secure_cookie),
    Row("goto_cookie_expired_removes_it", _set_then_expire("2001-01-01T00:00:00Z"), _check_expired_removes,
        before=_set_then_expire("2040-01-01T00:00:00+01:00")),
    Row("undecodable_body_is_one_502_never_retried", _bad_gzip, _check_bad_gzip, {"max_retries": 3}),
    Row("brotli_decoded", _brotli, _check_brotli),
    Row("zstd_decoded", _zstd, _check_brotli),
    Row("header_bytes_latin1", _header_bytes, _check_header_bytes),
    Row("plain_page", _plain, _check_plain),
    Row("post_307_keeps_method_and_body", _post_307, _check_post_307),
    Row("post_303_becomes_get_cross_origin", _post_303, _check_post_303),
    Row("head", _head, _check_head),
    Row("cookies_over_the_chain", _cookie_chain, _check_cookie_chain),
    Row("gzip_decoded", _gzip, _check_gzip),
]


@pytest.fixture(scope="module")
def wires():
    with WireServer() as a, WireServer() as b:
        yield a, b
        assert a.errors == [] and b.errors == []


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_fidelity(row: Row, client, page, open_session, wires):
    ctx = Ctx(client, *wires)
    frame = {"action": "goto", **row.build(ctx)}
    session = open_session(client, timeout="20s", **row.open_fields) if row.open_fields else page
    if row.before is not None:
        ok(session.request({"action": "goto", **row.before(ctx)}, timeout=90))
    reply = session.request(frame, timeout=90)
    row.check(ctx, reply)
