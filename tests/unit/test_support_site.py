"""Self-tests of the test support servers (site and proxy), without the service."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import socket
import struct
import zlib
from collections.abc import Iterator

import httpx
import pytest

from tests.support.ports import free_port, scaled, wait_for
from tests.support.proxy import Proxy
from tests.support.site import BINARY_BYTES, COOKIES_SET, PNG_BYTES, Site, big_body


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with Site() as s:
        yield s
    assert s.errors == []


@pytest.fixture
def conn(site: Site) -> Iterator[http.client.HTTPConnection]:
    c = http.client.HTTPConnection("127.0.0.1", site.port, timeout=scaled(5))
    yield c
    c.close()


def get(conn: http.client.HTTPConnection, path: str, method: str = "GET", body: bytes | None = None,
        headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    resp.data = resp.read()  # type: ignore[attr-defined]
    return resp


def test_ports_helpers() -> None:
    assert 0 < free_port() < 65536
    assert wait_for(lambda: 42, timeout=1) == 42
    with pytest.raises(TimeoutError, match="the moon"):
        wait_for(lambda: False, timeout=0.1, what="the moon")


def test_html_and_keep_alive(site: Site, conn: http.client.HTTPConnection) -> None:
    site.clear()
    first = get(conn, "/html?title=Hello")
    assert first.status == 200 and b"<title>Hello</title>" in first.data
    assert first.data.startswith(b"<!DOCTYPE html>")
    assert first.getheader("Content-Length") == str(len(first.data))
    sock = conn.sock
    assert get(conn, "/html").status == 200
    assert conn.sock is sock, "the connection was not kept alive"
    assert [r["path"] for r in site.requests] == ["/html", "/html"]
    assert site.requests[0]["query"] == "title=Hello"


def test_redirect_with_cookie(site: Site, conn: http.client.HTTPConnection) -> None:
    for code in (301, 302, 303, 307, 308):
        resp = get(conn, f"/redirect/{code}?to=/json")
        assert resp.status == code
        assert resp.getheader("Location") == "/json"
        assert resp.getheader("Set-Cookie") == f"hop{code}=1; Path=/"
        assert resp.getheader("Cache-Control") == "no-store"
    assert get(conn, "/redirect/302").getheader("Location") == "/html"
    assert get(conn, "/redirect/200").status == 400


def test_chain_followed_by_httpx(site: Site) -> None:
    with httpx.Client(follow_redirects=True, timeout=scaled(5)) as client:
        resp = client.get(site.url("/chain/3"))
        assert resp.status_code == 200 and "Chain end" in resp.text
        assert [str(r.url) for r in resp.history] == [site.url(f"/chain/{n}") for n in (3, 2, 1)]
        assert dict(client.cookies) == {"chain3": "v3", "chain2": "v2", "chain1": "v1", "chain0": "v0"}
        with pytest.raises(httpx.TooManyRedirects):
            client.get(site.url("/loop"))


def test_cookies_set_and_echo(site: Site, conn: http.client.HTTPConnection) -> None:
    resp = get(conn, "/cookies/set")
    assert [v for n, v in resp.getheaders() if n == "Set-Cookie"] == COOKIES_SET
    one = get(conn, "/cookies/set?name=token&value=xyz")
    assert one.getheader("Set-Cookie") == "token=xyz; Path=/"
    bare = get(conn, "/cookies/set?name=t&value=1&attrs=")
    assert bare.getheader("Set-Cookie") == "t=1"
    echo = json.loads(get(conn, "/cookies/echo", headers={"Cookie": "a=1; b=two"}).data)
    assert echo == {"raw": "a=1; b=two", "cookies": {"a": "1", "b": "two"}}
    assert json.loads(get(conn, "/cookies/echo").data) == {"raw": None, "cookies": {}}


def test_echo_post_body_and_header_order(site: Site, conn: http.client.HTTPConnection) -> None:
    conn.putrequest("POST", "/echo/deep/path?x=1&y=2", skip_accept_encoding=True)
    for name, value in [("X-B", "2"), ("X-A", "1"), ("X-B", "3"), ("Content-Length", "4")]:
        conn.putheader(name, value)
    conn.endheaders(b"\x00\x01hi")
    data = json.loads(conn.getresponse().read())
    assert data["method"] == "POST" and data["path"] == "/echo/deep/path" and data["query"] == "x=1&y=2"
    assert [h for h in data["headers"] if h[0].startswith("X-")] == [["X-B", "2"], ["X-A", "1"], ["X-B", "3"]]
    assert base64.b64decode(data["body_base64"]) == b"\x00\x01hi"
    assert site.requests[-1]["body"] == b"\x00\x01hi"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"])
def test_echo_methods(conn: http.client.HTTPConnection, method: str) -> None:
    assert json.loads(get(conn, "/echo", method).data)["method"] == method


def test_head_has_length_but_no_body(conn: http.client.HTTPConnection) -> None:
    resp = get(conn, "/json", "HEAD")
    assert resp.status == 200 and resp.data == b""
    assert resp.getheader("Content-Length") == str(len(b'{"hello": "world", "n": 1}'))
    assert get(conn, "/json").status == 200  # connection still in sync


def test_status_codes(conn: http.client.HTTPConnection) -> None:
    assert get(conn, "/status/404").status == 404
    resp = get(conn, "/status/500")
    assert resp.status == 500 and resp.data == b"status 500\n"
    for code in (204, 304):
        resp = get(conn, f"/status/{code}")
        assert resp.status == code and resp.data == b"" and resp.getheader("Content-Length") is None
    assert get(conn, "/nope").status == 404


def test_repeated_headers(conn: http.client.HTTPConnection) -> None:
    resp = get(conn, "/headers/repeated")
    assert resp.getheaders()[:4] == [
        ("X-Multi", "one"), ("X-Multi", "two"), ("X-Case", "MiXeD"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ]


def test_payloads(conn: http.client.HTTPConnection) -> None:
    binary = get(conn, "/binary")
    assert binary.data == BINARY_BYTES and binary.getheader("Content-Type") == "application/octet-stream"
    png = get(conn, "/image.png")
    assert png.getheader("Content-Type") == "image/png" and png.data == PNG_BYTES
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    length = struct.unpack(">I", png.data[8:12])[0]
    assert zlib.crc32(png.data[12:16 + length]) == struct.unpack(">I", png.data[16 + length:20 + length])[0]
    assert json.loads(get(conn, "/json").data) == {"hello": "world", "n": 1}
    assert get(conn, "/big?bytes=100000").data == big_body(100000)
    gz = get(conn, "/gzip")
    assert gz.getheader("Content-Encoding") == "gzip" and b"Gzipped page" in gzip.decompress(gz.data)


def test_client_side_redirect_pages(conn: http.client.HTTPConnection) -> None:
    assert b'content="0; url=/json"' in get(conn, "/meta-refresh?to=/json").data
    assert b'location.href = "/json"' in get(conn, "/js-redirect?to=/json").data
    assert b'location.replace("/json")' in get(conn, "/js-replace?to=/json").data
    form = get(conn, "/form").data
    for element_id in ("name", "bio", "editable", "color", "go", "link", "hidden", "invisible",
                       "disabled", "covered", "overlay", "counter", "result", "js-nav"):
        assert f'id="{element_id}"'.encode() in form


def test_reset_flaky_and_counter(site: Site) -> None:
    def fetch(path: str) -> http.client.HTTPResponse:
        c = http.client.HTTPConnection("127.0.0.1", site.port, timeout=scaled(5))
        try:
            return get(c, path)
        finally:
            c.close()

    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        fetch("/reset")
    for _ in range(2):
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            fetch("/flaky?key=k1&fail=2")
    assert fetch("/flaky?key=k1&fail=2").status == 200
    assert json.loads(fetch("/counter?key=k1").data) == {"key": "k1", "count": 3}
    assert json.loads(fetch("/counter?key=k1").data)["count"] == 3


def test_slow_and_hang_release_on_stop() -> None:
    s = Site().start()
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=scaled(0.3))
    with pytest.raises(TimeoutError):
        get(c, "/hang")
    c.close()
    slow = http.client.HTTPConnection("127.0.0.1", s.port, timeout=scaled(5))
    assert get(slow, "/slow?seconds=0.1").status == 200
    slow.close()
    s.stop(timeout=5)
    assert s.errors == []


def test_proxy_forwards_and_tunnels(site: Site) -> None:
    with Proxy() as proxy:
        with httpx.Client(proxy=proxy.url, timeout=scaled(5)) as client:
            resp = client.post(site.url("/echo?p=1"), content=b"payload")
            assert resp.status_code == 200
            assert base64.b64decode(resp.json()["body_base64"]) == b"payload"
            assert client.get(site.url("/headers/repeated")).headers.get_list("X-Multi") == ["one", "two"]
        assert proxy.requests == [
            {"method": "POST", "url": site.url("/echo?p=1")},
            {"method": "GET", "url": site.url("/headers/repeated")},
        ]
        tunnel = socket.create_connection(("127.0.0.1", proxy.port), timeout=scaled(5))
        with tunnel:
            tunnel.sendall(f"CONNECT 127.0.0.1:{site.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert tunnel.recv(1024).startswith(b"HTTP/1.1 200")
            tunnel.sendall(b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            received = b""
            while chunk := tunnel.recv(65536):
                received += chunk
            assert received.startswith(b"HTTP/1.1 200") and received.endswith(b'{"hello": "world", "n": 1}')
        assert proxy.requests[-1] == {"method": "CONNECT", "url": f"127.0.0.1:{site.port}"}
    assert proxy.errors == []


def test_proxy_basic_auth(site: Site) -> None:
    with Proxy(username="user", password="s3cret") as proxy:
        with httpx.Client(proxy=proxy.url, timeout=scaled(5)) as client:
            refused = client.get(site.url("/json"))
            assert refused.status_code == 407
            assert refused.headers["Proxy-Authenticate"] == 'Basic realm="inndx-test"'
        with httpx.Client(proxy=f"http://user:wrong@127.0.0.1:{proxy.port}", timeout=scaled(5)) as client:
            assert client.get(site.url("/json")).status_code == 407
        with httpx.Client(proxy=proxy.url_with_credentials, timeout=scaled(5)) as client:
            assert client.get(site.url("/json")).json() == {"hello": "world", "n": 1}
        assert proxy.requests == [{"method": "GET", "url": site.url("/json")}]
        assert len(proxy.rejected) == 2
