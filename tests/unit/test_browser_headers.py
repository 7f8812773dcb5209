"""Headers between BiDi events and our frames."""

import base64

from service.clients.base import GotoRequest
from service.clients.browser_headers import bidi_headers, parse_headers_text, wire_headers


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


def test_wire_headers_later_win_and_browser_owned_are_dropped():
    # as the session builds them: the middleware's headers first, then the goto's own
    headers = (("X-A", "middleware"), ("X-B", "middleware"), ("X-A", "goto"), ("Host", "evil"), ("Content-Length", "9"))
    request = GotoRequest(url="http://h/", headers=headers, referrer="http://ref/")
    added = wire_headers(request)
    assert added == [("X-A", "goto"), ("X-B", "middleware"), ("Referer", "http://ref/")]
