"""Headers between BiDi events and our frames."""

import base64

from service import request_headers
from service.clients.base import GotoRequest
from service.clients.browser_headers import bidi_headers, parse_headers_text, text_or_event, wire_headers


def test_bidi_headers_split_newline_joined_repeats_and_decode_base64():
    raw = [
        {"name": "Set-Cookie", "value": {"type": "string", "value": "a=1\nb=2"}},
        {"name": "X-Bytes", "value": {"type": "base64", "value": base64.b64encode(b"caf\xe9").decode()}},
        {"name": "Content-Type", "value": {"type": "string", "value": "text/html"}},
    ]
    assert bidi_headers(raw) == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Bytes", "café"),
                                 ("Content-Type", "text/html")]
    assert bidi_headers(None) == []


def test_chrome_raw_header_text_keeps_order_and_repeats():
    text = "HTTP/1.1 302 Found\r\nX-Multi: one\r\nX-Multi: two\r\nLocation: /next\r\nX-Empty:\r\n\r\n"
    status, headers = parse_headers_text(text)
    assert status == 302
    assert headers == [("X-Multi", "one"), ("X-Multi", "two"), ("Location", "/next"), ("X-Empty", "")]


def test_wire_headers_join_repeats_and_drop_owned_and_hop_by_hop():
    # the middleware already resolved its own overrides: repeats left are the goto's own
    headers = (("X-A", "1"), ("X-B", "b"), ("x-a", "2"), ("Host", "evil"), ("Content-Length", "9"),
               ("Proxy-Authorization", "Basic x"), ("Connection", "close"), ("Cookie", "a=1"), ("Cookie", "b=2"))
    request = GotoRequest(url="http://h/", headers=headers, referrer="http://ref/")
    assert wire_headers(request) == [("X-A", "1, 2"), ("X-B", "b"), ("Cookie", "a=1; b=2"), ("Referer", "http://ref/")]


def test_a_referer_header_wins_over_the_referrer_field():
    request = GotoRequest(url="http://h/", headers=(("referer", "http://header/"),), referrer="http://field/")
    assert wire_headers(request) == [("referer", "http://header/")]


def test_frame_headers_left_on_another_origin():
    given = [("Authorization", "Bearer t"), ("User-Agent", "u"), ("Referer", "r"), ("Content-Type", "t/p"),
             ("Cookie", "a=1"), ("X-Custom", "x"), ("Accept-Language", "de")]
    assert request_headers.on_other_origin(given) == [("User-Agent", "u"), ("Referer", "r"), ("Content-Type", "t/p")]
    assert not request_headers.cross_origin("http://a/x#f", "HTTP://A:80/y")
    assert request_headers.cross_origin("http://a/", "https://a/")
    assert request_headers.cross_origin("http://a:8000/", "http://a:8001/")
    assert request_headers.cross_origin("http://a/", "http://b.a/")


def test_header_text_from_a_browser_becomes_latin1_bytes():
    # a browser's text is the UTF-8 decoding of the bytes: every client reports one char per byte
    status, headers = parse_headers_text("HTTP/1.1 200 OK\r\nX-Utf: caf\u00e9\r\n\r\n")
    assert headers == [("X-Utf", "caf\u00c3\u00a9")]
    raw = [{"name": "X-Utf", "value": {"type": "string", "value": "caf\u00e9"}},
           {"name": "X-Bin", "value": {"type": "base64", "value": base64.b64encode(b"caf\xe9").decode()}}]
    assert bidi_headers(raw) == [("X-Utf", "caf\u00c3\u00a9"), ("X-Bin", "caf\u00e9")]


def test_frame_cookie_pairs_taken_out_of_a_browser_cookie_header():
    assert request_headers.without_pairs("f=1; jar=2", "f=1") == "jar=2"
    assert request_headers.without_pairs("f=1", "f=1;") == ""
    assert request_headers.without_pairs("jar=2", None) == "jar=2"


def test_chrome_event_bytes_win_when_its_text_lost_some():
    # Chrome's event strings are one character per byte already; its text is a lossy UTF-8 reading
    event = bidi_headers([{"name": "X-A", "value": {"type": "string", "value": "\u00e9"}},
                          {"name": "X-B", "value": {"type": "string", "value": "b"}},
                          {"name": "X-M", "value": {"type": "string", "value": "1\n2"}}], utf8=False)
    assert event == [("X-A", "\u00e9"), ("X-B", "b"), ("X-M", "1"), ("X-M", "2")]
    _, text = parse_headers_text("HTTP/1.1 200 OK\r\nX-M: 1\r\nX-A: X-B: b\r\nX-M: 2\r\n\r\n")
    assert text_or_event(text, event) == [("X-M", "1"), ("X-M", "2"), ("X-A", "\u00e9"), ("X-B", "b")]
    clean = [("X-M", "1"), ("X-U", "caf\u00c3\u00a9"), ("X-M", "2")]
    assert text_or_event(clean, sorted(clean)) == clean  # every byte is UTF-8: the text, as sent
