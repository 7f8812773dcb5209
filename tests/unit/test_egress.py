"""The egress gateway: its HTTP parsing (sans I/O, property-based too), and a real listener
against hostile clients, a real test site and a real upstream proxy on loopback."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.clients.base import Proxy as ProxyEntry
from service.egress import Gateway, Listener, http
from service.metrics import Metrics
from service.policy import Policy, Rule, parse_rules
from tests.support.ports import wait_for
from tests.support.proxy import Proxy
from tests.support.site import Site

# ------------------------------------------------------------------------------- sans I/O


def test_parse_request_and_response_heads():
    head = http.parse_head(b"GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\nX-A:  b \r\n\r\n")
    assert head.method == "GET" and head.target == "http://a.test/x" and head.headers == [("Host", "a.test"), ("X-A", "b")]
    answer = http.parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", response=True)
    assert answer.status == 404 and answer.get("content-length") == "0"
    for bad in [b"\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/2\r\n\r\n", b"G(T / HTTP/1.1\r\n\r\n",
                b"GET / HTTP/1.1\r\nno colon\r\n\r\n", b"GET / HTTP/1.1\r\n: v\r\n\r\n",
                b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 201 + b"\r\n"]:
        with pytest.raises(http.ProxyProtocolError):
            http.parse_head(bad)
    with pytest.raises(http.ProxyProtocolError):
        http.parse_head(b"HTTP/1.1 2000 OK\r\n\r\n", response=True)


def test_hop_by_hop_headers_are_dropped():
    headers = [("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"), ("Proxy-Authorization", "Basic x"),
               ("Proxy-Connection", "keep-alive"), ("Keep-Alive", "5"), ("Upgrade", "h2c"), ("Accept", "*/*"),
               ("Content-Length", "3")]
    assert http.end_to_end(headers) == [("Accept", "*/*"), ("Content-Length", "3")]


@pytest.mark.parametrize("raw, request_, method, framing", [
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", True, "POST", 5),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", True, "POST", "chunked"),
    (b"GET / HTTP/1.1\r\n\r\n", True, "GET", 0),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", False, "GET", 7),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", False, "HEAD", 0),
    (b"HTTP/1.1 204 No Content\r\n\r\n", False, "GET", 0),
    (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", False, "GET", 0),
    (b"HTTP/1.1 200 OK\r\n\r\n", False, "GET", "close"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n", False, "GET", "chunked"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", False, "GET", "close"),
    (b"HTTP/1.1 101 Switching\r\n\r\n", False, "GET", "close"),
])
def test_body_framing(raw, request_, method, framing):
    assert http.body_framing(http.parse_head(raw, response=not request_), request=request_, method=method) == framing


@pytest.mark.parametrize("raw", [
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: \u00b2\r\n\r\n".encode("latin-1", "replace"),
    "POST / HTTP/1.1\r\nContent-Length: ²\r\n\r\n".encode(),
])
def test_ambiguous_request_framing_is_refused(raw):
    with pytest.raises(http.ProxyProtocolError):
        http.body_framing(http.parse_head(raw), request=True)


def test_targets_and_credentials():
    assert http.split_authority("[::1]:443") == ("::1", 443)
    assert http.split_authority("a.test:8443") == ("a.test", 8443)
    assert http.split_url("http://[::1]:81/p?q=1#f") == ("::1", 81, "/p?q=1")
    assert http.split_url("http://a.test") == ("a.test", 80, "/")
    for bad in ["a.test", "a.test:99999", "u@a.test:1", "a.test:1/x"]:
        with pytest.raises(http.ProxyProtocolError):
            http.split_authority(bad)
    for bad in ["/x", "https://a.test/", "ftp://a/", "http://[x/"]:
        with pytest.raises(http.ProxyProtocolError):
            http.split_url(bad)
    assert http.basic_credentials("http://u%40x:p%3Aw@h:1") == "Basic dUB4OnA6dw=="
    assert http.basic_credentials("http://h:1") is None
    assert http.chunk_size(b"1a;ext=1\r\n") == 26
    for bad in [b"\r\n", b"-1\r\n", b"zz\r\n", b"1" * 17 + b"\r\n"]:
        with pytest.raises(http.ProxyProtocolError):
            http.chunk_size(bad)


@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_raise_our_error(data):
    for response in (False, True):
        try:
            head = http.parse_head(data, response=response)
        except http.ProxyProtocolError:
            continue
        try:
            http.body_framing(head, request=not response)
        except http.ProxyProtocolError:
            pass


@given(st.text(max_size=80))
def test_any_rule_text_parses_or_raises_value_error(text):
    try:
        rule = Rule.parse(text)
    except ValueError:
        return
    assert rule.network is not None or rule.host


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_embedded_ipv4_forms_get_the_verdict_of_what_they_embed(value):
    v4 = ipaddress.IPv4Address(value)
    forms = [
        ipaddress.IPv6Address((0xFFFF << 32) | value),  # ::ffff:a.b.c.d
        ipaddress.IPv6Address((0x2002 << 112) | (value << 80)),  # 6to4
        ipaddress.IPv6Address((0x64FF9B << 96) | value),  # NAT64
    ]
    policy = Policy(deny=parse_rules("203.0.113.0/24"))
    expected = policy.verdict("h", 80, str(v4))
    for form in forms:
        assert policy.verdict("h", 80, str(form)) == expected, form


# ------------------------------------------------------------------------------- a real listener


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with Site() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(site) -> Iterator[Gateway]:
    running = Gateway(Policy(allow=parse_rules(f"127.0.0.1:{site.port}")), Metrics())
    yield running
    running.stop()


@pytest.fixture()
def listener(gateway) -> Iterator[Listener]:
    opened = gateway.open("session-1", "chrome")
    yield opened
    opened.close()


def exchange(listener: Listener, data: bytes, read_until_close: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as sock:
        sock.sendall(data)
        if not read_until_close:
            return sock.recv(65536)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_plain_http_keeps_the_connection_and_passes_the_answer_unchanged(listener, site):
    request = (f"GET {site.url('/headers/repeated')} HTTP/1.1\r\nHost: x\r\nProxy-Connection: keep-alive\r\n\r\n"
               f"POST {site.url('/echo/post')} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               "3\r\nabc\r\n0\r\n\r\n").encode()
    answer = exchange(listener, request)
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.split(b"\r\n")[1:3] == [b"X-Multi: one", b"X-Multi: two"]
    assert b"Connection" not in first  # the site's own headers, nothing of ours (it keeps the connection)
    assert b'"method": "POST"' in rest and b'"body_base64": "YWJj"' in rest
    echoed = site.requests[-1]
    assert echoed["body"] == b"abc" and ["Connection", "keep-alive"] in echoed["headers"]
    assert not any(name.lower().startswith("proxy-") for name, _ in echoed["headers"])
    assert listener.bytes_in > 0 and listener.bytes_out > 0


def test_connect_tunnels_to_an_allowed_target(listener, site):
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as sock:
        sock.sendall(f"CONNECT 127.0.0.1:{site.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.endswith(b'{"hello": "world", "n": 1}')


@pytest.mark.parametrize("target", ["127.0.0.1:1", "[::1]:1", "localhost:1", "0.0.0.0:1", "[::ffff:127.0.0.1]:1",
                                    "169.254.169.254:80", "10.0.0.1:80"])
def test_denied_targets_get_403_and_are_counted(listener, gateway, target):
    before = listener.refusals
    answer = exchange(listener, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403 Forbidden") and b"blocked by the network policy" in answer
    if target.startswith("localhost"):  # the page body names the host, never what it resolved to
        assert b"127.0.0.1" not in answer and b"::1" not in answer and b"loopback" not in answer, answer
    plain = exchange(listener, f"GET http://{target}/x HTTP/1.1\r\n\r\n".encode())
    assert plain.startswith(b"HTTP/1.1 403 Forbidden")
    assert listener.refusals == before + 2
    assert listener.answered(f"https://{target}/y")[0] == 403
    metrics = gateway.metrics.render().decode()
    assert "inndx_egress_refusals_total" in metrics


@pytest.mark.parametrize("request_", [
    b"garbage\r\n\r\n", b"GET /relative HTTP/1.1\r\n\r\n", b"GET https://a.test/ HTTP/1.1\r\n\r\n",
    b"CONNECT a.test HTTP/1.1\r\n\r\n", b"GET http://[x/ HTTP/1.1\r\n\r\n",
    b"GET http://a.test/ HTTP/1.1\r\n" + b"X: " + b"a" * (70 * 1024) + b"\r\n\r\n",
    b"POST http://127.0.0.1:1/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
])
def test_hostile_requests_get_400(listener, request_):
    assert exchange(listener, request_).startswith(b"HTTP/1.1 400 Bad Request")


def test_unresolvable_and_unreachable_targets_get_502(listener):
    assert exchange(listener, b"CONNECT no-such-host.invalid:443 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 502")
    strict, listener.gateway.policy = listener.gateway.policy, Policy(allow_private=True)
    try:
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        assert exchange(listener, f"GET http://127.0.0.1:{port}/ HTTP/1.1\r\n\r\n".encode()).startswith(b"HTTP/1.1 502")
        # a name's 502 names the name and why, never the address it resolved to
        answer = exchange(listener, f"GET http://localhost:{port}/ HTTP/1.1\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 502") and f"localhost:{port}: Connection refused".encode() in answer
        assert b"127.0.0.1" not in answer and b"::1" not in answer, answer
    finally:
        listener.gateway.policy = strict


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=600))
def test_any_bytes_from_a_client_leave_the_listener_working(listener, site, data):
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as sock:
        sock.sendall(data + b"\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        try:
            while sock.recv(65536):
                pass
        except (ConnectionResetError, TimeoutError):
            pass
    answer = exchange(listener, f"GET {site.url('/json')} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200")


def test_closing_a_listener_ends_its_connections(gateway, site):
    listener = gateway.open("session-2", "firefox")
    sock = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
    sock.sendall(f"CONNECT 127.0.0.1:{site.port} HTTP/1.1\r\n\r\n".encode())
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    listener.close()
    assert sock.recv(4096) == b""
    sock.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()


# ------------------------------------------------------------------------------- upstream proxies


@pytest.fixture(scope="module")
def upstream() -> Iterator[Proxy]:
    with Proxy(username="scraper", password="s3cret") as running:
        yield running


def test_the_gateway_adds_the_upstream_credentials(gateway, site, upstream):
    upstream.clear()
    listener = gateway.open("session-3", "chrome", ProxyEntry("guarded", upstream.url_with_credentials))
    try:
        plain = exchange(listener, f"GET {site.url('/json')} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
        assert plain.startswith(b"HTTP/1.1 200") and plain.endswith(b'"n": 1}')
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as sock:
            sock.sendall(f"CONNECT 127.0.0.1:{site.port} HTTP/1.1\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert [r["method"] for r in upstream.requests] == ["GET", "CONNECT"] and upstream.rejected == []
        denied = exchange(listener, b"GET http://127.0.0.1:1/ HTTP/1.1\r\n\r\n")
        assert denied.startswith(b"HTTP/1.1 403") and len(upstream.requests) == 2  # checked before chaining
    finally:
        listener.close()
    assert site.requests[-1]["path"] == "/json" and not any(
        name.lower() == "proxy-authorization" for name, _ in site.requests[-1]["headers"])


def test_wrong_upstream_credentials_are_a_502(gateway, site, upstream):
    listener = gateway.open("session-4", "chrome", ProxyEntry("guarded", upstream.url))
    try:
        for request in (f"GET {site.url('/json')} HTTP/1.1\r\n\r\n", f"CONNECT 127.0.0.1:{site.port} HTTP/1.1\r\n\r\n"):
            answer = exchange(listener, request.encode())
            assert answer.startswith(b"HTTP/1.1 502") and b"refused our credentials" in answer
    finally:
        listener.close()


def test_connections_over_the_cap_get_503(gateway, site):
    listener = gateway.open("session-5", "chrome")
    listener.max_connections = 3
    held = []
    try:
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
            sock.sendall(f"CONNECT 127.0.0.1:{site.port} HTTP/1.1\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            held.append(sock)
        assert exchange(listener, b"GET http://127.0.0.1:1/ HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503")
        held.pop().close()
        answer = wait_for(lambda: (a := exchange(listener, f"GET {site.url('/json')} HTTP/1.1\r\nConnection: close\r\n\r\n"
                                                    .encode())).startswith(b"HTTP/1.1 200") and a, 5, what="a free slot")
        assert answer.endswith(b'"n": 1}')
    finally:
        for sock in held:
            sock.close()
        listener.close()


def test_a_response_past_the_body_limit_is_cut(gateway, site):
    listener = gateway.open("session-6", "chrome")
    limit, gateway.max_body_bytes = gateway.max_body_bytes, 100_000
    try:
        answer = exchange(listener, f"GET {site.url('/big?bytes=1000000')} HTTP/1.1\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 200") and len(answer) < 100_000 + 64 * 1024 + 1000
        whole = exchange(listener, f"GET {site.url('/big?bytes=90000')} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
        assert whole.endswith(b"\r\n\r\n" + whole.partition(b"\r\n\r\n")[2]) and len(whole.partition(b"\r\n\r\n")[2]) == 90000
    finally:
        gateway.max_body_bytes = limit
        listener.close()


def test_a_malformed_answer_is_a_502_remembered(gateway):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    strict, gateway.policy = gateway.policy, Policy(allow_private=True)
    listener = gateway.open("session-7", "chrome")

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 abc\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/x"
        assert exchange(listener, f"GET {url} HTTP/1.1\r\n\r\n".encode()).startswith(b"HTTP/1.1 502")
        assert listener.answered(url)[0] == 502
    finally:
        gateway.policy = strict
        listener.close()
        thread.join(5)
        server.close()
